"""Receipts to UHT (rules 1, 7, 8): the one terminal ``statusbericht`` of every input record.

ROUTED names every gemeente, why, and where its record was written; INVALID and UNROUTABLE name
the reason and where the dead-letter / unroutable record went; DUPLICATE answers a second copy
of an event that was already routed. ``repeat_receipt`` decides, from the stored receipt of an
event id, whether an input is new, a redelivery or a duplicate.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .besluit import Routed
from .refs import KafkaRef, derived_id

ROUTED = "ROUTED"
INVALID = "INVALID"
UNROUTABLE = "UNROUTABLE"
DUPLICATE = "DUPLICATE"
TERMINAL = frozenset({ROUTED, INVALID, UNROUTABLE, DUPLICATE})

# DUPLICATE's reason: this event id was routed before, from another input record.
AL_GEROUTEERD = "EVENT_ID_AL_GEROUTEERD"

EVENTSOORT = {"overdracht": "OVERDRACHT", "pauzeknop": "PAUZEKNOP", "erkenning": "ERKENNING"}


def _receipt(record_type: str, event_id: uuid.UUID | str | None, status: str, *, bron: KafkaRef, at: datetime,
             reden: str | None = None, doel: KafkaRef | None = None, doelen: list[dict[str, Any]] | None = None,
             geminimaliseerd: bool = False, urgent: bool = False,
             overgeslagen: list[dict[str, str]] | None = None) -> dict[str, Any]:
    if record_type not in EVENTSOORT:
        raise ValueError("not a routed event type")
    eid = None if event_id is None else str(event_id)
    return {
        "status_id": derived_id("status/v1", bron, eid, status),
        "event_id": eid,
        "event_type": EVENTSOORT[record_type],
        "status": status,
        "reden": reden,
        "gemeentecode": None,
        "ack_id": None,
        "geminimaliseerd": geminimaliseerd,
        "urgent": urgent,
        "doelen": doelen or [],
        "overgeslagen": overgeslagen or [],
        "at": at,
        "bron": bron.as_record(),
        "doel": None if doel is None else doel.as_record(),
    }


def routed_receipt(record_type: str, event_id: uuid.UUID | str, besluit: Routed,
                   geschreven: Mapping[str, KafkaRef], *, bron: KafkaRef, at: datetime) -> dict[str, Any]:
    """ROUTED: ``geschreven`` maps each target gemeentecode to where its routed record was written.
    ``reden`` carries ``besluit.unroutable_primary`` when no woongemeente was among them;
    ``overgeslagen`` the earlier involved gemeenten it could not reach (ops have the event)."""
    missing = [t.gemeentecode for t in besluit.targets if t.gemeentecode not in geschreven]
    if missing:
        raise ValueError("no written position for target(s): " + ", ".join(missing))
    doelen = [{
        "gemeentecode": t.gemeentecode,
        "reden": t.reden,
        "oorspronkelijke_gemeentecode": t.oorspronkelijke_gemeentecode,
        "opvolger_gemeentecode": t.opvolger_gemeentecode,
        **geschreven[t.gemeentecode].as_record(),
    } for t in besluit.targets]
    return _receipt(record_type, event_id, ROUTED, bron=bron, at=at, reden=besluit.unroutable_primary,
                    doelen=doelen, geminimaliseerd=besluit.geminimaliseerd, urgent=besluit.urgent,
                    overgeslagen=[{"gemeentecode": code, "reden": reden} for code, reden in besluit.overgeslagen])


def invalid_receipt(record_type: str, event_id: uuid.UUID | str | None, reden: str, *, bron: KafkaRef,
                    doel: KafkaRef | None, at: datetime) -> dict[str, Any]:
    """INVALID: ``event_id`` None when it could not be read; ``doel`` is the dead letter's position."""
    return _receipt(record_type, event_id, INVALID, bron=bron, at=at, reden=reden, doel=doel)


def unroutable_receipt(record_type: str, event_id: uuid.UUID | str, reden: str, *, bron: KafkaRef,
                       doel: KafkaRef | None, at: datetime) -> dict[str, Any]:
    """UNROUTABLE: ``reden`` from ``Unroutable.reason``; ``doel`` the unroutable record's position."""
    return _receipt(record_type, event_id, UNROUTABLE, bron=bron, at=at, reden=reden, doel=doel)


def duplicate_receipt(record_type: str, event_id: uuid.UUID | str, *, bron: KafkaRef, at: datetime) -> dict[str, Any]:
    return _receipt(record_type, event_id, DUPLICATE, bron=bron, at=at, reden=AL_GEROUTEERD)


def repeat_receipt(stored: Mapping[str, Any] | None, *, record_type: str, event_id: uuid.UUID | str,
                   bron: KafkaRef, at: datetime) -> Mapping[str, Any] | None:
    """What to emit for an input whose event id may have been seen; None: handle it as new.

    ``stored`` is the terminal receipt kept for this event id (``idempotency_key``):
    - the same input record again (a redelivery after a crash or rebalance): that receipt, unchanged;
    - another record with an event id that was ROUTED: a DUPLICATE receipt, and nothing is routed;
    - another record whose earlier copy was INVALID or UNROUTABLE: None. Nothing reached a gemeente,
      so a corrected copy under the same event id gets its own chance (and its receipt is stored).
    """
    if stored is None:
        return None
    if stored.get("bron") == bron.as_record():
        return stored
    if stored.get("status") == ROUTED:
        return duplicate_receipt(record_type, event_id, bron=bron, at=at)
    return None
