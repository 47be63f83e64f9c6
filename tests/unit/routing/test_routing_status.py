"""Receipts to UHT (rules 1, 7, 8): valid statusbericht records, one terminal receipt per input."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from herstelbus.core.contracts import decode, encode, get_catalogue, validate
from herstelbus.core.contracts.pii import ROUTERING_REDENEN
from herstelbus.core.routing import (
    AL_GEROUTEERD, VOW, KafkaRef, decide, duplicate_receipt, idempotency_key, invalid_receipt, repeat_receipt,
    routed_receipt, unroutable_receipt,
)
from routing_helpers import NOW, event

ON = dt.date(2023, 5, 1)
BRON = KafkaRef("uht.pauzeknop.v1", 2, 1041)
EID = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"


def on_the_wire(receipt: dict) -> dict:
    """Encode with the contract, decode, and check it is valid: what UHT reads."""
    record_type, record = decode(encode("statusbericht", receipt))
    assert record_type == "statusbericht"
    assert validate("statusbericht", record, now=NOW) == []
    return record


def _routed(eerder=frozenset({"GM0457", "GM0014"}), **changes) -> tuple[object, dict]:
    besluit = decide("pauzeknop", event("pauzeknop", **changes), on=ON, eerder=eerder)
    geschreven = {code: KafkaRef(f"gemeente.{code}.events.v1", 0, 10 + i)
                  for i, code in enumerate(besluit.gemeentecodes)}
    return besluit, routed_receipt("pauzeknop", EID, besluit, geschreven, bron=BRON, at=NOW)


def test_routed_receipt_names_every_gemeente_why_and_where() -> None:
    _, receipt = _routed()
    wire = on_the_wire(receipt)
    assert wire["status"] == "ROUTED" and wire["reden"] is None and wire["geminimaliseerd"] is False
    assert [(d["gemeentecode"], d["reden"], d["oorspronkelijke_gemeentecode"], d["opvolger_gemeentecode"])
            for d in wire["doelen"]] == [("GM0599", "WOONGEMEENTE", "GM0599", None),
                                         ("GM0014", "EERDER_BETROKKEN", "GM0014", None),
                                         ("GM0363", "EERDER_BETROKKEN", "GM0457", "GM0363")]
    assert wire["doelen"][2]["topic"] == "gemeente.GM0363.events.v1" and wire["doelen"][2]["offset"] == 12
    assert wire["bron"] == {"topic": "uht.pauzeknop.v1", "partition": 2, "offset": 1041}


def test_routed_without_woongemeente_names_why() -> None:
    _, receipt = _routed(woonsituatie=VOW, gemeentecode=None)
    wire = on_the_wire(receipt)
    assert wire["status"] == "ROUTED" and wire["reden"] == VOW
    assert {d["reden"] for d in wire["doelen"]} == {"EERDER_BETROKKEN"}


def test_minimised_overdracht_says_so() -> None:
    besluit = decide("overdracht", event("overdracht", contactwens="NEE"), on=ON)
    receipt = routed_receipt("overdracht", EID, besluit, {"GM0363": KafkaRef("gemeente.GM0363.events.v1", 0, 5)},
                             bron=KafkaRef("uht.overdracht.v1", 0, 9), at=NOW)
    assert on_the_wire(receipt)["geminimaliseerd"] is True


def test_routed_receipt_names_the_earlier_gemeente_it_could_not_reach() -> None:
    besluit, receipt = _routed(eerder=frozenset({"GM0788", "GM0014"}))  # GM0788: split since
    wire = on_the_wire(receipt)
    assert wire["overgeslagen"] == [{"gemeentecode": "GM0788", "reden": "SPLITSING"}]
    assert "GM0788" not in [d["gemeentecode"] for d in wire["doelen"]]
    assert on_the_wire(_routed()[1])["overgeslagen"] == []


def test_urgent_overdracht_says_so_for_its_deadlines() -> None:
    besluit = decide("overdracht", event("overdracht", urgentie={"urgent": True, "reden": "DREIGENDE_HUISUITZETTING"}), on=ON)
    receipt = routed_receipt("overdracht", EID, besluit, {"GM0363": KafkaRef("gemeente.GM0363.events.v1", 0, 5)},
                             bron=KafkaRef("uht.overdracht.v1", 0, 9), at=NOW)
    assert on_the_wire(receipt)["urgent"] is True
    _, other = _routed()
    assert on_the_wire(other)["urgent"] is False


def test_routed_receipt_needs_a_position_for_every_target() -> None:
    besluit, _ = _routed()
    with pytest.raises(ValueError):
        routed_receipt("pauzeknop", EID, besluit, {"GM0599": BRON}, bron=BRON, at=NOW)


def test_invalid_unroutable_and_duplicate_receipts() -> None:
    dead = KafkaRef("herstel.deadletter.v1", 0, 3)
    invalid = on_the_wire(invalid_receipt("overdracht", None, "MARKER_ONGELDIG", bron=BRON, doel=dead, at=NOW))
    assert invalid["event_id"] is None and invalid["reden"] == "MARKER_ONGELDIG"
    assert invalid["doel"] == dead.as_record()
    held = KafkaRef("herstel.unroutable.v1", 0, 8)
    unroutable = on_the_wire(unroutable_receipt("erkenning", EID, "SPLITSING", bron=BRON, doel=held, at=NOW))
    assert (unroutable["status"], unroutable["reden"], unroutable["event_type"]) == ("UNROUTABLE", "SPLITSING",
                                                                                       "ERKENNING")
    duplicate = on_the_wire(duplicate_receipt("pauzeknop", EID, bron=BRON, at=NOW))
    assert (duplicate["status"], duplicate["reden"], duplicate["doelen"]) == ("DUPLICATE", AL_GEROUTEERD, [])


def test_status_id_is_derived_from_the_input_not_drawn() -> None:
    a = duplicate_receipt("pauzeknop", EID, bron=BRON, at=NOW)
    later = duplicate_receipt("pauzeknop", EID, bron=BRON, at=NOW + dt.timedelta(hours=1))
    elsewhere = duplicate_receipt("pauzeknop", EID, bron=KafkaRef(BRON.topic, 2, 1042), at=NOW)
    assert later["status_id"] == a["status_id"] != elsewhere["status_id"]
    assert unroutable_receipt("pauzeknop", EID, VOW, bron=BRON, doel=None, at=NOW)["status_id"] != a["status_id"]


def test_redelivery_gets_the_same_receipt_and_a_second_copy_gets_duplicate() -> None:
    _, receipt = _routed()
    stored = on_the_wire(receipt)  # what the adapter keeps per event id, read back
    assert repeat_receipt(None, record_type="pauzeknop", event_id=EID, bron=BRON, at=NOW) is None
    assert repeat_receipt(stored, record_type="pauzeknop", event_id=EID, bron=BRON, at=NOW) is stored
    copy = KafkaRef("uht.pauzeknop.v1", 0, 77)
    again = repeat_receipt(stored, record_type="pauzeknop", event_id=EID, bron=copy, at=NOW)
    assert on_the_wire(again)["status"] == "DUPLICATE" and again["bron"] == copy.as_record()


@pytest.mark.parametrize("build", [
    lambda: invalid_receipt("pauzeknop", EID, "BSN_ONGELDIG", bron=BRON, doel=None, at=NOW),
    lambda: unroutable_receipt("pauzeknop", EID, "ONBEKEND", bron=BRON, doel=None, at=NOW),
])
def test_a_corrected_copy_of_a_refused_event_gets_its_own_chance(build) -> None:
    stored = on_the_wire(build())
    copy = KafkaRef("uht.pauzeknop.v1", 0, 77)
    assert repeat_receipt(stored, record_type="pauzeknop", event_id=EID, bron=copy, at=NOW) is None


def test_idempotency_key_is_the_canonical_event_id() -> None:
    assert idempotency_key(EID.upper()) == idempotency_key(uuid.UUID(EID)) == EID


def _type(record: dict, name: str) -> dict:
    return next(f for f in record["fields"] if f["name"] == name)["type"]


def test_status_contract_knows_every_routing_reason() -> None:
    doel = _type(get_catalogue().current("statusbericht").expanded, "doelen")["items"]
    assert _type(doel, "reden")["symbols"] == ROUTERING_REDENEN
    for routed in ("gerouteerde_overdracht", "gerouteerde_pauzeknop", "gerouteerde_erkenning"):
        routering = _type(get_catalogue().current(routed).expanded, "routering")
        assert _type(routering, "reden")["symbols"] == ROUTERING_REDENEN
    assert "EERDER_BETROKKEN" in ROUTERING_REDENEN
