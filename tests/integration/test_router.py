"""The router on the real broker and the real key store: UHT events in, receipts and sealed gemeente
records out, read back and opened with the gemeente's private key (issue 5's routing rules)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest

from herstelbus.core import contracts
from herstelbus.core.privacy.ops import open_for_ops, unframe_record
from herstelbus.core.topology import DEADLETTER, STATUS, UNROUTABLE, gemeente_events_topic
from herstelbus.processes import stop
from herstelbus.settings import get_settings
from herstelbus.topics import provision, wanted_topics
from tests.integration.kafka_read import bron_of
from tests.integration.router_world import AMSTERDAM, ROTTERDAM, VECTORS, WEESP, World, _event, start_router

pytestmark = pytest.mark.kafka

@pytest.fixture(scope="module")
def routed(kafka, tmp_path_factory: pytest.TempPathFactory):
    settings = get_settings()
    provision(kafka.bootstrap, wanted_topics(settings.topic_policy(), dt.date(2025, 1, 1)), 1)
    world = World(tmp_path_factory.mktemp("router"), kafka.bootstrap)
    log = world.tmp / "router.log"

    def start() -> subprocess.Popen:
        return start_router(world, log)

    proc = start()
    events = {
        "urgent": _event("overdracht_volledig"),
        "weesp": _event("overdracht_volledig", gemeentecode=WEESP, dossiernummer="UHT-2021-000777"),
        "vow": _event("overdracht_volledig", woonsituatie="VOW", gemeentecode=None, adres=None,
                      dossiernummer="UHT-2021-000778"),
        "nee": _event("overdracht_volledig", contactwens="NEE", dossiernummer="UHT-2021-000779"),
    }
    events["dubbel"] = dict(events["urgent"])  # UHT publishes the same event twice
    events["na_herstart"] = dict(events["urgent"])  # and once more, after the router restarted
    # The toeslagpartner's pause: own woongemeente Rotterdam, and Amsterdam knows the dossier.
    partner = json.loads((VECTORS / "overdracht_volledig.json").read_text())["toeslagpartner"]
    events["partner"] = _event("pauzeknop_start", rol="TOESLAGPARTNER", gemeentecode=ROTTERDAM,
                               persoon={k: partner[k] for k in ("bsn", "voornamen", "voorvoegsel", "achternaam",
                                                                "geboortedatum")})
    receipts: dict[str, dict] = {}

    def run(batch: list[str], extra: list[bytes] = ()) -> None:
        positions = world.publish([events[n] for n in batch] + list(extra))
        by_position = dict(zip(positions, [*batch, *("kapot" for _ in extra)]))
        seen = world.read(STATUS, lambda seen: proc.poll() is not None or {
            bron_of(r)
            for r in (contracts.decode(m.value)[1] for m in seen)} >= set(positions))
        for message in seen:
            receipt = contracts.decode(message.value)[1]
            bron = bron_of(receipt)
            if bron in by_position:
                receipts[by_position[bron]] = receipt

    exit_codes = []
    try:
        # The partner's pause right behind the overdracht of its dossier, on another topic: the
        # router keeps UHT's order across its topics, so Amsterdam is eerder betrokken.
        run(["urgent", "weesp", "vow", "nee", "dubbel", "partner"], [b"\x00 geen avro"])
        exit_codes.append(stop(proc, timeout_s=30))
        # A restarted router recovers its tables from their changelogs: it still knows the event.
        proc = start()
        run(["na_herstart"])
    finally:
        exit_codes.append(stop(proc, timeout_s=30))
    yield world, events, receipts, log.read_text() + f"\nexit codes {exit_codes}"
    world.store.close()


def _for(world: World, gm: str, event_ids: set[str]) -> list:
    topic = gemeente_events_topic(gm)
    messages = world.read(topic, lambda seen: event_ids <= {dict(m.headers)["ce_id"].decode() for m in seen},
                          timeout=30)
    return [m for m in messages if dict(m.headers)["ce_id"].decode() in event_ids]


def test_every_input_gets_exactly_one_terminal_receipt(routed) -> None:
    world, events, receipts, log = routed
    # On failure: what the router said it did, and anything it warned about (not faust's chatter).
    said = "\n".join(line for line in log.splitlines()
                     if '"batch_routed"' in line or '"level": "warning"' in line or '"level": "error"' in line)
    assert set(receipts) == {"urgent", "weesp", "vow", "nee", "dubbel", "partner", "kapot", "na_herstart"}, said[-6000:]
    assert {n: r["status"] for n, r in receipts.items()} == {
        "urgent": "ROUTED", "weesp": "ROUTED", "vow": "UNROUTABLE", "nee": "ROUTED", "dubbel": "DUPLICATE",
        "partner": "ROUTED", "kapot": "INVALID", "na_herstart": "DUPLICATE"}


def test_routed_record_opens_at_its_gemeente_only_with_priority(routed) -> None:
    world, events, receipts, _ = routed
    urgent = events["urgent"]
    (message,) = _for(world, AMSTERDAM, {urgent["event_id"]})
    assert dict(message.headers)["ce_prioriteit"] == b"urgent"
    assert message.key.decode().startswith("p1:") and urgent["persoon"]["bsn"].encode() not in message.value
    (opened,) = world.open_all(AMSTERDAM, [message])
    assert opened["persoon"]["bsn"] == urgent["persoon"]["bsn"] and opened["email"] == urgent["email"]
    doel = receipts["urgent"]["doelen"][0]
    assert (doel["gemeentecode"], doel["reden"], doel["topic"], doel["offset"]) == (
        AMSTERDAM, "WOONGEMEENTE", message.topic, message.offset)


def test_herindeling_routes_to_the_opvolger_and_the_receipt_names_both(routed) -> None:
    world, events, receipts, _ = routed
    (doel,) = receipts["weesp"]["doelen"]
    assert (doel["gemeentecode"], doel["reden"], doel["oorspronkelijke_gemeentecode"]) == (AMSTERDAM, "HERINDELING", WEESP)
    assert _for(world, AMSTERDAM, {events["weesp"]["event_id"]})


def test_vow_is_unroutable_and_ops_can_read_the_original(routed) -> None:
    world, events, receipts, _ = routed
    assert receipts["vow"]["reden"] == "VOW"
    doel = receipts["vow"]["doel"]
    (held,) = [m for m in world.read(UNROUTABLE, lambda s: any(m.offset == doel["offset"] for m in s), 30)
               if m.offset == doel["offset"]]
    _, letter = contracts.decode(held.value)
    assert events["vow"]["persoon"]["bsn"].encode() not in held.value
    key, value, _ = unframe_record(open_for_ops(letter["origineel"], world.ops, letter["deadletter_id"]))
    assert contracts.decode(value)[1]["persoon"]["bsn"] == events["vow"]["persoon"]["bsn"]


def test_contactwens_nee_is_routed_without_contact_details(routed) -> None:
    world, events, receipts, _ = routed
    assert receipts["nee"]["geminimaliseerd"] is True
    (opened,) = world.open_all(AMSTERDAM, _for(world, AMSTERDAM, {events["nee"]["event_id"]}))
    assert opened["adres"] is None and opened["telefoon"] is None and opened["email"] is None
    assert opened["persoon"]["bsn"] == events["nee"]["persoon"]["bsn"]


def test_duplicate_event_id_is_routed_once(routed) -> None:
    world, events, receipts, _ = routed
    assert receipts["dubbel"]["reden"] == "EVENT_ID_AL_GEROUTEERD"
    assert len(_for(world, AMSTERDAM, {events["urgent"]["event_id"]})) == 1


def test_partner_pause_fans_out_to_the_gemeente_that_knows_the_dossier(routed) -> None:
    world, events, receipts, _ = routed
    doelen = {d["gemeentecode"]: d["reden"] for d in receipts["partner"]["doelen"]}
    assert doelen == {ROTTERDAM: "WOONGEMEENTE", AMSTERDAM: "EERDER_BETROKKEN"}
    for gm in (ROTTERDAM, AMSTERDAM):
        (opened,) = world.open_all(gm, _for(world, gm, {events["partner"]["event_id"]}))
        assert opened["rol"] == "TOESLAGPARTNER" and opened["actie"] == "START"


def test_bytes_that_are_no_event_are_dead_lettered_with_the_reason(routed) -> None:
    world, _, receipts, log = routed
    kapot = receipts["kapot"]
    assert kapot["event_id"] is None and kapot["reden"] == "MARKER_ONGELDIG"
    letters = world.read(DEADLETTER, lambda s: any(m.offset == kapot["doel"]["offset"] for m in s), 30)
    (letter,) = [contracts.decode(m.value)[1] for m in letters if m.offset == kapot["doel"]["offset"]]
    assert unframe_record(open_for_ops(letter["origineel"], world.ops, letter["deadletter_id"]))[1] == b"\x00 geen avro"
    assert "Traceback" not in log


def test_sigterm_drains_and_exits_cleanly(routed) -> None:
    *_, log = routed
    assert log.endswith("exit codes [0, 0]"), log[-2000:]
