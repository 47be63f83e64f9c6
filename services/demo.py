"""``herstelbus demo`` / ``make demo``: the real flow on one machine, summarised.

dev stack up; a synthetic batch of UHT events (reproducible by seed) validated as UHT's publisher
would and published; a few corrupted records sent past the publisher, as a misbehaving system
would; then every receipt on uht.status.v1 is awaited and a table printed: per gemeente what was
routed, and what was dead-lettered, held as unroutable or refused as duplicate, with the reasons.

Then the gemeenten' side (:func:`gemeenten`): the gemeente connector (``herstelbus gemeente consume
--ack --once``) for the gemeenten with the most routed events opens their events into jsonl files
and acknowledges them (ONTVANGEN); one of them reports a few VERWERKT (the ``gemeente ack`` path);
once the acknowledgement relay has recorded every one, ``herstelbus status`` shows those gemeenten.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from herstelbus.connectors.uht.publish import publish
from herstelbus.connectors.uht.synthetic import generate
from herstelbus.core import contracts
from herstelbus.core.acks import GEWEIGERD, ONTVANGEN, ROUTED, VERWERKT
from herstelbus.core.gemeenten import get as gemeente
from herstelbus.core.topology import OVERDRACHT, STATUS
from herstelbus.devstack import DevStack
from herstelbus.errors import HerstelbusError

CORRUPTED = 5  # records a misbehaving producer sends: the router must dead-letter, not crash
CONSUMERS = 4  # gemeenten whose connector runs: those with the most routed events
VERWERKT_COUNT = 3  # events the first of them reports as processed
ANY = frozenset({ROUTED, ONTVANGEN, VERWERKT, GEWEIGERD})  # acks-store states: the relay has the event
ACKNOWLEDGED = ANY - {ROUTED}


@dataclass
class Summary:
    published: int = 0
    rejected_by_publisher: Counter = field(default_factory=Counter)
    status: Counter = field(default_factory=Counter)
    reasons: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    per_gemeente: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    routed_ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # gemeente -> event ids
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
        summary.routed_ids[doel["gemeentecode"]].add(str(receipt["event_id"]))


def _ranked(summary: Summary) -> list[tuple[str, Counter]]:
    """Gemeenten by routed records, most first (ties by code)."""
    return sorted(summary.per_gemeente.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))


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
    rows = _ranked(summary)
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


# -- the gemeenten' side ----------------------------------------------------------------------------
def gemeenten(stack: DevStack, summary: Summary, out_dir: Path, say: Callable[[str], None],
              timeout_s: float = 180.0) -> None:
    """The gemeente connector for the top gemeenten, a few VERWERKT, then ``herstelbus status``.

    Every wait is bounded by ``timeout_s`` and fails naming the log to read."""
    from herstelbus.acks.state import AcksStore

    codes = [code for code, _ in _ranked(summary)[:CONSUMERS]]
    store = AcksStore.from_settings()
    if not codes:  # a second run on the same data dir: the same seed's events are duplicates now
        known = sorted(store.tellingen(), key=lambda t: (-t.routed, t.gemeentecode))
        store.engine.dispose()
        say("\ngemeenten: nothing was routed in this run, so the gemeente connectors have nothing new (this data "
            "dir routed these events before; a new batch: --seed N, a fresh start: another HERSTELBUS_DATA_DIR).")
        if known:
            say("herstelbus status, from the earlier runs:")
            say(status_table([t.gemeentecode for t in known[:CONSUMERS]]))
        return
    acks_log = stack.home / "logs" / "acks.log"
    try:
        # The relay reads the ROUTED receipts on its own: an ack that came long before them would be refused.
        routed = {(event_id, code) for code in codes for event_id in summary.routed_ids[code]}
        say(f"\ngemeenten: the {len(codes)} with the most routed events, {', '.join(codes)} ({len(routed)} events)")
        step = time.monotonic()
        _await_states(store, dict.fromkeys(routed, ANY), timeout_s, acks_log, "recorded as ROUTED")
        say(f"acks relay (herstelbus acks): all {len(routed)} recorded as ROUTED after {time.monotonic() - step:.1f}s")
        say(f"gemeente connectors, each: herstelbus gemeente consume GMxxxx --key-dir {stack.gemeente_key_dir} "
            f"--sink jsonl:{out_dir} --ack --once")
        opened = _consume(stack, codes, out_dir, timeout_s, say)

        first = codes[0]
        chosen = opened[first][:VERWERKT_COUNT]
        step = time.monotonic()
        _verwerkt(stack.settings.bootstrap, first, [event_id for event_id, _ in chosen])
        say(f"{first} reports VERWERKT for {len(chosen)} of them "
            f"(herstelbus gemeente ack EVENT_ID --gemeente {first} --status VERWERKT):")
        for event_id, event_type in chosen:
            say(f"  {event_id}  {event_type}")

        wanted = {(event_id, code): ACKNOWLEDGED for code in codes for event_id, _ in opened[code]}
        wanted.update({(event_id, first): {VERWERKT} for event_id, _ in chosen})
        _await_states(store, wanted, timeout_s, acks_log, "acknowledged")
    finally:
        store.engine.dispose()
    say(f"acks relay: all {len(wanted)} ONTVANGEN and {len(chosen)} VERWERKT acknowledgements recorded after "
        f"{time.monotonic() - step:.1f}s; herstelbus status:")
    say(status_table(codes))
    say(f"opened events, one JSON object per line, in {out_dir}/: {', '.join(f'{c}.jsonl' for c in codes)}")


def _consume(stack: DevStack, codes: list[str], out_dir: Path, timeout_s: float,
             say: Callable[[str], None]) -> dict[str, list[tuple[str, str]]]:
    """Run ``herstelbus gemeente consume CODE ... --ack --once`` for every code at once; returns the
    (event_id, type) pairs each wrote to its jsonl file this time."""
    logs = stack.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for code in codes:
        jsonl, log = out_dir / f"{code}.jsonl", logs / f"gemeente-{code}.log"
        before = jsonl.stat().st_size if jsonl.exists() else 0
        argv = [sys.executable, "-m", "herstelbus", "gemeente", "consume", code, "--key-dir",
                str(stack.gemeente_key_dir), "--sink", f"jsonl:{out_dir}", "--ack", "--once"]
        with open(log, "ab") as err:
            proc = subprocess.Popen(argv, env={**os.environ, **stack.gemeente_env(code)}, stdout=subprocess.PIPE,
                                    stderr=err, stdin=subprocess.DEVNULL, text=True)
        runs.append((code, jsonl, before, log, proc))
    deadline = time.monotonic() + timeout_s
    opened = {}
    try:
        for code, jsonl, before, log, proc in runs:
            try:
                out, _ = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise HerstelbusError(f"gemeente connector {code} not done after {timeout_s:.0f}s; see {log}") from None
            if proc.returncode != 0:
                raise HerstelbusError(f"gemeente connector {code} failed (exit {proc.returncode}); see {log}")
            say("  " + (out.strip().splitlines() or ["(no summary)"])[-1])
            opened[code] = _appended(jsonl, before)
    finally:
        for *_, proc in runs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return opened


def _appended(jsonl: Path, offset: int) -> list[tuple[str, str]]:
    """(event_id, type) of the jsonl lines after byte ``offset``: what one run wrote."""
    if not jsonl.exists():
        return []
    with open(jsonl, "rb") as fh:
        fh.seek(offset)
        return [(o["event_id"], o["type"]) for o in map(json.loads, fh.read().splitlines())]


def _verwerkt(bootstrap: str, gemeentecode: str, event_ids: list[str]) -> None:
    """What ``herstelbus gemeente ack EVENT_ID --gemeente GM --status VERWERKT`` does, for several ids."""
    from herstelbus.connectors.gemeente.bevestiging import Bevestiger, handmatig

    bevestiger = Bevestiger(bootstrap, gemeentecode, oin=os.environ.get("HERSTELBUS_GEMEENTE_OIN"))
    try:
        bevestiger.stuur([(handmatig(gemeentecode, event_id, VERWERKT), None) for event_id in event_ids])
    finally:
        bevestiger.close()


def _await_states(store: Any, wanted: dict[tuple[str, str], Collection[str]], timeout_s: float, log: Path,
                  what: str) -> None:
    """Until the acks store has a row in one of the wanted states for every (event_id, gemeentecode)."""
    waiting = dict(wanted)
    deadline = time.monotonic() + timeout_s
    while True:
        for (event_id, code), states in list(waiting.items()):
            doel = store.get(event_id, code)
            if doel is not None and doel.state in states:
                del waiting[(event_id, code)]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise HerstelbusError(f"{len(waiting)} of {len(wanted)} events not {what} by the acks relay after "
                                  f"{timeout_s:.0f}s; see {log}")
        time.sleep(0.5)


def status_table(codes: list[str]) -> str:
    """``herstelbus status``'s own table, cut to the header and ``codes``."""
    from herstelbus.acks.cli import status_rows, status_table as render

    rows = status_rows()
    header, *lines = render([r for r in rows if r["gemeentecode"] in codes])
    return "\n".join(["  " + header, *("  " + line for line in lines),
                       f"  ({len(rows)} gemeenten in all: herstelbus status)"])
