"""Dead letters and unroutable records for ops: valid contract records, reasons without values."""

from __future__ import annotations

from herstelbus.core.contracts import EnvelopeError, InvalidEvent, check, decode, encode, validate
from herstelbus.core.contracts import errors as E
from herstelbus.core.privacy import RecordInvalid
from herstelbus.core.routing import KafkaRef, deadletter_record, unroutable_record
from routing_helpers import NOW, event

BRON = KafkaRef("uht.overdracht.v1", 1, 42)
SEALED_FOR_OPS = b"\x01sealed-for-ops-opaque"


def on_the_wire(record: dict) -> dict:
    record_type, back = decode(encode("deadletter", record))
    assert record_type == "deadletter" and validate("deadletter", back, now=NOW) == []
    return back


def _invalid_overdracht() -> tuple[dict, InvalidEvent]:
    record = event("overdracht")
    record["persoon"] = {**record["persoon"], "bsn": "999990018"}  # fails the 11-proef
    record["adres"] = {**record["adres"], "postcode": "1011 SS"}
    try:
        check("overdracht", record, now=NOW)
    except InvalidEvent as exc:
        return record, exc
    raise AssertionError("expected an invalid event")


def test_dead_letter_for_an_invalid_event_holds_codes_and_paths_only() -> None:
    record, exc = _invalid_overdracht()
    wire = on_the_wire(deadletter_record(exc.errors, bron=BRON, origineel=SEALED_FOR_OPS, sleutel_id="x25519-ops",
                                         at=NOW, event_id=record["event_id"], event_type="overdracht"))
    assert wire["reden"] == "BSN_ONGELDIG"
    assert wire["melding"] == "2 fouten: BSN_ONGELDIG at persoon.bsn; POSTCODE_ONGELDIG at adres.postcode"
    assert wire["fouten"] == [{"reden": "BSN_ONGELDIG", "pad": "persoon.bsn"},
                              {"reden": "POSTCODE_ONGELDIG", "pad": "adres.postcode"}]
    assert (wire["component"], wire["origineel"], wire["bron"]) == ("router", SEALED_FOR_OPS, BRON.as_record())
    text = wire["melding"] + repr(wire["fouten"])
    for value in ("999990018", "1011 SS", record["persoon"]["achternaam"], record["dossiernummer"]):
        assert value not in text


def test_unreadable_input_envelope_and_privacy_errors() -> None:
    wire = on_the_wire(deadletter_record([E.WireError(E.MARKER_ONGELDIG)], bron=BRON, origineel=SEALED_FOR_OPS,
                                         sleutel_id="x25519-ops", at=NOW))
    assert (wire["reden"], wire["melding"], wire["fouten"], wire["event_id"]) == (
        "MARKER_ONGELDIG", "1 fout: MARKER_ONGELDIG", [], None)
    wire = on_the_wire(deadletter_record([EnvelopeError(E.HEADER_ONGELDIG, "content-type")], bron=BRON,
                                         origineel=b"", sleutel_id="x25519-ops", at=NOW))
    assert wire["fouten"] == [{"reden": "HEADER_ONGELDIG", "pad": "content_type"}]
    wire = on_the_wire(deadletter_record([RecordInvalid("value_does_not_match_schema", path="persoon")], bron=BRON,
                                         origineel=b"", sleutel_id="x25519-ops", at=NOW))
    assert wire["reden"] == "VALUE_DOES_NOT_MATCH_SCHEMA"


def test_many_errors_fit_the_contract() -> None:
    fouten = [("TE_LANG", f"veld{i}.met.een.lang.pad") for i in range(150)]
    wire = on_the_wire(deadletter_record(fouten, bron=BRON, origineel=b"", sleutel_id="x25519-ops", at=NOW))
    assert len(wire["fouten"]) == 100 and len(wire["melding"]) <= 2000
    assert wire["melding"].startswith("150 fouten: TE_LANG at veld0") and wire["melding"].endswith(")")


def test_unroutable_record_names_the_reason_and_the_field() -> None:
    record = event("pauzeknop", woonsituatie="VOW", gemeentecode=None)
    vow = on_the_wire(unroutable_record("pauzeknop", record["event_id"], "VOW", bron=BRON, origineel=SEALED_FOR_OPS,
                                        sleutel_id="x25519-ops", at=NOW))
    assert (vow["reden"], vow["melding"], vow["event_type"]) == ("VOW", "niet routeerbaar: VOW at woonsituatie",
                                                                 "pauzeknop")
    split = unroutable_record("pauzeknop", record["event_id"], "SPLITSING", bron=BRON, origineel=b"",
                              sleutel_id="x25519-ops", at=NOW)
    assert split["fouten"] == [{"reden": "SPLITSING", "pad": "gemeentecode"}]


def test_ids_are_derived_from_the_input_position() -> None:
    def dead(bron: KafkaRef) -> str:
        return deadletter_record([("X", "a")], bron=bron, origineel=b"", sleutel_id="k", at=NOW)["deadletter_id"]

    assert dead(BRON) == dead(KafkaRef(BRON.topic, BRON.partition, BRON.offset)) != dead(KafkaRef(BRON.topic, 1, 43))
    held = unroutable_record("overdracht", "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", "VOW", bron=BRON, origineel=b"",
                             sleutel_id="k", at=NOW)["deadletter_id"]
    assert held != dead(BRON)
