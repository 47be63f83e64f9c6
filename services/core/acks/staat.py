"""The state of one routed event at one gemeente, and what an ontvangstbevestiging does to it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from herstelbus.core.routing.refs import KafkaRef

ROUTED, ONTVANGEN, VERWERKT, GEWEIGERD = "ROUTED", "ONTVANGEN", "VERWERKT", "GEWEIGERD"
EINDSTATUS = frozenset({VERWERKT, GEWEIGERD})
NIET_ONZE_INWONER = "NIET_ONZE_INWONER"

# Reason codes of a rejected ack (audit records).
NIET_GEROUTEERD_AAN_GEMEENTE = "NIET_GEROUTEERD_AAN_GEMEENTE"
GEMEENTE_PAST_NIET_BIJ_TOPIC = "GEMEENTE_PAST_NIET_BIJ_TOPIC"
STAP_TERUG = "STAP_TERUG"
AL_AFGEROND = "AL_AFGEROND"


@dataclass(frozen=True)
class Doel:
    """One gemeente an event was routed to, and how far it got there."""

    event_id: str
    gemeentecode: str
    event_type: str  # OVERDRACHT | PAUZEKNOP | ERKENNING
    routed_at: datetime
    state: str = ROUTED
    urgent: bool = False  # an urgent overdracht: the urgent deadlines apply
    ack_ids: frozenset[str] = frozenset()
    gemeld: frozenset[str] = frozenset()  # deadlines (target status) already notified as OVERDUE
    bron: KafkaRef | None = None  # where UHT's event was read (ingest)
    doel: KafkaRef | None = None  # where the routed record was written
    changed_at: datetime | None = None


def doelen_uit(receipt: Mapping[str, Any]) -> list[Doel]:
    """A Doel per gemeente of a ROUTED receipt; [] for any other status."""
    if receipt.get("status") != ROUTED or receipt.get("event_id") is None:
        return []
    b = receipt.get("bron")
    bron = KafkaRef(b["topic"], b["partition"], b["offset"]) if b else None
    return [Doel(event_id=str(receipt["event_id"]), gemeentecode=d["gemeentecode"],
                 event_type=receipt["event_type"], routed_at=receipt["at"], bron=bron,
                 urgent=bool(receipt.get("urgent")),
                 doel=KafkaRef(d["topic"], d["partition"], d["offset"]))
            for d in receipt.get("doelen") or []]


# (state, ack status) -> new state, or the reason the step is refused. The same status again is
# absent: a no-op.
_OVERGANGEN: dict[tuple[str, str], str] = {
    (ROUTED, ONTVANGEN): ONTVANGEN,
    (ROUTED, VERWERKT): VERWERKT,  # implies ontvangen
    (ROUTED, GEWEIGERD): GEWEIGERD,
    (ONTVANGEN, VERWERKT): VERWERKT,
    (ONTVANGEN, GEWEIGERD): GEWEIGERD,
}


def overgang(state: str, status: str) -> tuple[str | None, str | None]:
    """(new state, None), (None, None) for a no-op, or (None, reason) when refused."""
    if state == status:
        return None, None
    if (state, status) in _OVERGANGEN:
        return _OVERGANGEN[state, status], None
    return None, STAP_TERUG if status == ONTVANGEN else AL_AFGEROND


@dataclass(frozen=True)
class Besluit:
    """What one ack leads to. ``soort``: geaccepteerd | herhaling | geweigerd."""

    soort: str
    doel: Doel | None = None  # the new state (geaccepteerd)
    reden: str | None = None  # geweigerd: the reason code
    status: dict[str, Any] | None = None  # statusbericht for uht.status.v1
    unroutable: dict[str, Any] | None = None  # deadletter-contract record for herstel.unroutable.v1
    audit: dict[str, Any] | None = None  # audit record for herstel.audit.v1


def beoordeel(ack: Mapping[str, Any], doel: Doel | None, *, topic_gemeente: str, bron: KafkaRef,
              topic: str, now: datetime) -> Besluit:
    """Judge a contract-valid ack read from ``topic`` (the acks topic of ``topic_gemeente``) at ``bron``.
    ``doel``: the stored state for (ack.event_id, ack.gemeentecode), None when never routed there."""
    from .berichten import audit_record, relay_status, unroutable_for_ops  # berichten builds on Doel

    def weiger(reden: str) -> Besluit:
        return Besluit("geweigerd", reden=reden,
                       audit=audit_record(ack, reden, topic_gemeente=topic_gemeente, topic=topic, bron=bron, at=now))

    if ack["gemeentecode"] != topic_gemeente:
        return weiger(GEMEENTE_PAST_NIET_BIJ_TOPIC)
    if doel is None:
        return weiger(NIET_GEROUTEERD_AAN_GEMEENTE)
    ack_id = str(ack["ack_id"])
    if ack_id in doel.ack_ids:
        return Besluit("herhaling", doel=doel)
    nieuw, reden = overgang(doel.state, ack["status"])
    if reden is not None:
        return weiger(reden)
    if nieuw is None:
        return Besluit("herhaling", doel=doel)
    na = replace(doel, state=nieuw, ack_ids=doel.ack_ids | {ack_id}, changed_at=now)
    status = relay_status(ack, na, bron=bron, at=now)
    held = None
    if nieuw == GEWEIGERD and ack.get("reden") == NIET_ONZE_INWONER:
        held = unroutable_for_ops(na, ack_bron=bron, at=now)
    return Besluit("geaccepteerd", doel=na, status=status, unroutable=held)
