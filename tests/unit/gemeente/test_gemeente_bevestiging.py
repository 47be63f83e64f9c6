"""Acks: deterministic ids, valid contract records, only the refusal code as toelichting."""

from __future__ import annotations

import uuid

from herstelbus.connectors.gemeente.bevestiging import (
    ack_id, geweigerd, kan_bevestigen, ontvangen, placeholder_oin,
)
from herstelbus.connectors.gemeente.resultaat import Geweigerd, Positie, Weigercode
from herstelbus.core import contracts

EID = str(uuid.uuid4())


def test_ack_id_is_stable_per_gemeente_event_and_status() -> None:
    assert ack_id("GM0363", EID, "ONTVANGEN") == ack_id("GM0363", EID, "ONTVANGEN")
    assert len({ack_id("GM0363", EID, "ONTVANGEN"), ack_id("GM0599", EID, "ONTVANGEN"),
                ack_id("GM0363", EID, "GEWEIGERD")}) == 3


def test_ontvangen_and_geweigerd_are_valid_contract_records() -> None:
    ok = ontvangen("GM0363", EID)
    assert contracts.validate("ontvangstbevestiging", ok) == [] and ok["reden"] is None
    refused = geweigerd("GM0363", Geweigerd(EID, Weigercode.SUBJECT_ERASED, None, "overdracht", 1, Positie("t", 0, 1)))
    assert contracts.validate("ontvangstbevestiging", refused) == []
    assert (refused["status"], refused["reden"], refused["toelichting"]) == ("GEWEIGERD", "ONLEESBAAR", "subject_erased")
    contracts.decode(contracts.encode("ontvangstbevestiging", refused))
    contracts.source_urn(placeholder_oin("GM0363"), "gemeente-sdk")


def test_only_records_with_an_event_uuid_can_be_acknowledged() -> None:
    assert kan_bevestigen(EID) and not kan_bevestigen(None) and not kan_bevestigen("kapot")
