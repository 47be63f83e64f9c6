"""`herstelbus reroute --from ingest|unroutable` on the real broker, router and key store (issue 7).

Two overdrachten for gemeenten that have no registered key yet are held by the real router
(UNROUTABLE, GEEN_GEMEENTESLEUTEL). Then the fix: both gemeenten register their key. One event is
re-routed from the ingest topic, the other from herstel.unroutable.v1 (its original opened with the
ops key): each copy gets a new receipt, ROUTED, and the gemeente opens the event with its own key.
A second reroute sends nothing (already routed), a dry run writes nothing, a wrong ops key is one
line naming the held record, and the output never holds personal data.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from herstelbus.core import contracts
from herstelbus.core.privacy import GemeenteKey, PseudonymSecret, generate_gemeente_key, pseudonymise
from herstelbus.core.topology import AUDIT, INGEST, UNROUTABLE, gemeente_events_topic
from herstelbus.keystore.store import KeyAdmin
from herstelbus.processes import stop
from tests.integration.router_world import _event, fresh_bsn, start_router
from tests.integration.test_deadletter import dossiernummer, herstelbus, ops_world, receipts_for

pytestmark = pytest.mark.kafka

VIA_INGEST, VIA_UNROUTABLE = "GM0202", "GM0200"  # Arnhem, Apeldoorn: no other test routes to them


def _ingest_end(bootstrap: str) -> dict:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        from kafka.structs import TopicPartition

        parts = [TopicPartition(t, p) for t in INGEST for p in consumer.partitions_for_topic(t)]
        return consumer.end_offsets(parts)
    finally:
        consumer.close()


def _now(margin_s: float) -> str:
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=margin_s)).isoformat()


@pytest.fixture(scope="module")
def rerouted(kafka, tmp_path_factory: pytest.TempPathFactory):
    world, env = ops_world(kafka.bootstrap, tmp_path_factory.mktemp("reroute"))
    tmp = world.tmp
    events = {gm: _event("overdracht_volledig", gemeentecode=gm, dossiernummer=dossiernummer())
              for gm in (VIA_UNROUTABLE, VIA_INGEST)}
    # Held too, and then the person is erased: their plaintext must never go out again.
    gewist = _event("overdracht_volledig", gemeentecode=VIA_UNROUTABLE, dossiernummer=dossiernummer())
    gewist["persoon"]["bsn"] = fresh_bsn(random.Random())
    actor = f"ops-test-{uuid.uuid4().hex[:8]}"
    out = {}
    log = tmp / "router.log"

    router = start_router(world, log)
    try:
        t0 = _now(1.0)
        held_unroutable, held_gewist = world.publish([events[VIA_UNROUTABLE], gewist])
        time.sleep(2.0)  # --since t1 must leave the first one out
        t1 = _now(0.5)
        (held_ingest,) = world.publish([events[VIA_INGEST]])
        held = receipts_for(world, {held_unroutable, held_ingest, held_gewist}, router)
        assert stop(router, timeout_s=30) == 0, log.read_text()[-3000:]
        secret = PseudonymSecret.from_file(Path(world.env["HERSTELBUS_PSEUDONYM_KEY_FILE"]))
        KeyAdmin(world.store).erase(pseudonymise(gewist["persoon"]["bsn"], secret), "test")
        # The fix: both gemeenten register their key. A router started now knows them (a running one
        # re-reads the key directory every minute).
        admin = KeyAdmin(world.store)
        for gm in (VIA_UNROUTABLE, VIA_INGEST):
            world.gemeenten[gm] = generate_gemeente_key()
            admin.register_gemeente_key(GemeenteKey(gm, world.gemeenten[gm].public_key(),
                                                    dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)), "test")
        router = start_router(world, log)

        before = _ingest_end(kafka.bootstrap)
        out["ingest_dry"] = herstelbus(env, "reroute", "--from", "ingest", "--since", t1, "--dry-run")
        out["unroutable_dry"] = herstelbus(env, "reroute", "--from", "unroutable", "--since", t0, "--reason",
                                           "GEEN_GEMEENTESLEUTEL", "--dry-run")
        after_dry = _ingest_end(kafka.bootstrap)
        out["ingest"] = herstelbus(env, "reroute", "--from", "ingest", "--since", t1, "--actor", actor)
        assert out["ingest"].returncode == 0, out["ingest"].stderr[-3000:]
        copy_ingest = _copy(out["ingest"].stdout, "/".join(map(str, held_ingest)))
        routed = receipts_for(world, {copy_ingest}, router)
        out["ingest_again"] = herstelbus(env, "reroute", "--from", "ingest", "--since", t1, "--actor", actor)

        out["wrong_key"] = herstelbus({**env, "HERSTELBUS_OPS_PRIVATE_KEY_FILE": str(tmp / "other.pem")},
                                      "reroute", "--from", "unroutable", "--since", t0)
        out["unroutable"] = herstelbus(env, "reroute", "--from", "unroutable", "--since", t0, "--reason",
                                       "GEEN_GEMEENTESLEUTEL", "--actor", actor)
        assert out["unroutable"].returncode == 0, out["unroutable"].stderr[-3000:]
        (held_id,) = [line.split()[0] for line in out["unroutable"].stdout.splitlines() if " -> " in line]
        copy_unroutable = _copy(out["unroutable"].stdout, held_id)
        routed |= receipts_for(world, {copy_unroutable}, router)
        out["unroutable_again"] = herstelbus(env, "reroute", "--from", "unroutable", "--since", t0, "--actor", actor)
    finally:
        assert stop(router, timeout_s=30) == 0, log.read_text()[-3000:]
    delivered = {}
    for gm, copy in ((VIA_INGEST, copy_ingest), (VIA_UNROUTABLE, copy_unroutable)):
        doel = routed[copy]["doelen"][0]
        (message,) = [m for m in world.read(gemeente_events_topic(gm), lambda s: any(
            m.offset == doel["offset"] for m in s), timeout=60) if m.offset == doel["offset"]]
        delivered[gm] = world.open_all(gm, [message])[0]
    audit = [r for r in (contracts.decode(m.value)[1] for m in world.read(AUDIT, lambda s: sum(
        contracts.decode(m.value)[1]["actor"] == actor for m in s) >= 6, timeout=60)) if r["actor"] == actor]
    yield {"world": world, "events": events, "gewist": gewist, "out": out, "held": held, "routed": routed, "delivered": delivered,
           "audit": audit, "ends": (before, after_dry), "positions": (held_unroutable, held_ingest),
           "copies": (copy_unroutable, copy_ingest), "held_id": held_id}
    world.store.close()


def _copy(stdout: str, herkomst: str) -> tuple[str, int, int]:
    """Where the summary says the copy of ``herkomst`` went."""
    (line,) = [line for line in stdout.splitlines() if line.startswith(f"  {herkomst}  ") and " -> " in line]
    topic, partition, offset = line.split(" -> ")[1].split()[0].split("/")
    return topic, int(partition), int(offset)


def test_both_were_held_for_want_of_a_key(rerouted) -> None:
    assert {(r["status"], r["reden"]) for r in rerouted["held"].values()} == {("UNROUTABLE", "GEEN_GEMEENTESLEUTEL")}


def test_a_dry_run_counts_and_writes_nothing(rerouted) -> None:
    out, (before, after) = rerouted["out"], rerouted["ends"]
    assert out["ingest_dry"].stdout.startswith("reroute (dry run): 1 would be sent again ("), out["ingest_dry"].stderr
    assert out["unroutable_dry"].stdout.startswith("reroute (dry run): 2 would be sent again ("), \
        out["unroutable_dry"].stdout + out["unroutable_dry"].stderr[-2000:]
    assert after == before


def test_rerouted_events_are_routed_with_a_new_receipt_and_open_at_their_gemeente(rerouted) -> None:
    events, routed, delivered = rerouted["events"], rerouted["routed"], rerouted["delivered"]
    copy_unroutable, copy_ingest = rerouted["copies"]
    for gm, copy in ((VIA_INGEST, copy_ingest), (VIA_UNROUTABLE, copy_unroutable)):
        receipt = routed[copy]
        assert receipt["status"] == "ROUTED" and str(receipt["event_id"]) == events[gm]["event_id"]
        assert receipt["doelen"][0]["gemeentecode"] == gm
        assert delivered[gm]["persoon"]["bsn"] == events[gm]["persoon"]["bsn"]
    assert {c[0] for c in rerouted["copies"]} == {"uht.overdracht.v1"}
    assert [c[1] for c in rerouted["copies"]] == [p[1] for p in rerouted["positions"]]  # same partition


def test_a_second_reroute_sends_nothing(rerouted) -> None:
    out = rerouted["out"]
    ingest_again = out["ingest_again"].stdout
    assert ingest_again.startswith("reroute: 0 sent again to their source topic ("), ingest_again
    assert " skipped AL_GEROUTEERD" in ingest_again
    # The other event, already routed via the ingest topic, was skipped by the unroutable reroute.
    assert out["unroutable"].stdout.startswith("reroute: 1 sent again to their source topic (")
    assert out["unroutable"].stdout.count(" skipped AL_GEROUTEERD") == 1
    again = out["unroutable_again"].stdout
    assert again.startswith("reroute: 0 sent again"), again + out["unroutable_again"].stderr[-2000:]
    assert f"  {rerouted['held_id']}  skipped AL_GEROUTEERD" in again


def test_a_wrong_ops_key_is_one_line_naming_the_held_record(rerouted) -> None:
    wrong = rerouted["out"]["wrong_key"]
    assert (wrong.returncode, wrong.stdout) == (1, "")
    assert wrong.stderr.startswith("herstelbus: error: deadletter ") and wrong.stderr.endswith("; nothing was sent\n")
    assert "does not open its original" in wrong.stderr and len(wrong.stderr.splitlines()) == 1


def test_runs_and_copies_are_audited(rerouted) -> None:
    audit = rerouted["audit"]
    runs = [r for r in audit if r["actie"] == "reroute"]
    kopieen = [r for r in audit if r["actie"] == "reroute.kopie"]
    assert len(runs) == 4 and len(kopieen) == 2
    assert sorted(r["aantallen"]["opnieuw_aangeboden"] for r in runs) == [0, 0, 1, 1]
    assert {r["topic"] for r in runs} == {None, UNROUTABLE}
    assert {str(r["event_id"]) for r in kopieen} == {e["event_id"] for e in rerouted["events"].values()}
    assert all(r["reden"] == "GEEN_GEMEENTESLEUTEL" for r in kopieen)


def test_no_personal_data_in_any_output(rerouted) -> None:
    output = "".join(p.stdout + p.stderr for p in rerouted["out"].values())
    for event in rerouted["events"].values():
        for value in (event["persoon"]["bsn"], event["persoon"]["achternaam"], event["dossiernummer"], event["email"]):
            assert value not in output


def test_an_erased_persons_held_event_is_never_sent_again(rerouted) -> None:
    out = rerouted["out"]["unroutable"].stdout
    gewist = rerouted["gewist"]["event_id"]
    assert "SUBJECT_GEWIST" in out, out
    sent = [line for line in out.splitlines() if " -> " in line]
    assert len(sent) == 1 and gewist not in "".join(sent), out
