"""`herstelbus gemeente consume` on the real broker, the real router and the real key store (issue 6):
UHT events in, the router seals and routes them, one person is erased, then two gemeenten consume
with --sink jsonl --ack --once. The jsonl files hold exactly the input events, every event is
acknowledged, a second run adds nothing, the erased person's record is refused and not written,
and no personal data reaches the consumer's output."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import random
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from herstelbus.connectors.uht.publish import publish
from herstelbus.core import contracts
from herstelbus.core.bsn import is_valid_bsn
from herstelbus.core.privacy import (
    GemeenteKey, PseudonymSecret, generate_gemeente_key, generate_signing_key, private_key_to_pem, public_key_to_pem,
)
from herstelbus.core.topology import STATUS, gemeente_acks_topic
from herstelbus.keystore.store import KeyAdmin, KeyStore
from herstelbus.processes import stop
from herstelbus.settings import get_settings
from herstelbus.topics import provision, wanted_topics
from tests.integration.kafka_read import bron_of, read_until, wait_for_line
from tests.integration.keystore_server import running_keystore

pytestmark = pytest.mark.kafka

VECTORS = Path(__file__).resolve().parents[1] / "unit" / "contracts" / "vectors"
UTRECHT, DEN_HAAG = "GM0344", "GM0518"


def _fresh_bsns(n: int) -> list[str]:
    """Fictional 9999xxxxx BSNs no other test uses, so the router's memory links nothing to them."""
    pool = [b for b in (str(x) for x in range(999_950_000, 999_999_999)) if is_valid_bsn(b)]
    return random.sample(pool, n)


def _event(vector: str, gm: str, bsn: str, partner_bsn: str, volgnummer: int, dossier: str) -> tuple[str, dict]:
    obj = copy.deepcopy(json.loads((VECTORS / f"{vector}.json").read_text()))
    obj.update(event_id=str(uuid.uuid4()), gemeentecode=gm, volgnummer=volgnummer, dossiernummer=dossier,
               occurred_at="2025-06-02T10:00:00Z")
    obj["persoon"]["bsn"] = bsn
    if "toeslagpartner" in obj:
        obj["toeslagpartner"].update(bsn=partner_bsn, gemeentecode=gm)
    return contracts.parse_json_event(obj)


