"""Forget notices (vergeetverzoeken, AVG art. 19) end to end on the real broker and the real key store.

Events of two fictional persons are sealed and routed to one gemeente as the router does them
(test_erasure_e2e's way: the routing decision, the sealed record on the gemeente topic, its wrapped
key in the key store), `herstelbus gemeente consume --once` opens them into a jsonl sink; one
person is erased with `herstelbus erase`; a second `gemeente consume --once` pulls the forget
notice from the key store, removes that person's lines from the sink and confirms the notice.
The other person's lines stay, nothing is pending any more, the confirmation is audited, and no
personal value reaches the commands' output or the key store's log.

The sql sink's ``vergeet`` on PostgreSQL is here too (the SQLite one is a unit test).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer

from herstelbus.core import contracts
from herstelbus.core.bsn import is_valid_bsn
from herstelbus.core.privacy import (
    GemeenteKey, PiiLayout, PseudonymSecret, generate_gemeente_key, generate_signing_key, new_key_epoch,
    private_key_to_pem, pseudonymise, public_key_to_pem, seal_event,
)
from herstelbus.core.routing import decide, peildatum, routed_record
from herstelbus.core.topology import gemeente_events_topic
from herstelbus.keystore.store import ExchangeWriter, KeyAdmin, KeyStore
from herstelbus.settings import get_settings
from herstelbus.topics import provision, wanted_topics
from tests.integration.keystore_server import running_keystore
from tests.integration.postgres import db_url, pg_admin_url  # noqa: F401 (fixtures)
from tests.unit.gemeente.test_gemeente_vergeten import check_sql_vergeet

GM = "GM0855"  # Tilburg: no other integration test routes to it
VECTORS = Path(__file__).resolve().parents[1] / "unit" / "contracts" / "vectors"
SOURCE = contracts.source_urn("00000001003214345000", "herstelbus")
NAMES = {"gone": ("Vera Vergeten", "Wisselaar"), "kept": ("Bert Bewaard", "Blijfstra")}


def _bsns(n: int) -> list[str]:
    pool = (str(x) for x in range(999_930_000 + uuid.uuid4().int % 10_000, 999_999_999))
    return [b for b in pool if is_valid_bsn(b)][:n]


def _event(vector: str, bsn: str, partner_bsn: str, name: tuple[str, str], dossier: str,
           volgnummer: int) -> tuple[str, dict]:
    obj = copy.deepcopy(json.loads((VECTORS / f"{vector}.json").read_text()))
    obj.update(event_id=str(uuid.uuid4()), gemeentecode=GM, dossiernummer=dossier, volgnummer=volgnummer,
               occurred_at="2025-06-02T10:00:00Z")
    obj["persoon"].update(bsn=bsn, voornamen=name[0], achternaam=name[1])
    if "toeslagpartner" in obj:
        obj["toeslagpartner"].update(bsn=partner_bsn, gemeentecode=GM)
    return contracts.parse_json_event(obj)


@pytest.mark.kafka
def test_an_erased_persons_lines_leave_the_sink_and_the_notice_is_confirmed(kafka, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    provision(kafka.bootstrap, [s for s in wanted_topics(get_settings().topic_policy(), dt.date(2025, 1, 1))
                                if s.name == gemeente_events_topic(GM)], 1)
    # -- the exchange: pseudonym secret, signing key, key store with the gemeente's PUBLIC key
    secret, signing, gemeente_key = PseudonymSecret.generate(), generate_signing_key(), generate_gemeente_key()
    (tmp_path / "pseudonym.key").write_text(secret.export_base64())
    (tmp_path / "signing.pub.pem").write_bytes(public_key_to_pem(signing.public_key()))
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / f"{GM}.pem").write_bytes(private_key_to_pem(gemeente_key))  # at the gemeente
    env = {"HERSTELBUS_KEYSTORE_URL": f"sqlite:///{tmp_path / 'keystore.sqlite'}",
           "HERSTELBUS_PSEUDONYM_KEY_FILE": str(tmp_path / "pseudonym.key"),
           "HERSTELBUS_DATA_DIR": str(tmp_path / "data"), "HERSTELBUS_LOG_FORMAT": "json"}
    store = KeyStore.open(env["HERSTELBUS_KEYSTORE_URL"])
    admin = KeyAdmin(store)
    public = GemeenteKey(GM, gemeente_key.public_key(), now - dt.timedelta(days=1))
    admin.register_gemeente_key(public, "test")
    token = admin.issue_token(GM, "test")
    epoch = new_key_epoch(public, signing, now)
    writer = ExchangeWriter(store)
    writer.put_announcement(epoch.announcement)

    # -- two persons' events, sealed and routed to GM as the router does it
    b = _bsns(4)
    dossier = f"UHT-2025-{uuid.uuid4().int % 10**6:06d}"
    events = {
        "gone_overdracht": _event("overdracht_volledig", b[0], b[1], NAMES["gone"], dossier + "1", 1),
        "gone_erkenning": _event("erkenning", b[0], b[1], NAMES["gone"], dossier + "1", 2),
        "kept_overdracht": _event("overdracht_volledig", b[2], b[3], NAMES["kept"], dossier + "2", 1),
    }
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all", enable_idempotence=True)
    for record_type, record in events.values():
        layout = PiiLayout(contracts.get_catalogue().current(record_type).schema)
        subject, event_id = pseudonymise(record["persoon"]["bsn"], secret), str(record["event_id"])
        (target,) = decide(record_type, record, on=peildatum(record)).targets
        assert target.gemeentecode == GM
        sealed = seal_event(record, layout=layout, epoch=epoch, event_id=event_id, subject=subject)
        routed = routed_record(sealed.record, subject=subject, target=target, sleutel_id=epoch.kek_id,
                               bron_schema=layout.fingerprint_hex, gerouteerd_op=now)
        headers = contracts.cloudevent_headers(f"gerouteerde_{record_type}", id=event_id, source=SOURCE, time=now,
                                               subject=subject, sequence=record["volgnummer"])
        writer.put_wrapped_keys([sealed.wrapped_key])  # durable before the record is sent
        producer.send(gemeente_events_topic(GM), key=subject.encode(),
                      value=contracts.encode(f"gerouteerde_{record_type}", routed), headers=headers)
    producer.flush()
    producer.close()
    gone = pseudonymise(b[0], secret)
    kept = pseudonymise(b[2], secret)
    ids = {name: str(record["event_id"]) for name, (_, record) in events.items()}

    def run(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "herstelbus", *args], env={**os.environ, **env, **(extra or {})},
                              capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
        return done

    sink_file = tmp_path / "uit" / f"{GM}.jsonl"
    group = f"vergeet-{uuid.uuid4().hex[:8]}"  # its own group: other tests' runs leave GM's offsets alone

    def lines() -> dict[str, dict]:
        return {o["event_id"]: o for o in map(json.loads, sink_file.read_text().splitlines())}

    with running_keystore(env, tmp_path / "keystore.log") as base:
        consume_env = {"HERSTELBUS_KEYSTORE_API": base, "HERSTELBUS_GEMEENTE_TOKEN": token,
                       "HERSTELBUS_EXCHANGE_VERIFY_KEY_FILE": str(tmp_path / "signing.pub.pem")}
        consume = ("gemeente", "consume", GM, "--key-dir", str(tmp_path / "keys"),
                   "--sink", f"jsonl:{tmp_path / 'uit'}", "--once", "--group-id", group)
        first = run(*consume, extra=consume_env)
        assert set(ids.values()) <= set(lines()), first.stdout + first.stderr[-2000:]
        assert "forget notices 0 (0 removed)" in first.stdout

        erase = run("erase", "--bsn", b[0], "--yes")
        assert f"forget notices pending for: {GM}" in erase.stdout
        (pending,) = admin.pending_forget_notices()
        assert (pending.subject, pending.gemeentecode) == (gone, GM)

        second = run(*consume, extra=consume_env)
        third = run(*consume, extra=consume_env)  # nothing pending: nothing removed, nothing confirmed again

    after = lines()
    assert ids["gone_overdracht"] not in after and ids["gone_erkenning"] not in after
    assert {o["subject"] for o in after.values()} >= {kept} and gone not in {o["subject"] for o in after.values()}
    assert after[ids["kept_overdracht"]]["data"]["persoon"]["bsn"] == b[2]  # the other person's data stays whole
    assert "forget notices 1 (2 removed)" in second.stdout, second.stdout
    assert "forget notices 0 (0 removed)" in third.stdout, third.stdout
    assert admin.pending_forget_notices() == []
    confirmed = [a for a in admin.audit_records(gone) if a.action == "forget_notice_confirmed"]
    assert [(a.actor, a.gemeentecode, a.detail["erasure_audit_id"]) for a in confirmed] == [
        (f"gemeente:{GM}", GM, pending.audit_id)]
    assert "vergeetverzoeken_toegepast" in second.stderr + second.stdout and gone in second.stderr + second.stdout

    output = "".join(p.stdout + p.stderr for p in (first, erase, second, third))
    output += (tmp_path / "keystore.log").read_text()
    personal = [b[0], b[2], *NAMES["gone"], *NAMES["kept"], dossier]
    for _, record in events.values():
        personal += [record["persoon"]["bsn"], record.get("email") or b[0]]
    for value in personal:
        assert value not in output, "personal data in the output"
    sink_text = sink_file.read_text()
    for value in (b[0], *NAMES["gone"]):
        assert value not in sink_text  # the erased person's own lines are gone (the kept one's partner is b[3])
    store.close()


def test_the_sql_sink_forgets_on_postgresql(db_url: str) -> None:  # noqa: F811 (fixture)
    pytest.importorskip("psycopg")
    check_sql_vergeet(db_url)
