"""Reconciliation (issue 7): every ingest record has exactly one terminal receipt on uht.status.v1,
and every ROUTED receipt points at the routed record on the gemeente topic.

Pure. The adapter (``herstelbus.ops.reconcile``) reads the topics and hands over what this needs and
nothing more: positions, event ids (from CloudEvents ``ce_id`` headers, never a payload), Kafka
timestamps and the receipts' statuses. Nothing here or in a report is personal data.

The rules:
- a held ingest record in scope (at/after ``--since``) is *accounted for* when it has exactly one
  terminal receipt (ROUTED, INVALID, UNROUTABLE, DUPLICATE) and, for ROUTED, every ``doel`` names a
  record on that gemeente's events topic whose ``ce_id`` is the receipt's event id;
- copies of one receipt (same ``status_id``: at-least-once redelivery) count once; two different
  terminal receipts for one ``bron`` are a difference;
- acks statuses (ONTVANGEN, VERWERKT, GEWEIGERD, OVERDUE, HELD) share the topic and are ignored;
- a receipt whose ``bron`` the ingest log no longer holds (24 h retention) is counted apart, never as
  a difference; a terminal receipt whose ``bron`` names no ingest record at all is a difference.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from herstelbus.core.routing.refs import KafkaRef
from herstelbus.core.routing.status import ROUTED, TERMINAL
from herstelbus.core.topology import gemeente_events_topic

# Reason codes of a difference. About an ingest record:
GEEN_ONTVANGSTBEVESTIGING = "GEEN_ONTVANGSTBEVESTIGING"  # no terminal receipt
TEGENSTRIJDIG = "TEGENSTRIJDIGE_ONTVANGSTBEVESTIGINGEN"  # two different terminal receipts
ROUTED_ZONDER_DOELEN = "ROUTED_ZONDER_DOELEN"  # ROUTED, yet it names no gemeente record
DOEL_ONTBREEKT = "DOEL_ONTBREEKT"  # no record at the doel's position
DOEL_ANDER_EVENT = "DOEL_ANDER_EVENT"  # the record there carries another event id (or none)
DOEL_VERKEERD_TOPIC = "DOEL_VERKEERD_TOPIC"  # the doel is not on its gemeente's events topic
# About a receipt that no ingest record explains:
BRON_ONTBREEKT = "BRON_ONTBREEKT"  # a terminal receipt without bron
BRON_BESTAAT_NIET = "BRON_BESTAAT_NIET"  # its bron is no ingest record (never was one there)


def canonical_id(value: object) -> str | None:
    """An event id as canonical UUID text; None for anything else, so that whatever a producer put
    in a header is never echoed unless it is plainly an id."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    try:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    except ValueError:
        return None


