"""What a gemeente receives: minimised contact details (rule 5), the priority header (rule 6) and the
routed record, sealed with the real privacy core and encoded with the real contract."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from herstelbus.core.contracts import (
    ROUTED_TYPES, cloudevent_headers, decode, encode, parse_cloudevent_headers, source_urn, validate,
)
from herstelbus.core.privacy import PseudonymSecret, open_event, pseudonymise, seal_event
from herstelbus.core.routing import (
    PRIORITEIT_HEADER, Target, decide, minimise, prioriteit_headers, routed_record,
)
from routing_helpers import NOW, SECRET_B64, Gemeente, event, layout

ON = dt.date(2025, 3, 4)
SOURCE = source_urn("00000001003214345000", "herstelbus")


def test_contactwens_nee_routes_without_contact_details() -> None:
    record = event("overdracht", contactwens="NEE")
    before = dict(record)
    plain, minimised = minimise("overdracht", record)
    assert minimised is True
    assert plain["adres"] is None and plain["telefoon"] is None and plain["email"] is None
    kept = {k: v for k, v in record.items() if k not in ("adres", "telefoon", "email")}
    assert {k: plain[k] for k in kept} == kept  # persoon, dossier, toeslagpartner: the creditor needs them
    assert record == before  # the caller's record is untouched
    assert validate("overdracht", plain, now=NOW) == []  # still a valid overdracht
    assert decide("overdracht", record, on=ON).geminimaliseerd is True


@pytest.mark.parametrize("record_type, contactwens", [
    ("overdracht", "JA"), ("overdracht", "ONBEKEND"), ("pauzeknop", None), ("erkenning", None),
])
def test_everything_else_is_routed_whole(record_type, contactwens) -> None:
    record = event(record_type, **({"contactwens": contactwens} if contactwens else {}))
    assert minimise(record_type, record) == (record, False)
    assert decide(record_type, record, on=ON).geminimaliseerd is False


def test_urgent_overdracht_carries_the_priority_marker() -> None:
    urgent = decide("overdracht", event("overdracht"), on=ON)
    assert prioriteit_headers(urgent) == [(PRIORITEIT_HEADER, b"urgent")]
    assert prioriteit_headers(decide("overdracht", event("overdracht", urgentie=None), on=ON)) == []
    # A CloudEvents extension attribute: gemeente consumers see it in the parsed envelope.
    headers = cloudevent_headers("gerouteerde_overdracht", id=str(uuid.uuid4()), source=SOURCE, time=NOW,
                                 subject="p1:" + "a" * 32) + prioriteit_headers(urgent)
    assert parse_cloudevent_headers(headers).extensions == {"prioriteit": "urgent"}


@pytest.mark.parametrize("record_type", sorted(ROUTED_TYPES))
def test_routed_record_is_valid_and_opens_at_the_target(record_type) -> None:
    amsterdam = Gemeente("GM0363")
    record = event(record_type, gemeentecode="GM0457")  # Weesp: routed to Amsterdam after the merger
    target = decide(record_type, record, on=dt.date(2023, 5, 1)).targets[0]
    subject = pseudonymise(record["persoon"]["bsn"], PseudonymSecret.from_base64(SECRET_B64))
    plain, _ = minimise(record_type, record)
    eid = str(record["event_id"])
    sealed = seal_event(plain, layout=layout(record_type), epoch=amsterdam.epoch, event_id=eid, subject=subject)
    routed = routed_record(sealed.record, subject=subject, target=target, sleutel_id=amsterdam.epoch.kek_id,
                           bron_schema=layout(record_type).fingerprint_hex, gerouteerd_op=NOW)
    wire_type, on_wire = decode(encode(ROUTED_TYPES[record_type], routed))
    assert wire_type == ROUTED_TYPES[record_type]
    assert validate(wire_type, on_wire, now=NOW) == []
    assert on_wire["gemeentecode"] == "GM0363"
    assert on_wire["routering"] == {"reden": "HERINDELING", "oorspronkelijke_gemeentecode": "GM0457",
                                    "opvolger_gemeentecode": "GM0363", "gerouteerd_op": NOW}
    opened = open_event(on_wire, layout=layout(record_type), keyring=amsterdam.keyring, event_id=eid,
                        subject=subject, key=sealed.wrapped_key)
    assert opened["persoon"] == record["persoon"] and opened["dossiernummer"] == record["dossiernummer"]


def test_routed_record_refuses_an_unsealed_record() -> None:
    with pytest.raises(ValueError):
        routed_record(event("pauzeknop"), subject="p1:" + "a" * 32, target=Target("GM0363", "WOONGEMEENTE"),
                      sleutel_id="kek-x", bron_schema="0" * 16, gerouteerd_op=NOW)
