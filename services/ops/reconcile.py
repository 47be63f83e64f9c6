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
from collections.abc import Collection, Iterable
from datetime import datetime

import click
from kafka import KafkaConsumer, TopicPartition

from herstelbus.core import contracts
from herstelbus.core.contracts import ContractError
from herstelbus.core.ops import reconcile as core
from herstelbus.core.routing.refs import KafkaRef
from herstelbus.core.topology import INGEST, STATUS
from herstelbus.ops.common import (
    ms, partitions, read, read_positions, read_topic, reading, ref_of, since_option,
)
from herstelbus.settings import get_settings

ID_HEADER = "ce_id"


def _header_id(message) -> str | None:
    for key, value in message.headers or ():
        if key == ID_HEADER:
            return core.canonical_id(value)
    return None


def read_ingest(consumer: KafkaConsumer, topics: Iterable[str], since_ms: int | None,
                deadline: float) -> tuple[dict[TopicPartition, tuple[int, int, int]], list[core.IngestRecord]]:
    parts = [tp for topic in topics for tp in partitions(consumer, topic)]
    starts, ends = consumer.beginning_offsets(parts), consumer.end_offsets(parts)
    read_from = dict(starts)
    if since_ms is not None:
        found = consumer.offsets_for_times({tp: since_ms for tp in parts})
        read_from = {tp: ends[tp] if found.get(tp) is None else max(starts[tp], found[tp].offset) for tp in parts}
    records: list[core.IngestRecord] = []
    # Only position, timestamp and ce_id: the value (plaintext persoonsgegevens) is never decoded.
    read(consumer, {tp: (read_from[tp], ends[tp]) for tp in parts},
          lambda m: records.append(core.IngestRecord(ref_of(m), m.timestamp, _header_id(m))), deadline)
    return {tp: (starts[tp], read_from[tp], ends[tp]) for tp in parts}, records


def read_receipts(consumer: KafkaConsumer, topic: str, deadline: float) -> tuple[list[core.Receipt], int, int]:
    """(terminal receipts, acks statuses ignored, records that were no statusbericht)."""
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
        receipt = core.receipt_from_statusbericht(record, ref_of(message))
        if receipt is None:
            counts["ignored"] += 1
        else:
            receipts.append(receipt)

    read_topic(consumer, topic, handle, deadline)
    return receipts, counts["ignored"], counts["unreadable"]


def read_routed(consumer: KafkaConsumer, positions: Collection[KafkaRef],
                deadline: float) -> dict[KafkaRef, str | None]:
    """The ce_id of the record at each position that holds one (headers only: never opened)."""
    found: dict[KafkaRef, str | None] = {}

    def handle(message) -> None:
        found[ref_of(message)] = _header_id(message)

    read_positions(consumer, positions, handle, deadline)
    return found


def run(bootstrap: str, *, since: datetime | None = None, status_topic: str = STATUS,
        ingest_topics: Iterable[str] = INGEST, timeout_s: float = 300.0) -> core.Report:
    """Read everything and compare. ``status_topic`` is a parameter for tests only (they reconcile
    against a copy of their own receipts); the command always uses uht.status.v1."""
    since_ms = ms(since)
    with reading(bootstrap, "herstelbus-reconcile", timeout_s) as (consumer, deadline):
        ingest, records = read_ingest(consumer, tuple(ingest_topics), since_ms, deadline)
        receipts, ignored, unreadable = read_receipts(consumer, status_topic, deadline)
        after = consumer.end_offsets(list(ingest))
        logs = [core.IngestLog(tp.topic, tp.partition, start, read_from, end, after[tp])
                for tp, (start, read_from, end) in ingest.items()]
        positions = core.doelen_to_check(logs, records, receipts, since_ms)
        routed = read_routed(consumer, positions, deadline)
    return core.reconcile(logs, records, receipts, routed, since_ms=since_ms, ignored=ignored, unreadable=unreadable)


@click.command("reconcile")
@since_option("Only ingest records with a Kafka timestamp at/after TIME (ISO 8601; without an offset: UTC).")
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


__all__ = ["command", "read_ingest", "read_receipts", "read_routed", "run"]