def _ms(at: datetime | int) -> int:
    return at if isinstance(at, int) else int(at.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class IngestLog:
    """One ingest partition as read. ``end`` is its end offset taken before the status topic was
    read (records from there on are newer than the check); ``end_after`` is taken after, so a bron at
    or beyond it cannot have existed when its receipt was read."""

    topic: str
    partition: int
    log_start: int  # first offset the log still holds (older ones went by retention)
    read_from: int  # first offset read: log_start, or where --since starts
    end: int
    end_after: int


@dataclass(frozen=True, slots=True)
class IngestRecord:
    ref: KafkaRef
    timestamp_ms: int
    event_id: str | None = None  # ce_id header, canonical; None for a record without one


@dataclass(frozen=True, slots=True)
class Doel:
    gemeentecode: str
    ref: KafkaRef


@dataclass(frozen=True, slots=True)
class Receipt:
    """A terminal receipt, reduced to what reconciliation compares."""

    position: KafkaRef  # where it sits on the status topic
    status_id: str
    event_id: str | None
    status: str
    bron: KafkaRef | None
    at_ms: int
    reden: str | None = None
    doelen: tuple[Doel, ...] = ()


def _ref(value: Mapping[str, Any] | None) -> KafkaRef | None:
    return None if value is None else KafkaRef(value["topic"], int(value["partition"]), int(value["offset"]))


def receipt_from_statusbericht(record: Mapping[str, Any], position: KafkaRef) -> Receipt | None:
    """A decoded ``statusbericht`` as a Receipt; None for the statuses that are no routing receipt."""
    if record.get("status") not in TERMINAL:
        return None
    return Receipt(
        position=position, status_id=str(record["status_id"]), event_id=canonical_id(record.get("event_id")),
        status=record["status"], bron=_ref(record.get("bron")), at_ms=_ms(record["at"]), reden=record.get("reden"),
        doelen=tuple(Doel(d["gemeentecode"], _ref(d)) for d in record.get("doelen") or ()),
    )


@dataclass(frozen=True, slots=True)
class Difference:
    reden: str
    bron: KafkaRef | None
    event_id: str | None = None
    statuses: tuple[str, ...] = ()  # the terminal statuses found for this bron
    doel: KafkaRef | None = None  # for the DOEL_* reasons
    receipt: KafkaRef | None = None  # for the BRON_* reasons: where that receipt sits

    def as_json(self) -> dict[str, Any]:
        return {
            "reden": self.reden, "bron": _json_ref(self.bron), "event_id": self.event_id,
            "statuses": list(self.statuses), "doel": _json_ref(self.doel), "receipt": _json_ref(self.receipt),
        }

    def as_text(self) -> str:
        parts = [f"{self.reden:<38}", _text_ref(self.bron) if self.bron else "-"]
        if self.event_id:
            parts.append(f"event {self.event_id}")
        if self.statuses:
            parts.append("status " + "+".join(self.statuses))
        if self.doel:
            parts.append("doel " + _text_ref(self.doel))
        if self.receipt:
            parts.append("receipt " + _text_ref(self.receipt))
        return "  ".join(parts)


def _json_ref(ref: KafkaRef | None) -> dict[str, Any] | None:
    return None if ref is None else ref.as_record()


def _text_ref(ref: KafkaRef) -> str:
    return f"{ref.topic}/{ref.partition}/{ref.offset}"


def _sort_key(d: Difference) -> tuple:
    bron = d.bron or KafkaRef("", -1, -1)
    return (bron.topic, bron.partition, bron.offset, d.reden, str(d.doel), str(d.receipt))


@dataclass(frozen=True)
class Report:
    ingest_records: int  # held ingest records in scope
    unaccounted: tuple[Difference, ...]  # about those records; one record may have several
    orphans: tuple[Difference, ...]  # terminal receipts no ingest record explains
    statuses: Mapping[str, int]  # terminal status of each accounted record
    no_longer_held: int  # receipts' bron positions the ingest log no longer holds (retention)
    repeated: int  # extra copies of a receipt (same status_id): redelivery, not a defect
    ignored: int = 0  # acks statuses on the status topic (not routing receipts)
    unreadable: int = 0  # status records that were no statusbericht
    since_ms: int | None = None
    partitions: tuple[IngestLog, ...] = field(default=())

    @property
    def unaccounted_records(self) -> int:
        return len({d.bron for d in self.unaccounted})

    @property
    def accounted(self) -> int:
        return self.ingest_records - self.unaccounted_records

    @property
    def ok(self) -> bool:
        return not self.unaccounted and not self.orphans

    def summary(self) -> str:
        line = (f"reconcile: {self.ingest_records} ingest records, {self.accounted} accounted for, "
                f"{self.unaccounted_records} unaccounted")
        if self.orphans:
            line += f"; {len(self.orphans)} receipts name no ingest record"
        if self.no_longer_held:
            line += f"; {self.no_longer_held} no longer held (ingest retention, not counted)"
        return line

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "ingest_records": self.ingest_records, "accounted": self.accounted,
            "unaccounted": self.unaccounted_records, "orphan_receipts": len(self.orphans),
            "no_longer_held": self.no_longer_held, "repeated_receipts": self.repeated,
            "ignored_statuses": self.ignored, "unreadable_status_records": self.unreadable,
            "since_ms": self.since_ms, "statuses": dict(sorted(self.statuses.items())),
            "differences": [d.as_json() for d in (*self.unaccounted, *self.orphans)],
            "partitions": [{"topic": p.topic, "partition": p.partition, "log_start": p.log_start,
                            "read_from": p.read_from, "end": p.end} for p in self.partitions],
            "summary": self.summary(),
        }

    def as_text(self, limit: int = 200) -> str:
        lines = [self.summary()]
        if self.statuses:
            lines.append("  accounted: " + ", ".join(f"{s} {n}" for s, n in sorted(self.statuses.items())))
        notes = [f"{n} {what}" for n, what in ((self.repeated, "repeated receipts (redelivery, same status_id)"),
                                               (self.ignored, "acks statuses ignored"),
                                               (self.unreadable, "status records unreadable")) if n]
        if notes:
            lines.append("  " + "; ".join(notes))
        differences = [*self.unaccounted, *self.orphans]
        if differences:
            lines.append("differences (bron = ingest topic/partition/offset):")
            lines += ["  " + d.as_text() for d in differences[:limit]]
            if len(differences) > limit:
                lines.append(f"  ... and {len(differences) - limit} more (--json lists every one)")
        return "\n".join(lines)


