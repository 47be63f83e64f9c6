"""`herstelbus replay` on the real broker, router and key store (issue 7).

UHT events for one gemeente are routed by the real router and consumed by the gemeente connector
into two sinks (consumer groups); one person is erased; one sink loses its file. A dry run counts
and writes nothing; then a range is replayed: the same records (event ids, key, value bytes) come
again with ce_replay, the sink that kept its file adds nothing, the sink that lost it is filled
again, the erased person stays unreadable while the others open, and the audit record is on
herstel.audit.v1 with the counts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
import sys
import uuid

import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from herstelbus.connectors.gemeente.openen import Opener
from herstelbus.connectors.gemeente.resultaat import Geopend, Geweigerd, Weigercode
from herstelbus.connectors.gemeente.sleutelkluis import Sleutelkluis
from herstelbus.core import contracts
from herstelbus.core.bsn import is_valid_bsn
from herstelbus.core.privacy import OpeningKeyring, private_key_to_pem, public_key_to_pem
from herstelbus.core.topology import AUDIT, STATUS, gemeente_events_topic
from herstelbus.keystore.store import KeyAdmin
from herstelbus.processes import stop
from herstelbus.settings import get_settings
from herstelbus.topics import provision, wanted_topics
from tests.integration.kafka_read import bron_of
from tests.integration.keystore_server import running_keystore
from tests.integration.router_world import PURPOSE, World, _event, start_router

pytestmark = pytest.mark.kafka

GM = "GM0153"  # Enschede: no other test routes to it, so its topic holds this module's records only
TOPIC = gemeente_events_topic(GM)


def _fresh_bsns(n: int) -> list[str]:
    pool = [b for b in (str(x) for x in range(999_900_000, 999_950_000)) if is_valid_bsn(b)]
    return random.sample(pool, n)


def _events() -> dict[str, dict]:
    b = _fresh_bsns(6)
    d = f"UHT-2024-{random.randrange(10**6):06d}"

    def person(name: str, bsn: str, partner: str, **changes) -> dict:
        event = _event(name, gemeentecode=GM, **changes)
        event["persoon"]["bsn"] = bsn
        if "toeslagpartner" in event:
            event["toeslagpartner"].update(bsn=partner, gemeentecode=GM)
        return event

    return {
        "a_overdracht": person("overdracht_volledig", b[0], b[1], dossiernummer=d + "1", volgnummer=1),
        "a_erkenning": person("erkenning", b[0], b[1], dossiernummer=d + "1", volgnummer=2),
        "b_gewist": person("overdracht_volledig", b[2], b[3], dossiernummer=d + "2", volgnummer=1),
        "c_pauze": person("pauzeknop_start", b[4], b[5], dossiernummer=d + "3", volgnummer=1, rol="OUDER"),
    }


def _ce_id(message) -> str:
    return dict(message.headers)["ce_id"].decode()


def _end(bootstrap: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tp = TopicPartition(TOPIC, 0)
        return consumer.end_offsets([tp])[tp]
    finally:
        consumer.close()


def _herstelbus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "herstelbus", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def replayed(kafka, tmp_path_factory: pytest.TempPathFactory):
    provision(kafka.bootstrap, wanted_topics(get_settings().topic_policy(), dt.date(2025, 1, 1)), 1)
    world = World(tmp_path_factory.mktemp("replay"), kafka.bootstrap, gemeenten=(GM,))
    tmp = world.tmp
    (tmp / "keys").mkdir()
    (tmp / "keys" / f"{GM}.pem").write_bytes(private_key_to_pem(world.gemeenten[GM]))
    (tmp / "signing.pub.pem").write_bytes(public_key_to_pem(world.signing.public_key()))
    token = KeyAdmin(world.store).issue_token(GM, "test")
    events = _events()
    ids = {name: e["event_id"] for name, e in events.items()}

    # -- route them with the real router
    voor_routeren = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    router = start_router(world, tmp / "router.log")
    try:
        positions = set(world.publish(list(events.values())))
        world.read(STATUS, lambda seen: router.poll() is not None or positions <= {
            bron_of(r) for r in (contracts.decode(m.value)[1] for m in seen)})
    finally:
        assert stop(router, timeout_s=30) == 0, (tmp / "router.log").read_text()[-3000:]
    originals = {_ce_id(m): m for m in world.read(TOPIC, lambda seen: set(ids.values()) <= {_ce_id(m) for m in seen})
                 if _ce_id(m) in ids.values()}
    assert set(originals) == set(ids.values())

    with running_keystore(world.env, tmp / "keystore.log") as base:
        env = {**world.env, "HERSTELBUS_KEYSTORE_API": base, "HERSTELBUS_GEMEENTE_TOKEN": token,
               "HERSTELBUS_EXCHANGE_VERIFY_KEY_FILE": str(tmp / "signing.pub.pem")}
        groups = {"bewaard": f"replay-test-{uuid.uuid4().hex[:8]}", "kwijt": f"replay-test-{uuid.uuid4().hex[:8]}"}

        def consume(sink: str) -> subprocess.CompletedProcess:
            done = _herstelbus(env, "gemeente", "consume", GM, "--key-dir", str(tmp / "keys"), "--sink",
                               f"jsonl:{tmp / sink}", "--ack", "--once", "--group-id", groups[sink])
            assert done.returncode == 0, done.stderr[-3000:]
            return done

        first = {sink: consume(sink) for sink in groups}
        erase = _herstelbus(world.env, "erase", "--bsn", events["b_gewist"]["persoon"]["bsn"], "--yes")
        assert erase.returncode == 0, erase.stderr
        (tmp / "kwijt" / f"{GM}.jsonl").unlink()  # the gemeente's system lost its data

        offsets = sorted(m.offset for m in originals.values())
        end_before = _end(kafka.bootstrap)
        dry = {
            "offsets": _herstelbus(env, "replay", "--gemeente", GM, "--from", str(offsets[0]), "--dry-run"),
            "type": _herstelbus(env, "replay", "--gemeente", GM, "--from", voor_routeren.isoformat(),
                                "--type", "erkenning", "--dry-run"),
        }
        end_after_dry = _end(kafka.bootstrap)
        actor = f"ops-test-{uuid.uuid4().hex[:8]}"
        replay = _herstelbus(env, "replay", "--gemeente", GM, "--from", f"0:{offsets[0]}", "--to", str(offsets[-1]),
                             "--actor", actor, "--rate", "20")
        assert replay.returncode == 0, replay.stderr[-3000:]
        copies = {_ce_id(m): m for m in world.read(TOPIC, lambda seen: sum(
            1 for m in seen if m.offset >= end_before) >= len(ids), timeout=60) if m.offset >= end_before}

        files_before = (tmp / "bewaard" / f"{GM}.jsonl").read_text()
        second = {sink: consume(sink) for sink in groups}

        # -- the replayed records as the gemeente's SDK opens them: keys from the key store
        keyring = OpeningKeyring(GM, [world.gemeenten[GM]], [world.signing.public_key()])
        kluis = Sleutelkluis(base, token, GM, purpose=PURPOSE)
        try:
            opened = {r.event_id: r for r in Opener(GM, keyring, kluis).open_batch(list(copies.values()))}
        finally:
            kluis.close()
    audit = [r for r in (contracts.decode(m.value)[1] for m in world.read(AUDIT, lambda seen: any(
        contracts.decode(m.value)[1]["actor"] == actor for m in seen), timeout=60)) if r["actor"] == actor]
    yield {"world": world, "events": events, "ids": ids, "originals": originals, "copies": copies, "dry": dry,
           "ends": (end_before, end_after_dry), "replay": replay, "first": first, "second": second,
           "files_before": files_before, "opened": opened, "audit": audit, "offsets": offsets}
    world.store.close()


def test_dry_run_counts_and_writes_nothing(replayed) -> None:
    dry, (before, after) = replayed["dry"], replayed["ends"]
    assert dry["offsets"].returncode == 0, dry["offsets"].stderr[-2000:]
    out = dry["offsets"].stdout
    assert out.startswith(f"replay {GM} (dry run): 4 events would be re-delivered"), out
    assert dry["type"].stdout.startswith(f"replay {GM} (dry run): 1 event would be re-delivered"), dry["type"].stdout
    assert "3 of another type" in dry["type"].stdout
    assert "audit" not in dry["offsets"].stdout + dry["type"].stdout
    assert after == before  # not one record produced


def test_replay_re_delivers_the_same_records_marked_as_replay(replayed) -> None:
    originals, copies, offsets = replayed["originals"], replayed["copies"], replayed["offsets"]
    out = replayed["replay"].stdout
    assert out.startswith(f"replay {GM}: 4 events re-delivered (offsets 0:{offsets[0]}-{offsets[-1]} -> 0:"), out
    assert set(copies) == set(originals)  # same event ids, each once
    for event_id, copy in copies.items():
        original = originals[event_id]
        assert (copy.key, copy.value, copy.partition) == (original.key, original.value, original.partition)
        assert copy.headers == [*original.headers, ("ce_replay", b"true")]
    urgent = copies[replayed["ids"]["a_overdracht"]]
    assert ("ce_prioriteit", b"urgent") in urgent.headers  # the routing headers travel along


def test_sink_that_kept_its_data_adds_nothing_and_lost_data_comes_back(replayed) -> None:
    second, ids, world = replayed["second"], replayed["ids"], replayed["world"]
    bewaard = second["bewaard"].stdout
    assert bewaard.startswith(f"{GM}: opened 3 (0 written, 3 already in sink), refused 1 (subject_erased: 1)"), bewaard
    # no doubles; and the erased person's line is gone: the consume applied the forget notice
    kept = "".join(line + "\n" for line in replayed["files_before"].splitlines()
                   if json.loads(line)["event_id"] != ids["b_gewist"])
    assert kept != replayed["files_before"]
    assert (world.tmp / "bewaard" / f"{GM}.jsonl").read_text() == kept
    assert "forget notices 1 (1 removed)" in bewaard
    kwijt = second["kwijt"].stdout
    assert kwijt.startswith(f"{GM}: opened 3 (3 written, 0 already in sink), refused 1 (subject_erased: 1)"), kwijt
    lines = (world.tmp / "kwijt" / f"{GM}.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["event_id"] for line in lines) == sorted(
        ids[n] for n in ("a_overdracht", "a_erkenning", "c_pauze"))
    assert "sequence gaps 0" in kwijt


def test_erased_person_stays_unreadable_while_the_others_open(replayed) -> None:
    opened, ids = replayed["opened"], replayed["ids"]
    assert set(opened) == set(ids.values())
    gewist = opened[ids["b_gewist"]]
    assert isinstance(gewist, Geweigerd) and gewist.code is Weigercode.SUBJECT_ERASED
    for name in ("a_overdracht", "a_erkenning", "c_pauze"):
        event = opened[ids[name]]
        assert isinstance(event, Geopend) and event.replay, name
        assert event.data["persoon"]["bsn"] == replayed["events"][name]["persoon"]["bsn"]


def test_audit_record_has_actor_counts_and_range(replayed) -> None:
    (record,) = replayed["audit"]
    offsets = replayed["offsets"]
    assert (record["actie"], record["resultaat"], record["gemeentecode"], record["topic"], record["component"]) == (
        "replay", "GESLAAGD", GM, TOPIC, "ops")
    assert record["aantallen"] == {"gelezen": 4, "opnieuw_afgeleverd": 4, "ander_type": 0, "dubbel": 0,
                                   "p0.van": offsets[0], "p0.tot": offsets[-1] + 1}
    assert str(record["audit_id"]) in replayed["replay"].stdout


def test_no_personal_data_in_the_replay_output(replayed) -> None:
    output = replayed["replay"].stdout + replayed["replay"].stderr + "".join(
        p.stdout + p.stderr for p in replayed["dry"].values())
    for event in replayed["events"].values():
        for value in (event["persoon"]["bsn"], event["persoon"]["achternaam"], event["dossiernummer"]):
            assert value not in output
