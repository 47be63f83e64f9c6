"""The acknowledgement relay's core: transitions, rejections, records (issue 6)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from herstelbus.core import contracts
from herstelbus.core.acks import (
    AL_AFGEROND, GEMEENTE_PAST_NIET_BIJ_TOPIC, GEWEIGERD, NIET_GEROUTEERD_AAN_GEMEENTE, ONTVANGEN, ROUTED,
    STAP_TERUG, VERWERKT, Doel, beoordeel, doelen_uit, overgang,
)
from herstelbus.core.routing.refs import KafkaRef

GM = "GM0363"
NOW = datetime(2025, 3, 3, 12, 0, tzinfo=timezone.utc)
TOPIC = f"gemeente.{GM}.acks.v1"
EVENT = str(uuid.uuid4())


def doel(state: str = ROUTED, **kw) -> Doel:
    return Doel(event_id=EVENT, gemeentecode=GM, event_type="OVERDRACHT", routed_at=NOW, state=state,
                bron=KafkaRef("uht.overdracht.v1", 1, 7), doel=KafkaRef(f"gemeente.{GM}.events.v1", 0, 42), **kw)


def ack(status: str, *, reden: str | None = None, gemeentecode: str = GM, ack_id: str | None = None) -> dict:
    return {"ack_id": ack_id or str(uuid.uuid4()), "event_id": EVENT, "gemeentecode": gemeentecode,
            "status": status, "reden": reden, "toelichting": "vrije tekst die nergens heen mag", "at": NOW}


def judge(a: dict, d: Doel | None, offset: int = 5):
    return beoordeel(a, d, topic_gemeente=GM, bron=KafkaRef(TOPIC, 0, offset), topic=TOPIC, now=NOW)


@pytest.mark.parametrize(("state", "status", "expected"), [
    (ROUTED, ONTVANGEN, (ONTVANGEN, None)),
    (ROUTED, VERWERKT, (VERWERKT, None)),  # implies ontvangen
    (ROUTED, GEWEIGERD, (GEWEIGERD, None)),
    (ONTVANGEN, ONTVANGEN, (None, None)),
    (ONTVANGEN, VERWERKT, (VERWERKT, None)),
    (ONTVANGEN, GEWEIGERD, (GEWEIGERD, None)),
    (VERWERKT, ONTVANGEN, (None, STAP_TERUG)),
    (VERWERKT, VERWERKT, (None, None)),
    (VERWERKT, GEWEIGERD, (None, AL_AFGEROND)),
    (GEWEIGERD, ONTVANGEN, (None, STAP_TERUG)),
    (GEWEIGERD, VERWERKT, (None, AL_AFGEROND)),
    (GEWEIGERD, GEWEIGERD, (None, None)),
])
def test_transitions(state: str, status: str, expected: tuple) -> None:
    assert overgang(state, status) == expected


def test_accepted_ack_relays_a_valid_status_without_toelichting() -> None:
    a = ack(ONTVANGEN)
    besluit = judge(a, doel())
    assert besluit.soort == "geaccepteerd"
    assert besluit.doel.state == ONTVANGEN and a["ack_id"] in besluit.doel.ack_ids
    status = besluit.status
    assert (status["status"], status["gemeentecode"], status["ack_id"], status["reden"]) == (ONTVANGEN, GM, a["ack_id"], None)
    assert status["event_type"] == "OVERDRACHT" and status["bron"] == {"topic": TOPIC, "partition": 0, "offset": 5}
    assert "vrije tekst" not in repr(besluit)
    assert contracts.validate("statusbericht", status) == []
    assert besluit.unroutable is None and besluit.audit is None


def test_relay_id_is_deterministic() -> None:
    a = ack(VERWERKT)
    assert judge(a, doel()).status["status_id"] == judge(a, doel()).status["status_id"]
    assert judge(a, doel()).status["status_id"] != judge(a, doel(), offset=6).status["status_id"]


def test_same_ack_id_again_is_a_noop_even_after_the_state_moved() -> None:
    a = ack(ONTVANGEN)
    na = judge(a, doel()).doel
    na = judge(ack(VERWERKT), na).doel
    again = judge(a, na)
    assert again.soort == "herhaling" and again.status is None and again.audit is None


def test_same_status_under_a_new_ack_id_is_a_noop() -> None:
    na = judge(ack(ONTVANGEN), doel()).doel
    assert judge(ack(ONTVANGEN), na).soort == "herhaling"


@pytest.mark.parametrize(("state", "status", "reden"), [
    (VERWERKT, ONTVANGEN, STAP_TERUG), (GEWEIGERD, VERWERKT, AL_AFGEROND), (VERWERKT, GEWEIGERD, AL_AFGEROND),
])
def test_backwards_or_second_end_state_is_rejected_with_an_audit_record(state, status, reden) -> None:
    besluit = judge(ack(status, reden="ANDERS" if status == GEWEIGERD else None), doel(state))
    assert (besluit.soort, besluit.reden, besluit.status) == ("geweigerd", reden, None)
    assert besluit.audit["reden"] == reden and besluit.audit["event_id"] == EVENT
    assert contracts.validate("audit", besluit.audit) == []


def test_unknown_event_or_other_gemeente_is_rejected() -> None:
    besluit = judge(ack(ONTVANGEN), None)
    assert besluit.reden == NIET_GEROUTEERD_AAN_GEMEENTE
    assert besluit.audit["gemeentecode"] == GM and besluit.audit["topic"] == TOPIC
    assert contracts.validate("audit", besluit.audit) == []


def test_ack_for_another_gemeente_on_this_topic_is_rejected() -> None:
    besluit = judge(ack(ONTVANGEN, gemeentecode="GM0599"), doel())
    assert besluit.reden == GEMEENTE_PAST_NIET_BIJ_TOPIC and besluit.status is None


def test_geweigerd_niet_onze_inwoner_goes_to_ops_too() -> None:
    a = ack(GEWEIGERD, reden="NIET_ONZE_INWONER")
    besluit = judge(a, doel(ONTVANGEN))
    assert besluit.status["reden"] == "NIET_ONZE_INWONER" and besluit.status["status"] == GEWEIGERD
    held = besluit.unroutable
    assert held["event_id"] == EVENT and held["reden"] == "NIET_ONZE_INWONER" and held["component"] == "acks"
    assert held["bron"] == {"topic": "uht.overdracht.v1", "partition": 1, "offset": 7}
    assert held["origineel"] == b"" and held["event_type"] == "overdracht"
    assert contracts.validate("deadletter", held) == []
    assert contracts.validate("statusbericht", besluit.status) == []


def test_other_refusals_are_relayed_only() -> None:
    besluit = judge(ack(GEWEIGERD, reden="ONLEESBAAR"), doel())
    assert besluit.status["reden"] == "ONLEESBAAR" and besluit.unroutable is None


def test_doelen_from_a_routed_receipt() -> None:
    receipt = {"status": "ROUTED", "event_id": uuid.UUID(EVENT), "event_type": "PAUZEKNOP", "at": NOW,
               "bron": {"topic": "uht.pauzeknop.v1", "partition": 2, "offset": 3},
               "doelen": [{"gemeentecode": GM, "topic": "t", "partition": 0, "offset": 1},
                          {"gemeentecode": "GM0599", "topic": "u", "partition": 0, "offset": 2}]}
    got = doelen_uit(receipt)
    assert [(d.gemeentecode, d.event_type, d.state, d.event_id) for d in got] == [
        (GM, "PAUZEKNOP", ROUTED, EVENT), ("GM0599", "PAUZEKNOP", ROUTED, EVENT)]
    assert got[1].doel == KafkaRef("u", 0, 2)
    assert doelen_uit({**receipt, "status": "ONTVANGEN"}) == []
    assert {d.urgent for d in got} == {False}  # a receipt from before statusbericht v2
    assert {d.urgent for d in doelen_uit({**receipt, "urgent": True})} == {True}


def test_accepted_status_never_carries_the_toelichting() -> None:
    besluit = judge(ack(GEWEIGERD, reden="ANDERS"), replace(doel(), state=ONTVANGEN))
    assert all("vrije tekst" not in repr(v) for v in (besluit.status, besluit.doel))