@dataclass
class _Scoped:
    records: dict[KafkaRef, IngestRecord]  # held and in scope
    receipts: dict[KafkaRef, dict[str, list[Receipt]]]  # bron -> status_id -> copies
    orphans: list[Difference]
    expired: set[KafkaRef]
    ignored: int


def _scope(logs: Iterable[IngestLog], records: Iterable[IngestRecord], receipts: Iterable[Receipt],
           since_ms: int | None) -> _Scoped:
    by_tp = {(log.topic, log.partition): log for log in logs}
    read: dict[KafkaRef, IngestRecord] = {}
    for rec in records:
        log = by_tp.get((rec.ref.topic, rec.ref.partition))
        if log is not None and log.read_from <= rec.ref.offset < log.end:
            read[rec.ref] = rec
    in_scope = {ref: rec for ref, rec in read.items() if since_ms is None or rec.timestamp_ms >= since_ms}
    scoped = _Scoped(in_scope, defaultdict(dict), [], set(), 0)
    for rc in receipts:
        if rc.status not in TERMINAL:
            scoped.ignored += 1
            continue
        # A receipt whose record cannot be read is placed in time by when the router wrote it.
        recent = since_ms is None or rc.at_ms >= since_ms
        bron = rc.bron
        log = None if bron is None else by_tp.get((bron.topic, bron.partition))
        if bron is None or log is None:
            if recent:
                scoped.orphans.append(Difference(BRON_ONTBREEKT if bron is None else BRON_BESTAAT_NIET, bron,
                                                 rc.event_id, (rc.status,), receipt=rc.position))
        elif bron.offset < log.log_start:
            if recent:
                scoped.expired.add(bron)
        elif bron in in_scope:
            scoped.receipts[bron].setdefault(rc.status_id, []).append(rc)
        elif bron in read or bron.offset < log.read_from or log.end <= bron.offset < log.end_after:
            continue  # before --since, or a record newer than the check
        elif bron.offset < log.end or recent:  # no record there (ingest topics never skip offsets)
            scoped.orphans.append(Difference(BRON_BESTAAT_NIET, bron, rc.event_id, (rc.status,),
                                             receipt=rc.position))
    return scoped


def _doelen(copies: Iterable[Receipt]) -> list[Doel]:
    # Copies of one receipt may name different positions (a redelivery after a crash re-routes):
    # each must hold the event.
    return sorted({d for rc in copies for d in rc.doelen}, key=lambda d: (d.ref.topic, d.ref.partition, d.ref.offset))


