"""``herstelbus gemeente ack``'s record: reden rules with one-line errors, a valid contract record."""

from __future__ import annotations

import uuid

import pytest

from herstelbus.connectors.gemeente.bevestiging import ack_id, handmatig
from herstelbus.core import contracts
from herstelbus.errors import HerstelbusError

EID = str(uuid.uuid4())


def test_verwerkt_and_geweigerd_are_valid_records_with_the_sdk_ack_id() -> None:
    done = handmatig("GM0363", EID, "VERWERKT")
    refused = handmatig("GM0363", EID, "GEWEIGERD", reden="NIET_ONZE_INWONER", toelichting="verhuisd naar elders")
    for record in (done, refused):
        assert contracts.validate("ontvangstbevestiging", record) == []
    assert done["ack_id"] == ack_id("GM0363", EID, "VERWERKT") and done["reden"] is None
    assert (refused["reden"], refused["toelichting"]) == ("NIET_ONZE_INWONER", "verhuisd naar elders")


@pytest.mark.parametrize("args, message", [
    (dict(status="GEWEIGERD"), "--reden is required"),
    (dict(status="VERWERKT", reden="ANDERS"), "only allowed"),
    (dict(status="ONTVANGEN"), "--status"),
    (dict(status="GEWEIGERD", reden="OMDAT"), "--reden is required"),
    (dict(status="VERWERKT", event_id="kapot"), "EVENT_ID"),
])
def test_rule_breaks_are_one_line_errors(args: dict, message: str) -> None:
    event_id = args.pop("event_id", EID)
    with pytest.raises(HerstelbusError, match=message):
        handmatig("GM0363", event_id, **args)


def test_personal_data_in_toelichting_is_refused_without_echoing_it() -> None:
    with pytest.raises(HerstelbusError) as exc:
        handmatig("GM0363", EID, "GEWEIGERD", reden="ANDERS", toelichting="bsn 999990019, mail a@b.nl")
    assert "999990019" not in str(exc.value) and "toelichting" in str(exc.value)
