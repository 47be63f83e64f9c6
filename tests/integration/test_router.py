"""The router on the real broker and the real key store: UHT events in, receipts and sealed gemeente
records out, read back and opened with the gemeente's private key (issue 5's routing rules)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer

from herstelbus.connectors.uht.publish import publish
from herstelbus.core import contracts
from herstelbus.core.privacy import (
    GemeenteKey, KeyRowState, OpeningKeyring, PiiLayout, PseudonymSecret, generate_gemeente_key,
    generate_signing_key, key_ref, open_event, private_key_to_pem, public_key_to_pem,
)
from herstelbus.core.privacy.ops import open_for_ops, unframe_record
from herstelbus.core.topology import DEADLETTER, STATUS, UNROUTABLE, gemeente_events_topic
from herstelbus.keystore import policy
from herstelbus.keystore.store import GemeenteAccess, KeyAdmin, KeyStore
from herstelbus.processes import stop
from herstelbus.settings import get_settings
from herstelbus.topics import provision, wanted_topics
from tests.integration.kafka_read import read_until

pytestmark = pytest.mark.kafka

VECTORS = Path(__file__).resolve().parents[1] / "unit" / "contracts" / "vectors"
AMSTERDAM, ROTTERDAM, WEESP = "GM0363", "GM0599", "GM0457"
PURPOSE = "https://gemeente.example/verwerkingen/herstel-kot"


def _event(name: str, **changes) -> dict:
    obj = copy.deepcopy(json.loads((VECTORS / f"{name}.json").read_text()))
    obj.update(event_id=str(uuid.uuid4()), occurred_at="2025-06-02T10:00:00Z", **changes)
    return obj


class World:
    def __init__(self, tmp: Path, bootstrap: str) -> None:
        self.tmp, self.bootstrap = tmp, bootstrap
        self.ops = generate_gemeente_key()
        self.signing = generate_signing_key()
        self.gemeenten = {gm: generate_gemeente_key() for gm in (AMSTERDAM, ROTTERDAM)}
        (tmp / "pseudonym.key").write_text(PseudonymSecret.generate().export_base64())
        (tmp / "signing.pem").write_bytes(private_key_to_pem(self.signing))
        (tmp / "ops.pub.pem").write_bytes(public_key_to_pem(self.ops.public_key()))
        self.db_url = f"sqlite:///{tmp / 'keystore.sqlite'}"
        self.store = KeyStore.open(self.db_url)
        admin = KeyAdmin(self.store)
        since = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
        for gm, key in self.gemeenten.items():
            admin.register_gemeente_key(GemeenteKey(gm, key.public_key(), since), "test")
        self.env = {
            "HERSTELBUS_BOOTSTRAP_SERVERS": bootstrap, "HERSTELBUS_DATA_DIR": str(tmp / "data"),
            "HERSTELBUS_KEYSTORE_URL": self.db_url, "HERSTELBUS_PSEUDONYM_KEY_FILE": str(tmp / "pseudonym.key"),
            "HERSTELBUS_SIGNING_KEY_FILE": str(tmp / "signing.pem"),
            "HERSTELBUS_OPS_PUBLIC_KEY_FILE": str(tmp / "ops.pub.pem"), "HERSTELBUS_LOG_FORMAT": "json",
        }

    def publish(self, events: list[dict | bytes]) -> list[tuple[str, int, int]]:
        """As UHT (events first, then any raw bytes that are no event at all)."""
        positions = publish(self.bootstrap, [contracts.parse_json_event(e) for e in events if isinstance(e, dict)])
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        broken = [producer.send("uht.overdracht.v1", key=b"kapot", value=e) for e in events if isinstance(e, bytes)]
        producer.flush()
        producer.close()
        return positions + [(m.topic, m.partition, m.offset) for m in (f.get() for f in broken)]

    def read(self, topic: str, until, timeout: float = 180) -> list:  # generous: CI machines are busy
        return read_until(self.bootstrap, topic, until, timeout)

    def open_all(self, gm: str, messages: list) -> list[dict | KeyRowState]:
        """As the gemeente: verify announcements, fetch keys, open with its own private key."""
        access = GemeenteAccess(self.store)
        ring = OpeningKeyring(gm, [self.gemeenten[gm]], [self.signing.public_key()])
        for announcement in access.announcements(gm):
            ring.add(announcement.to_bytes())
        opened = []
        for message in messages:
            record_type, record = contracts.decode(message.value)
            layout = PiiLayout(contracts.get_catalogue().current(record_type.removeprefix("gerouteerde_")).schema)
            ref = key_ref(record, layout=layout, gemeentecode=gm, event_id=str(record["event_id"]),
                          subject=record["subject"])
            (key,) = access.release(gm, [ref], PURPOSE, policy.trace_from(None))
            opened.append(open_event(record, layout=layout, keyring=ring, event_id=str(record["event_id"]),
                                     subject=record["subject"], key=key))
        return opened


@pytest.fixture(scope="module")
def routed(kafka, tmp_path_factory: pytest.TempPathFactory):
    settings = get_settings()
    provision(kafka.bootstrap, wanted_topics(settings.topic_policy(), dt.date(2025, 1, 1)), 1)
    world = World(tmp_path_factory.mktemp("router"), kafka.bootstrap)
    log = world.tmp / "router.log"

    def start() -> subprocess.Popen:
        # Publish only once the worker is ready: a backlog present while faust recovers its tables
        # has been seen to leave one partition unconsumed (open defect, see issue 5's notes).
        ready_before = log.read_text().count("Worker ready") if log.exists() else 0
        with open(log, "a") as out:
            started = subprocess.Popen([sys.executable, "-m", "herstelbus", "router"], env={**os.environ, **world.env},
                                       stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while log.read_text().count("Worker ready") <= ready_before and started.poll() is None:
            assert time.monotonic() < deadline, "router not ready in 120 s"
            time.sleep(0.2)
        return started

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
            (r["bron"]["topic"], r["bron"]["partition"], r["bron"]["offset"])
            for r in (contracts.decode(m.value)[1] for m in seen)} >= set(positions))
        for message in seen:
            receipt = contracts.decode(message.value)[1]
            bron = (receipt["bron"]["topic"], receipt["bron"]["partition"], receipt["bron"]["offset"])
            if bron in by_position:
                receipts[by_position[bron]] = receipt

    exit_codes = []
    try:
        run(["urgent", "weesp", "vow", "nee", "dubbel"], [b"\x00 geen avro"])
        # The three ingest topics are not ordered among each other: the pause goes once the
        # overdracht of its dossier was routed ("eerder" is earlier in the router's order).
        run(["partner"])
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
                     if '"routed"' in line or '"level": "warning"' in line or '"level": "error"' in line)
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