def doelen_to_check(logs: Iterable[IngestLog], records: Iterable[IngestRecord], receipts: Iterable[Receipt],
                    since_ms: int | None = None) -> set[KafkaRef]:
    """The gemeente record positions ``reconcile`` will ask about: the doelen of the ROUTED receipts
    of in-scope records (only those on the gemeente's own events topic)."""
    scoped = _scope(logs, records, receipts, since_ms)
    return {d.ref for by_id in scoped.receipts.values() for copies in by_id.values() if copies[0].status == ROUTED
            for d in _doelen(copies) if d.ref.topic == gemeente_events_topic(d.gemeentecode)}


def reconcile(logs: Iterable[IngestLog], records: Iterable[IngestRecord], receipts: Iterable[Receipt],
              routed: Mapping[KafkaRef, str | None], *, since_ms: int | None = None, ignored: int = 0,
              unreadable: int = 0) -> Report:
    """Compare. ``routed`` maps each position from ``doelen_to_check`` that holds a record to that
    record's canonical ``ce_id`` (None when it has none); a position without a record is absent.
    ``ignored`` and ``unreadable``: status records the adapter dropped (acks statuses; no statusbericht)."""
    logs = tuple(logs)
    scoped = _scope(logs, records, receipts, since_ms)
    unaccounted: list[Difference] = []
    statuses: Counter[str] = Counter()
    repeated = 0
    for ref, rec in scoped.records.items():
        by_id = scoped.receipts.get(ref, {})
        repeated += sum(len(copies) - 1 for copies in by_id.values())
        if not by_id:
            unaccounted.append(Difference(GEEN_ONTVANGSTBEVESTIGING, ref, rec.event_id))
            continue
        if len(by_id) > 1:
            found = tuple(sorted(copies[0].status for copies in by_id.values()))
            event_id = next((c[0].event_id for c in by_id.values() if c[0].event_id), rec.event_id)
            unaccounted.append(Difference(TEGENSTRIJDIG, ref, event_id, found))
            continue
        (copies,) = by_id.values()
        receipt = copies[0]
        problems = _routed_problems(ref, receipt, copies, routed) if receipt.status == ROUTED else []
        unaccounted += problems
        if not problems:
            statuses[receipt.status] += 1
    return Report(
        ingest_records=len(scoped.records), unaccounted=tuple(sorted(unaccounted, key=_sort_key)),
        orphans=tuple(sorted(scoped.orphans, key=_sort_key)), statuses=dict(statuses),
        no_longer_held=len(scoped.expired), repeated=repeated, ignored=scoped.ignored + ignored,
        unreadable=unreadable,
        since_ms=since_ms, partitions=tuple(sorted(logs, key=lambda p: (p.topic, p.partition))),
    )


def _routed_problems(bron: KafkaRef, receipt: Receipt, copies: list[Receipt],
                     routed: Mapping[KafkaRef, str | None]) -> list[Difference]:
    doelen = _doelen(copies)
    if not doelen:
        return [Difference(ROUTED_ZONDER_DOELEN, bron, receipt.event_id, (ROUTED,))]
    problems = []
    for doel in doelen:
        if doel.ref.topic != gemeente_events_topic(doel.gemeentecode):
            reden = DOEL_VERKEERD_TOPIC
        elif doel.ref not in routed:
            reden = DOEL_ONTBREEKT
        elif receipt.event_id is None or routed[doel.ref] != receipt.event_id:
            reden = DOEL_ANDER_EVENT
        else:
            continue
        problems.append(Difference(reden, bron, receipt.event_id, (ROUTED,), doel=doel.ref))
    return problems


__all__ = [
    "BRON_BESTAAT_NIET", "BRON_ONTBREEKT", "DOEL_ANDER_EVENT", "DOEL_ONTBREEKT", "DOEL_VERKEERD_TOPIC",
    "GEEN_ONTVANGSTBEVESTIGING", "ROUTED_ZONDER_DOELEN", "TEGENSTRIJDIG",
    "Difference", "Doel", "IngestLog", "IngestRecord", "Receipt", "Report",
    "canonical_id", "doelen_to_check", "receipt_from_statusbericht", "reconcile",
]
