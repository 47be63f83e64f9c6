"""Ontvangstbevestigingen (acks) to ``gemeente.<GM>.acks.v1``: ONTVANGEN once the sink has the
event durably, GEWEIGERD/ONLEESBAAR for a record that could not be opened, with only the refusal
code as ``toelichting`` (free text that must never hold personal data).

``ack_id`` is a UUIDv5 of gemeentecode, event_id and status: a retry after a crash (the sink had
the event, the offsets were not yet committed) sends the very same ack, so the exchange's acks
worker can deduplicate. Keyed by event_id: all acks of one event stay in order on one partition.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from herstelbus.kafkaclient import security
from herstelbus.core import contracts
from herstelbus.core.topology import gemeente_acks_topic
from herstelbus.errors import HerstelbusError

from .resultaat import ONLEESBAAR, Geweigerd

ONTVANGEN, VERWERKT, GEWEIGERD = "ONTVANGEN", "VERWERKT", "GEWEIGERD"
WEIGERREDENEN = ("NIET_ONZE_INWONER", "ONLEESBAAR", "ONVOLLEDIG", "ANDERS")
ACK_NAMESPACE = uuid.UUID("6f1d3c52-8a0e-4b7e-9c43-5e2a1b7d9f10")  # fixed forever: ack ids depend on it
SYSTEEM = "gemeente-sdk"


class BevestigingFout(HerstelbusError):
    """The broker did not take the acks: offsets are not committed, the batch comes again."""


def ack_id(gemeentecode: str, event_id: str, status: str) -> str:
    return str(uuid.uuid5(ACK_NAMESPACE, f"{gemeentecode}:{event_id}:{status}"))


def placeholder_oin(gemeentecode: str) -> str:
    """A 20-digit OIN for ce_source when the gemeente set none (HERSTELBUS_GEMEENTE_OIN): local use."""
    return f"0000000100{gemeentecode[2:]}000000"


def bevestiging(gemeentecode: str, event_id: str, status: str, *, reden: str | None = None,
                toelichting: str | None = None, at: datetime | None = None) -> dict[str, Any]:
    """The ``ontvangstbevestiging`` record (record form)."""
    return {
        "ack_id": ack_id(gemeentecode, event_id, status), "event_id": event_id, "gemeentecode": gemeentecode,
        "status": status, "reden": reden, "toelichting": toelichting,
        "at": (at or datetime.now(timezone.utc)).replace(microsecond=0),
    }


def ontvangen(gemeentecode: str, event_id: str) -> dict[str, Any]:
    return bevestiging(gemeentecode, event_id, ONTVANGEN)


def geweigerd(gemeentecode: str, refused: Geweigerd) -> dict[str, Any]:
    return bevestiging(gemeentecode, refused.event_id or "", GEWEIGERD, reden=ONLEESBAAR,
                       toelichting=refused.code.value)


def handmatig(gemeentecode: str, event_id: str, status: str, *, reden: str | None = None,
              toelichting: str | None = None) -> dict[str, Any]:
    """A gemeente's own VERWERKT / GEWEIGERD ack (``herstelbus gemeente ack``), checked with one-line
    errors. Same deterministic ``ack_id`` as the SDK's: running the command again after a timeout
    sends the very same ack, which the acks worker deduplicates."""
    if status not in (VERWERKT, GEWEIGERD):
        raise HerstelbusError(f"--status: {VERWERKT} or {GEWEIGERD} expected")
    if not kan_bevestigen(event_id):
        raise HerstelbusError("EVENT_ID: the routed event's UUID expected (lower case)")
    if status == GEWEIGERD and reden not in WEIGERREDENEN:
        raise HerstelbusError(f"--reden is required with --status {GEWEIGERD}: one of {', '.join(WEIGERREDENEN)}")
    if status != GEWEIGERD and reden is not None:
        raise HerstelbusError(f"--reden is only allowed with --status {GEWEIGERD}")
    record = bevestiging(gemeentecode, event_id, status, reden=reden, toelichting=toelichting or None)
    fouten = contracts.validate("ontvangstbevestiging", record)
    if fouten:  # reason codes and field paths only: toelichting may hold what it must not
        raise HerstelbusError("ack refused by the contract: " + ", ".join(f"{f.path}: {f.reason}" for f in fouten))
    return record


def kan_bevestigen(event_id: str | None) -> bool:
    """An ack names a routed event by its UUID; a record without one cannot be acknowledged (it
    is still reported, with its topic position)."""
    try:
        return event_id is not None and str(uuid.UUID(event_id)) == event_id.lower()
    except ValueError:
        return False


class Bevestiger:
    """Produces acks for one gemeente and waits for the broker to have them all."""

    def __init__(self, bootstrap: str, gemeentecode: str, *, oin: str | None = None, **producer_config: Any) -> None:
        from kafka import KafkaProducer

        self.gemeentecode = gemeentecode
        self.topic = gemeente_acks_topic(gemeentecode)
        self.source = contracts.source_urn(oin or placeholder_oin(gemeentecode), SYSTEEM)
        self._producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                       linger_ms=5, **{**security(), **producer_config})

    def stuur(self, acks: Sequence[tuple[dict[str, Any], str | None]]) -> int:
        """Send (ack record, subject pseudonym) pairs; returns how many the broker acknowledged."""
        futures = []
        for record, subject in acks:
            contracts.check("ontvangstbevestiging", record)
            headers = contracts.headers_for("ontvangstbevestiging", record, source=self.source, subject=subject)
            futures.append(self._producer.send(self.topic, key=record["event_id"].encode(),
                                               value=contracts.encode("ontvangstbevestiging", record), headers=headers))
        self._producer.flush()
        try:
            for f in futures:
                f.get(timeout=30)
        except Exception as exc:  # kafka-python's errors name topics and codes, never record values
            raise BevestigingFout(f"acks to {self.topic} not acknowledged by the broker ({type(exc).__name__})") from None
        return len(futures)

    def close(self) -> None:
        self._producer.close()


__all__ = ["ACK_NAMESPACE", "Bevestiger", "BevestigingFout", "GEWEIGERD", "ONTVANGEN", "VERWERKT", "WEIGERREDENEN",
           "ack_id", "bevestiging", "geweigerd", "handmatig", "kan_bevestigen", "ontvangen", "placeholder_oin"]
