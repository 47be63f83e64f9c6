"""Rule 3 with an earlier involved gemeente that no longer exists as one (split since): the event
is routed to the gemeenten that can be reached, and ops get a record on herstel.unroutable.v1 that
names the one that was skipped, with the original sealed for them: never silently missed."""

from __future__ import annotations

import datetime as dt

from herstelbus.core import contracts
from herstelbus.core import routing as r
from herstelbus.core.privacy import GemeenteKey, PseudonymSecret, generate_gemeente_key, generate_signing_key
from herstelbus.core.privacy.ops import open_for_ops
from herstelbus.core.topology import UNROUTABLE, gemeente_events_topic
from herstelbus.keystore.store import ExchangeWriter, KeyAdmin, KeyStore
from herstelbus.router.pipeline import Pipeline
from herstelbus.router.sealer import Sealer
from tests.unit.routing.routing_helpers import NOW, event

SOURCE = contracts.source_urn("00000001003214345000", "herstelbus")


def test_a_split_earlier_gemeente_goes_to_ops_and_the_event_is_routed_to_the_others(tmp_path) -> None:
    store = KeyStore.open(f"sqlite:///{tmp_path / 'keystore.sqlite'}")
    KeyAdmin(store).register_gemeente_key(
        GemeenteKey("GM0363", generate_gemeente_key().public_key(), dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)),
        "test")
    ops = generate_gemeente_key()
    pipeline = Pipeline(Sealer(ExchangeWriter(store), generate_signing_key()), PseudonymSecret.generate(),
                        ops.public_key(), SOURCE, clock=lambda: NOW)
    record_type, record = "erkenning", event("erkenning", gemeentecode="GM0363")
    value = contracts.encode(record_type, record)
    headers = contracts.headers_for(record_type, record, source=SOURCE)
    bron = r.KafkaRef("uht.erkenning.v1", 0, 11)

    plan = pipeline.plan(bron, b"dossier", value, headers, gezien=lambda _: None,
                         betrokken=lambda _: frozenset({"GM0788"}))  # split since: no single successor

    assert [o.topic for o in plan.outputs] == [gemeente_events_topic("GM0363"), UNROUTABLE]
    held = contracts.decode(plan.outputs[1].value)[1]
    assert (held["reden"], held["fouten"]) == (r.OVERGESLAGEN, [{"reden": "SPLITSING",
                                                                 "pad": "eerder_betrokken.GM0788"}])
    assert str(held["event_id"]) == str(record["event_id"]) and held["event_type"] == "erkenning"
    assert open_for_ops(held["origineel"], ops, str(held["deadletter_id"])) is not None  # ops can route it
    receipt = plan.receipt([r.KafkaRef(gemeente_events_topic("GM0363"), 0, 5), r.KafkaRef(UNROUTABLE, 0, 9)])
    assert receipt["status"] == "ROUTED" and [d["gemeentecode"] for d in receipt["doelen"]] == ["GM0363"]
    wire = contracts.decode(pipeline.receipt_out(receipt).value)[1]  # what UHT reads
    assert wire["overgeslagen"] == [{"gemeentecode": "GM0788", "reden": "SPLITSING"}]
    store.close()


def test_the_ops_record_id_differs_from_an_unroutable_record_of_the_same_input() -> None:
    bron = r.KafkaRef("uht.erkenning.v1", 0, 11)
    at = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    eid = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
    skipped = r.overgeslagen_record("erkenning", eid, [("GM0788", "SPLITSING")], bron=bron, origineel=b"",
                                    sleutel_id="k", at=at)
    held = r.unroutable_record("erkenning", eid, "VOW", bron=bron, origineel=b"", sleutel_id="k", at=at)
    assert skipped["deadletter_id"] != held["deadletter_id"]
    assert skipped["melding"] == "eerder betrokken niet bereikt: SPLITSING at eerder_betrokken.GM0788"
