"""``herstelbus demo`` / ``make demo``: the real flow on one machine, summarised.

dev stack up; a synthetic batch of UHT events (reproducible by seed) validated as UHT's publisher
would and published; a few corrupted records sent past the publisher, as a misbehaving system
would; then every receipt on uht.status.v1 is awaited and a table printed: per gemeente what was
routed, and what was dead-lettered, held as unroutable or refused as duplicate, with the reasons.
"""

from __future__ import annotations

import csv
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer

from herstelbus.connectors.uht.publish import publish
from herstelbus.connectors.uht.synthetic import generate
from herstelbus.core import contracts
from herstelbus.core.gemeenten import get as gemeente
from herstelbus.core.topology import OVERDRACHT, STATUS
from herstelbus.errors import HerstelbusError

CORRUPTED = 5  # records a misbehaving producer sends: the router must dead-letter, not crash


@dataclass
class Summary:
    published: int = 0
    rejected_by_publisher: Counter = field(default_factory=Counter)
    status: Counter = field(default_factory=Counter)
    reasons: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    per_gemeente: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    seconds: float = 0.0


def _validated(count: int, seed: int, summary: Summary) -> list[tuple[str, dict]]:
    records = []
    for event in generate(count, seed=seed):
        try:
            records.append(contracts.parse_json_event(event))
        except contracts.InvalidEvent as invalid:  # UHT's publisher refuses these, with the reason
            summary.rejected_by_publisher.update({e.reason for e in invalid.errors})
    return records


def _corrupt(bootstrap: str, records: list[tuple[str, dict]]) -> list[tuple[str, int, int]]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    futures = []
    for i, (record_type, record) in enumerate(records[:CORRUPTED]):
        body = contracts.encode(record_type, record)
        broken = body[: len(body) // 2] if i % 2 else b"\x00" + body[1:]  # truncated, or no marker
        futures.append(producer.send(OVERDRACHT, key=b"onbekend", value=broken))
    producer.flush()
    producer.close()
    return [(m.topic, m.partition, m.offset) for m in (f.get() for f in futures)]


def run(bootstrap: str, count: int, seed: int, progress: Callable[[int, int], None],
        timeout_s: float = 600.0) -> Summary:
    summary = Summary()
    started = time.monotonic()
    records = _validated(count, seed, summary)
    positions = set(publish(bootstrap, records)) | set(_corrupt(bootstrap, records))
    summary.published = len(positions)
    consumer = KafkaConsumer(STATUS, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=1000)
    waiting = set(positions)
    deadline = time.monotonic() + timeout_s
    try:
        while waiting and time.monotonic() < deadline:
            for message in consumer:
                receipt = contracts.decode(message.value)[1]
                bron = receipt["bron"]
                if bron is None:  # a relayed acknowledgement or overdue notice: no input position
                    continue
                position = (bron["topic"], bron["partition"], bron["offset"])
                if position not in waiting:
                    continue
                waiting.discard(position)
                _count(summary, receipt)
            progress(len(positions) - len(waiting), len(positions))
    finally:
        consumer.close()
    if waiting:
        raise HerstelbusError(f"{len(waiting)} of {len(positions)} events have no receipt after {timeout_s:.0f}s "
                              "(see the router's log under <data dir>/dev/logs)")
    summary.seconds = time.monotonic() - started
    return summary


def _count(summary: Summary, receipt: dict) -> None:
    status = receipt["status"]
    summary.status[status] += 1
    if receipt.get("reden"):
        summary.reasons[status][receipt["reden"]] += 1
    for doel in receipt.get("doelen") or []:
        summary.per_gemeente[doel["gemeentecode"]][doel["reden"]] += 1


def render(summary: Summary, csv_path: Path, top: int = 15) -> str:
    lines = [
        "path: UHT publisher -> uht.{overdracht,pauzeknop,erkenning}.v1 -> router (faust worker: validate, "
        "resolve gemeente, pseudonymise, seal, key rows to the key store) -> gemeente.GMxxxx.events.v1 | "
        "herstel.unroutable.v1 | herstel.deadletter.v1; one receipt per event -> uht.status.v1",
        f"{summary.published} events published in {summary.seconds:.1f}s; every one has exactly one receipt:",
    ]
    for status, n in summary.status.most_common():
        why = ", ".join(f"{r} {c}" for r, c in summary.reasons.get(status, Counter()).most_common())
        lines.append(f"  {status:<11} {n:>6}" + (f"   ({why})" if why else ""))
    if summary.rejected_by_publisher:
        why = ", ".join(f"{r} {c}" for r, c in summary.rejected_by_publisher.most_common())
        lines.append(f"  refused by UHT's publisher before Kafka: {sum(summary.rejected_by_publisher.values())} ({why})")
    rows = sorted(summary.per_gemeente.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    lines.append(f"\nrouted records per gemeente ({len(rows)} gemeenten; top {top}, all in {csv_path}):")
    lines.append(f"  {'gemeente':<8} {'naam':<28} {'totaal':>6} {'woongem.':>8} {'herindel.':>9} {'eerder':>6}")
    for code, counts in rows[:top]:
        naam = (gemeente(code).naam if gemeente(code) else "?")[:28]
        lines.append(f"  {code:<8} {naam:<28} {sum(counts.values()):>6} {counts['WOONGEMEENTE']:>8} "
                     f"{counts['HERINDELING']:>9} {counts['EERDER_BETROKKEN']:>6}")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["gemeentecode", "naam", "totaal", "WOONGEMEENTE", "HERINDELING", "EERDER_BETROKKEN"])
        for code, counts in rows:
            out.writerow([code, gemeente(code).naam if gemeente(code) else "", sum(counts.values()),
                          counts["WOONGEMEENTE"], counts["HERINDELING"], counts["EERDER_BETROKKEN"]])
    return "\n".join(lines)