@pytest.fixture(scope="module")
def world(kafka, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("gemeente")
    provision(kafka.bootstrap, wanted_topics(get_settings().topic_policy(), dt.date(2025, 1, 1)), 1)
    signing, ops = generate_signing_key(), generate_gemeente_key()
    (tmp / "pseudonym.key").write_text(PseudonymSecret.generate().export_base64())
    (tmp / "signing.pem").write_bytes(private_key_to_pem(signing))
    (tmp / "signing.pub.pem").write_bytes(public_key_to_pem(signing.public_key()))
    (tmp / "ops.pub.pem").write_bytes(public_key_to_pem(ops.public_key()))
    env = {"HERSTELBUS_DATA_DIR": str(tmp / "data"), "HERSTELBUS_KEYSTORE_URL": f"sqlite:///{tmp / 'keystore.sqlite'}",
           "HERSTELBUS_PSEUDONYM_KEY_FILE": str(tmp / "pseudonym.key"), "HERSTELBUS_SIGNING_KEY_FILE": str(tmp / "signing.pem"),
           "HERSTELBUS_OPS_PUBLIC_KEY_FILE": str(tmp / "ops.pub.pem"), "HERSTELBUS_LOG_FORMAT": "json"}
    store = KeyStore.open(env["HERSTELBUS_KEYSTORE_URL"])
    admin, tokens = KeyAdmin(store), {}
    for gm in (UTRECHT, DEN_HAAG):
        key = generate_gemeente_key()
        (tmp / "keys" / gm).mkdir(parents=True)
        (tmp / "keys" / gm / f"{gm}.pem").write_bytes(private_key_to_pem(key))
        admin.register_gemeente_key(GemeenteKey(gm, key.public_key(), dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)), "test")
        tokens[gm] = admin.issue_token(gm, "test")
    store.close()

    b = _fresh_bsns(8)
    d = f"UHT-2025-{random.randrange(10**6):06d}"
    events = {  # name -> (record_type, record); the gemeente that should read it
        "utrecht_overdracht": _event("overdracht_volledig", UTRECHT, b[0], b[1], 1, d + "1"),
        "utrecht_erkenning": _event("erkenning", UTRECHT, b[0], b[1], 2, d + "1"),
        "utrecht_tweede": _event("overdracht_volledig", UTRECHT, b[2], b[3], 1, d + "2"),
        "denhaag_gewist": _event("overdracht_volledig", DEN_HAAG, b[4], b[5], 1, d + "3"),
        "denhaag_pauze": _event("pauzeknop_start", DEN_HAAG, b[6], b[7], 1, d + "4"),
    }
    events["denhaag_pauze"][1]["rol"] = "OUDER"
    log = tmp / "router.log"
    with open(log, "w") as out:
        router = subprocess.Popen([sys.executable, "-m", "herstelbus", "router"], env={**os.environ, **env},
                                  stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        # Publish once the worker is ready, so the read below measures routing, not start-up
        # (a router started onto a backlog is test_router_backlog's case).
        wait_for_line(log, "Worker ready", alive=lambda: router.poll() is None)
        positions = set(publish(kafka.bootstrap, events.values()))
        read_until(kafka.bootstrap, STATUS, lambda seen: router.poll() is not None or positions <= {
            bron_of(r)
            for r in (contracts.decode(m.value)[1] for m in seen) if r.get("bron")})
    finally:
        assert stop(router, timeout_s=30) == 0, log.read_text()[-3000:]
    erase = subprocess.run([sys.executable, "-m", "herstelbus", "erase", "--bsn", b[4], "--yes"],
                           env={**os.environ, **env}, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert erase.returncode == 0, erase.stderr
    with running_keystore(env, tmp / "keystore.log") as base:
        yield tmp, env | {"HERSTELBUS_KEYSTORE_API": base}, tokens, events


def _consume(world, gm: str) -> subprocess.CompletedProcess:
    tmp, env, tokens, _ = world
    run_env = {**os.environ, **env, "HERSTELBUS_GEMEENTE_TOKEN": tokens[gm],
               "HERSTELBUS_EXCHANGE_VERIFY_KEY_FILE": str(tmp / "signing.pub.pem")}
    done = subprocess.run([sys.executable, "-m", "herstelbus", "gemeente", "consume", gm, "--key-dir",
                           str(tmp / "keys" / gm), "--sink", f"jsonl:{tmp / 'uit'}", "--ack", "--once"],
                          env=run_env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _lines(world, gm: str) -> dict[str, dict]:
    path = world[0] / "uit" / f"{gm}.jsonl"
    return {obj["event_id"]: obj for obj in map(json.loads, path.read_text().splitlines())}


def _personal_values(record: dict) -> list[str]:
    values = [record["persoon"]["bsn"], record["persoon"]["achternaam"], record["dossiernummer"]]
    if record.get("adres"):
        values += [record["adres"]["postcode"], record["adres"]["straat"], record["email"], record["telefoon"]]
    return values


@pytest.fixture(scope="module")
def consumed(world):
    first = {gm: _consume(world, gm) for gm in (UTRECHT, DEN_HAAG)}
    files = {gm: _lines(world, gm) for gm in (UTRECHT, DEN_HAAG)}
    second = {gm: _consume(world, gm) for gm in (UTRECHT, DEN_HAAG)}
    return first, files, second


def test_jsonl_holds_exactly_the_input_events_field_by_field(world, consumed) -> None:
    *_, events = world
    _, files, _ = consumed
    expected = {UTRECHT: ["utrecht_overdracht", "utrecht_erkenning", "utrecht_tweede"], DEN_HAAG: ["denhaag_pauze"]}
    for gm, names in expected.items():
        assert set(files[gm]) == {str(events[n][1]["event_id"]) for n in names}
        for name in names:
            record_type, record = events[name]
            line = files[gm][str(record["event_id"])]
            assert line["data"] == contracts.to_json(record_type, record, with_type=False)
            assert (line["type"], line["gemeentecode"], line["routing_reason"], line["sequence"]) == (
                record_type, gm, "WOONGEMEENTE", record["volgnummer"])
            assert line["subject"].startswith("p1:")


def test_every_event_is_acknowledged_and_the_erased_one_refused(world, consumed) -> None:
    tmp, env, _, events = world
    first, _, _ = consumed
    bootstrap = os.environ["HERSTELBUS_BOOTSTRAP_SERVERS"]
    wanted = {UTRECHT: {n: "ONTVANGEN" for n in ("utrecht_overdracht", "utrecht_erkenning", "utrecht_tweede")},
              DEN_HAAG: {"denhaag_pauze": "ONTVANGEN", "denhaag_gewist": "GEWEIGERD"}}
    for gm, statuses in wanted.items():
        ids = {str(events[n][1]["event_id"]): n for n in statuses}
        acks = [contracts.decode(m.value)[1] for m in read_until(bootstrap, gemeente_acks_topic(gm), lambda seen: ids.keys() <= {
            str(contracts.decode(m.value)[1]["event_id"]) for m in seen}, timeout=30)]
        mine = [a for a in acks if str(a["event_id"]) in ids]
        assert {ids[str(a["event_id"])]: a["status"] for a in mine} == statuses
        assert len(mine) == len(statuses)  # the second run acknowledged nothing again
    refused = next(a for a in mine if a["status"] == "GEWEIGERD")
    assert (refused["reden"], refused["toelichting"]) == ("ONLEESBAAR", "subject_erased")
    assert "subject_erased: 1" in first[DEN_HAAG].stdout
    assert str(events["denhaag_gewist"][1]["event_id"]) in first[DEN_HAAG].stderr  # reported, by id


def test_a_second_run_adds_nothing(world, consumed) -> None:
    _, files, second = consumed
    for gm in (UTRECHT, DEN_HAAG):
        assert _lines(world, gm) == files[gm]
        assert second[gm].stdout.startswith(f"{gm}: opened 0 (0 written"), second[gm].stdout
        assert "acked 0" in second[gm].stdout


def test_no_personal_data_in_the_consumer_output(world, consumed) -> None:
    *_, events = world
    first, _, second = consumed
    output = "".join(p.stdout + p.stderr for runs in (first, second) for p in runs.values())
    assert "batch_verwerkt" in output  # the log is there, and it is clean
    for _, record in events.values():
        for value in _personal_values(record):
            assert value not in output
