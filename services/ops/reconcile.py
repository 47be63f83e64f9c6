"""``herstelbus reconcile [--since TIME] [--json]``: the Kafka side of ``herstelbus.core.ops.reconcile``.

Reads, without a consumer group (nothing is committed, no worker is disturbed):
1. the ingest topics: per partition the log start, where ``--since`` starts (offsets_for_times) and
   the end; of each record only its position, timestamp and ``ce_id`` header (values are dropped
   unread: they hold plaintext persoonsgegevens);
2. uht.status.v1 from its start to its end: the receipts (they carry no personal data);
3. the ingest end offsets again (a bron beyond them never existed);
4. per gemeente topic, just the range of offsets the ROUTED receipts name: the ``ce_id`` header of
   each record there (the router sets it to the event id); the sealed value is never opened.
The status topic is read after the ingest topics and before the gemeente topics, the order in which
the router writes (gemeente record, then receipt), so nothing in flight looks lost downstream;
an ingest record the router has not handled yet shows as unaccounted, as it is at that moment.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timezone

import click
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from herstelbus.core import contracts
from herstelbus.core.contracts import ContractError
from herstelbus.core.ops import reconcile as core
from herstelbus.core.routing.refs import KafkaRef
from herstelbus.core.topology import INGEST, STATUS
from herstelbus.errors import HerstelbusError
from herstelbus.settings import get_settings

ID_HEADER = "ce_id"


class ReconcileError(HerstelbusError):
    """Reconciliation could not read what it must compare."""


def _consumer(bootstrap: str) -> KafkaConsumer:
    try:
        return KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", client_id="herstelbus-reconcile",
                             bootstrap_timeout_ms=10_000)
    except KafkaError:
        raise ReconcileError(f"no Kafka broker answers on {bootstrap}") from None


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        raise ReconcileError(f"topic {topic} does not exist (herstelbus topics provision creates it)")
    return [TopicPartition(topic, p) for p in sorted(parts)]


def _read(consumer: KafkaConsumer, ranges: dict[TopicPartition, tuple[int, int]], handle: Callable,
          deadline: float) -> None:
    """Every record in [start, end) of each partition, in offset order per partition."""
    pending = {tp: r for tp, r in ranges.items() if r[0] < r[1]}
    if not pending:
        return
    consumer.assign(list(pending))
    for tp, (start, _) in pending.items():
        consumer.seek(tp, start)
    while pending:
        if time.monotonic() > deadline:
            late = ", ".join(sorted(f"{tp.topic}/{tp.partition}" for tp in pending)[:5])
            raise ReconcileError(f"reading did not reach the end offsets in time ({late}); try --timeout")
        for tp, messages in consumer.poll(timeout_ms=500).items():
            end = ranges[tp][1]
            for message in messages:
                if message.offset < end:
                    handle(message)
        for tp in [tp for tp in pending if consumer.position(tp) >= pending[tp][1]]:
            del pending[tp]
            consumer.pause(tp)
    consumer.unsubscribe()


def _header_id(message) -> str | None:
    for key, value in message.headers or ():
        if key == ID_HEADER:
            return core.canonical_id(value)
    return None


def _ref(message) -> KafkaRef:
    return KafkaRef(message.topic, message.partition, message.offset)


def read_ingest(consumer: KafkaConsumer, topics: Iterable[str], since_ms: int | None,
                deadline: float) -> tuple[dict[TopicPartition, tuple[int, int, int]], list[core.IngestRecord]]:
    parts = [tp for topic in topics for tp in _partitions(consumer, topic)]
    starts, ends = consumer.beginning_offsets(parts), consumer.end_offsets(parts)
    read_from = dict(starts)
    if since_ms is not None:
        found = consumer.offsets_for_times({tp: since_ms for tp in parts})
        read_from = {tp: ends[tp] if found.get(tp) is None else max(starts[tp], found[tp].offset) for tp in parts}
    records: list[core.IngestRecord] = []
    # Only position, timestamp and ce_id: the value (plaintext persoonsgegevens) is never decoded.
    _read(consumer, {tp: (read_from[tp], ends[tp]) for tp in parts},
          lambda m: records.append(core.IngestRecord(_ref(m), m.timestamp, _header_id(m))), deadline)
    return {tp: (starts[tp], read_from[tp], ends[tp]) for tp in parts}, records


def read_receipts(consumer: KafkaConsumer, topic: str, deadline: float) -> tuple[list[core.Receipt], int, int]:
    """(terminal receipts, acks statuses ignored, records that were no statusbericht)."""
    parts = _partitions(consumer, topic)
    starts, ends = consumer.beginning_offsets(parts), consumer.end_offsets(parts)
    receipts: list[core.Receipt] = []
    counts = {"ignored": 0, "unreadable": 0}

    def handle(message) -> None:
        try:
            record_type, record = contracts.decode(message.value or b"")
        except ContractError:
            counts["unreadable"] += 1
            return
        if record_type != "statusbericht":
            counts["unreadable"] += 1
            return
        receipt = core.receipt_from_statusbericht(record, _ref(message))
        if receipt is None:
            counts["ignored"] += 1
        else:
            receipts.append(receipt)

    _read(consumer, {tp: (starts[tp], ends[tp]) for tp in parts}, handle, deadline)
    return receipts, counts["ignored"], counts["unreadable"]


def read_routed(consumer: KafkaConsumer, positions: Collection[KafkaRef],
                deadline: float) -> dict[KafkaRef, str | None]:
    """The ce_id of the record at each position that holds one (headers only: never opened)."""
    wanted: dict[TopicPartition, set[int]] = defaultdict(set)
    existing = consumer.topics() if positions else set()
    for ref in positions:
        if ref.topic in existing and ref.partition in (consumer.partitions_for_topic(ref.topic) or ()):
            wanted[TopicPartition(ref.topic, ref.partition)].add(ref.offset)
    if not wanted:
        return {}
    parts = list(wanted)
    starts, ends = consumer.beginning_offsets(parts), consumer.end_offsets(parts)
    ranges = {}
    for tp, offsets in wanted.items():
        held = [o for o in offsets if starts[tp] <= o < ends[tp]]
        if held:
            ranges[tp] = (min(held), max(held) + 1)
    found: dict[KafkaRef, str | None] = {}

    def handle(message) -> None:
        if message.offset in wanted[TopicPartition(message.topic, message.partition)]:
            found[_ref(message)] = _header_id(message)

    _read(consumer, ranges, handle, deadline)
    return found


def run(bootstrap: str, *, since: datetime | None = None, status_topic: str = STATUS,
        ingest_topics: Iterable[str] = INGEST, timeout_s: float = 300.0) -> core.Report:
    """Read everything and compare. ``status_topic`` is a parameter for tests only (they reconcile
    against a copy of their own receipts); the command always uses uht.status.v1."""
    since_ms = None if since is None else int(since.timestamp() * 1000)
    deadline = time.monotonic() + timeout_s
    consumer = _consumer(bootstrap)
    try:
        ingest, records = read_ingest(consumer, tuple(ingest_topics), since_ms, deadline)
        receipts, ignored, unreadable = read_receipts(consumer, status_topic, deadline)
        after = consumer.end_offsets(list(ingest))
        logs = [core.IngestLog(tp.topic, tp.partition, start, read_from, end, after[tp])
                for tp, (start, read_from, end) in ingest.items()]
        positions = core.doelen_to_check(logs, records, receipts, since_ms)
        routed = read_routed(consumer, positions, deadline)
    except KafkaError as error:
        raise ReconcileError(f"Kafka on {bootstrap}: {type(error).__name__}") from None
    finally:
        consumer.close()
    return core.reconcile(logs, records, receipts, routed, since_ms=since_ms, ignored=ignored, unreadable=unreadable)


def parse_time(value: str) -> datetime:
    """ISO 8601; a time without an offset is UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("not an ISO 8601 time, e.g. 2025-06-02T10:00:00+02:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@click.command("reconcile")
@click.option("--since", metavar="TIME", default=None, callback=lambda _c, _p, v: None if v is None else parse_time(v),
              help="Only ingest records with a Kafka timestamp at/after TIME (ISO 8601; without an offset: UTC).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object for machines instead of text.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds allowed for reading the topics.")
def command(since: datetime | None, as_json: bool, timeout: float) -> None:
    """Prove every ingest record has exactly one terminal receipt on uht.status.v1 and every ROUTED
    receipt's gemeente record exists with that event id; exit 1 when anything is unaccounted for.

    Prints positions, event ids, statuses and reason codes only. Ingest records the log no longer
    holds (24 h retention) are counted apart, not as unaccounted.
    """
    report = run(get_settings().bootstrap, since=since, timeout_s=timeout)
    click.echo(json.dumps(report.as_json(), indent=2) if as_json else report.as_text())
    if not report.ok:
        raise click.exceptions.Exit(1)


__all__ = ["ReconcileError", "command", "parse_time", "read_ingest", "read_receipts", "read_routed", "run"]
