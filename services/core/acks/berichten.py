"""The records the relay writes: statusberichten for UHT, the unroutable record, audit records.
Built from ids, codes and positions only: an ack's toelichting is never copied anywhere."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from herstelbus.core.routing.deadletter import unroutable_record
from herstelbus.core.routing.refs import KafkaRef, derived_id

from .staat import GEWEIGERD, NIET_ONZE_INWONER, Doel

COMPONENT = "acks"
ACTOR = "herstelbus-acks"
ACTIE = "ontvangstbevestiging.weigeren"
GEEN_SLEUTEL = "geen"  # the unroutable record's origineel is empty: nothing was sealed


def _status(doel: Doel, status: str, *, status_id: str, at: datetime, reden: str | None = None,
            ack_id: str | None = None, bron: KafkaRef | None = None) -> dict[str, Any]:
    return {
        "status_id": status_id,
        "event_id": doel.event_id,
        "event_type": doel.event_type,
        "status": status,
        "reden": reden,
        "gemeentecode": doel.gemeentecode,
        "ack_id": ack_id,
        "geminimaliseerd": False,
        "urgent": doel.urgent,
        "doelen": [],
        "overgeslagen": [],
        "at": at,
        "bron": None if bron is None else bron.as_record(),
        "doel": None if doel.doel is None else doel.doel.as_record(),
    }


def relay_status(ack: Mapping[str, Any], doel: Doel, *, bron: KafkaRef, at: datetime) -> dict[str, Any]:
    """ONTVANGEN | VERWERKT | GEWEIGERD for UHT; ``bron`` is where the ack was read, ``doel`` where
    the routed record was written. The reden only for GEWEIGERD, never the toelichting."""
    status = ack["status"]
    return _status(doel, status, at=at, ack_id=str(ack["ack_id"]), bron=bron,
                   reden=ack.get("reden") if status == GEWEIGERD else None,
                   status_id=derived_id("status/acks/v1", bron, doel.event_id, doel.gemeentecode, status))


def overdue_status(doel: Doel, termijn_status: str, *, at: datetime) -> dict[str, Any]:
    """OVERDUE: ``termijn_status`` (ONTVANGEN | VERWERKT) did not come in time. One id per
    (event, gemeente, deadline): derived from the routed record's position."""
    anker = doel.doel or KafkaRef("-", 0, 0)
    return _status(doel, "OVERDUE", at=at, reden=f"{termijn_status}_TE_LAAT",
                   status_id=derived_id("overdue/acks/v1", anker, doel.event_id, doel.gemeentecode, termijn_status))


def unroutable_for_ops(doel: Doel, *, ack_bron: KafkaRef, at: datetime) -> dict[str, Any]:
    """For herstel.unroutable.v1: the gemeente says the parent is not its inwoner. ``bron`` is UHT's
    ingest position of the event (when known); ops re-route it from UHT's source."""
    bron = doel.bron or ack_bron
    record = unroutable_record(doel.event_type.lower(), doel.event_id, NIET_ONZE_INWONER, bron=bron,
                               origineel=b"", sleutel_id=GEEN_SLEUTEL, at=at, component=COMPONENT)
    # Two gemeenten may refuse the same event: the id follows the refusing ack.
    record["deadletter_id"] = derived_id("unroutable/acks/v1", ack_bron, doel.event_id, doel.gemeentecode)
    return record


def audit_record(ack: Mapping[str, Any], reden: str, *, topic_gemeente: str, topic: str, bron: KafkaRef,
                 at: datetime) -> dict[str, Any]:
    """A refused ack: which gemeente's topic, which event, why. No free text."""
    return {
        "audit_id": derived_id("audit/acks/v1", bron, reden),
        "at": at,
        "actor": ACTOR,
        "component": COMPONENT,
        "actie": ACTIE,
        "resultaat": "MISLUKT",
        "reden": reden,
        "gemeentecode": topic_gemeente,
        "topic": topic,
        "event_id": str(ack["event_id"]),
        "subject": None,
        "aantallen": {},
    }
