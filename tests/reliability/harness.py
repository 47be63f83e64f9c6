"""What the router-side reliability scenarios (1, 2, 6, 7) share: the router as supervised processes
that can be SIGKILLed, a watch on uht.status.v1, the gemeenten' side (the connector SDK's opener and
jsonl sink, in this process, for every gemeente) and the checks that turn all of it into figures.

The checks, per scenario: every input position has exactly one terminal receipt (copies of one
receipt, the same ``status_id``, are at-least-once redelivery and are counted, not failed); for each
gemeente the event ids in its jsonl file are exactly the event ids whose ROUTED receipts name it,
none twice; ``herstelbus reconcile`` over the scenario's records is ok with 0 unaccounted.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from herstelbus.connectors.gemeente.jsonl import JsonlSink
from herstelbus.connectors.gemeente.openen import Opener
from herstelbus.connectors.gemeente.resultaat import Geopend
from herstelbus.connectors.gemeente.volgorde import orden
from herstelbus.connectors.uht.publish import new_producer, send
from herstelbus.connectors.uht.synthetic import generate
from herstelbus.core import contracts
from herstelbus.core.privacy import KeyRef, OpeningKeyring
from herstelbus.core.topology import STATUS, gemeente_events_topic
from herstelbus.keystore import policy
from herstelbus.keystore.store import GemeenteAccess
from herstelbus.ops import reconcile
from herstelbus.processes import stop
from tests.integration.router_world import PURPOSE, World, supervised

# A SIGKILLed member stays in the consumer group until its session times out, and a restarted router
# waits for that rebalance: faust's 60 s default would make each kill cost a minute. The guarantees
# do not depend on it (faust reads both from the environment, over its own defaults).
FAST_GROUP = {"BROKER_SESSION_TIMEOUT": "10", "BROKER_HEARTBEAT_INTERVAL": "1"}
SUPERVISE_RESTART = "herstelbus supervise: worker exited"


def gemeenten_now() -> list[str]:
    from herstelbus.core.gemeenten import gemeenten_on

    return [g.code for g in gemeenten_on(dt.date.today())]


# -- UHT's side ------------------------------------------------------------------------------------
def valid_events(count: int, seed: int) -> list[tuple[str, dict]]:
    """``count`` synthetic events as UHT's publisher passes them (it refuses the few bad BSNs)."""
    records = []
    for event in generate(count, seed=seed):
        try:
            records.append(contracts.parse_json_event(event))
        except contracts.InvalidEvent:
            pass
    return records


def publish(bootstrap: str, records: list[tuple[str, dict]], positions: list | None = None,
            chunk: int = 5_000) -> list[tuple[str, int, int]]:
    """As UHT's publisher (acks=all, idempotent), in chunks; each chunk's positions are appended to
    ``positions`` as soon as it is acknowledged (a watcher may read them meanwhile)."""
    positions = [] if positions is None else positions
    producer = new_producer(bootstrap)
    try:
        for start in range(0, len(records), chunk):
            futures = send(producer, records[start:start + chunk])
            positions.extend((m.topic, m.partition, m.offset) for m in (f.get(timeout=120) for f in futures))
    finally:
        producer.close()
    return positions


# -- the router --------------------------------------------------------------------------------------
class BackgroundPublish:
    """UHT publishing while the scenario does its harm: ``positions`` fills as records are sent,
    ``done`` is set at the end, ``check()`` raises what went wrong in the thread. ``publisher``:
    ``publish`` (a failed send fails the scenario) or e.g. ``PublishThroughOutages()``."""

    def __init__(self, bootstrap: str, records: list[tuple[str, dict]],
                 publisher: Callable[[str, list, list], Any] = publish) -> None:
        self.positions: list = []
        self.done = threading.Event()
        self._errors: list[BaseException] = []

        def run() -> None:
            try:
                publisher(bootstrap, records, self.positions)
            except BaseException as exc:  # noqa: BLE001 - raised in the test by check()
                self._errors.append(exc)
            finally:
                self.done.set()

        threading.Thread(target=run, daemon=True).start()

    def check(self) -> None:
        assert not self._errors, self._errors


class PublishThroughOutages:
    """A ``publisher`` for ``BackgroundPublish`` while the broker goes away and comes back. UHT's
    producer (acks=all, idempotent) retries by itself for two minutes; a record it still gives up on,
    or cannot even hand over (no broker to bootstrap from), is sent again on a new producer until it
    is acknowledged. A record sent again may have been written the first time too (only its
    acknowledgement lost), at a position nobody was told: a scenario using this takes its inputs
    from the ingest topics themselves (``read_range``), not from the acknowledgements."""

    def __init__(self, chunk: int = 500, deadline_s: float = 900) -> None:
        self.chunk, self.deadline_s = chunk, deadline_s
        self.resent = 0  # records handed to a producer that did not acknowledge them

    def __call__(self, bootstrap: str, records: list[tuple[str, dict]], positions: list) -> list:
        from herstelbus.connectors.uht.publish import UHT_OIN, ingest_record

        source = contracts.source_urn(UHT_OIN, "uht")
        deadline = time.monotonic() + self.deadline_s
        for start in range(0, len(records), self.chunk):
            pending = [ingest_record(t, r, source) for t, r in records[start:start + self.chunk]]
            while pending:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{len(pending)} records not acknowledged in {self.deadline_s:.0f} s")
                pending = self._attempt(bootstrap, pending, positions)
        return positions

    def _attempt(self, bootstrap: str, records: list, positions: list) -> list:
        """Each record sent once on a new producer; returns those not acknowledged."""
        from kafka.errors import KafkaError

        try:
            producer = new_producer(bootstrap)
        except KafkaError:  # no broker to bootstrap from: nothing was handed over
            time.sleep(1)
            return records
        futures = []
        try:
            for topic, key, value, headers in records:
                try:
                    futures.append(producer.send(topic, key=key, value=value, headers=headers))
                except KafkaError:  # e.g. no metadata within max_block_ms
                    futures.append(None)
            producer.flush()
        except KafkaError:
            pass
        finally:
            producer.close(timeout=10)  # what is still in flight after this has failed
        failed = []
        for record, future in zip(records, futures, strict=True):
            if future is not None and future.is_done and future.succeeded():
                positions.append((future.value.topic, future.value.partition, future.value.offset))
            else:
                failed.append(record)
        self.resent += len(failed)
        if failed:
            time.sleep(1)
        return failed


class RouterProcess:
    """``herstelbus supervise -- herstelbus router`` as in production; ``kill()`` SIGKILLs the router
    itself (supervise's child): supervise restarts only on 70, so it ends too and ``start()`` runs a
    new one. Exit 70 (a worker ending itself) is restarted by supervise and counted from its log."""

    def __init__(self, world: World, log: Path, **env: str) -> None:
        self.world, self.log = world, log
        self.env = {**os.environ, **world.env, **FAST_GROUP, **env}
        self.proc: subprocess.Popen | None = None
        self.kills = 0
        self.starts = 0

    def start(self) -> None:
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(supervised("router"), env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        self.starts += 1

    def wait_ready(self, before: int, timeout_s: float = 120) -> None:
        """Until this router's log holds more than ``before`` "Worker ready" lines (it joined the group
        and recovered its tables)."""
        def ready() -> bool:
            assert self.alive(), f"router ended while starting\n{self.tail()}"
            return self.text().count("Worker ready") > before

        wait_for("router ready", ready, timeout_s)

    def readies(self) -> int:
        return self.text().count("Worker ready")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def child(self) -> int | None:
        """The router's pid (supervise's one child), None while it has none."""
        if not self.alive():
            return None
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def kill(self, timeout_s: float = 30) -> bool:
        """SIGKILL the router; True when there was one to kill. Waits for supervise to end."""
        deadline = time.monotonic() + 10  # supervise may be between a 70 and its restart
        while (pid := self.child()) is None and self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid is None:
            return False
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        self.kills += 1
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:  # it had just restarted a 70: stop what it runs now
            stop(self.proc, timeout_s=10)
        return True

    def stop(self, timeout_s: float = 60) -> int | None:
        """SIGTERM (supervise passes it on); after ``timeout_s`` SIGKILL the router first, then supervise:
        killing only supervise would leave the router running on as an orphan in the consumer group."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        # A supervisor still starting has no SIGTERM handler yet and would die of it (-15): the
        # scenarios stop a router, not an interpreter that is still importing.
        wait_for("router process", lambda: self.child() is not None or not self.alive(), 60)
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pid = self.child()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
            return stop(self.proc, timeout_s=10)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def self_restarts(self) -> int:
        """Times the router ended itself (exit 70) and supervise restarted it."""
        return self.text().count(SUPERVISE_RESTART)

    def tail(self, chars: int = 4000) -> str:
        """The log's end, after its error lines (faust logs a crash's cause long before it stops)."""
        text = self.text()
        errors = [line for line in text.splitlines()
                  if '"level": "error"' in line or '"level": "critical"' in line or "Traceback" in line
                  or "Error:" in line]
        return "\n".join(errors[-20:])[-6000:] + "\n...\n" + text[-chars:]


def wait_for(what: str, done: Callable[[], bool], timeout_s: float, check: Callable[[], None] = lambda: None,
             poll_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        check()
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(poll_s)


# -- uht.status.v1 -------------------------------------------------------------------------------------
Pos = tuple[str, int, int]


def bron_of(receipt: dict) -> Pos | None:
    bron = receipt.get("bron")
    return (bron["topic"], bron["partition"], bron["offset"]) if bron else None


class StatusWatch:
    """Reads uht.status.v1 from its end at construction, in a thread, keeping every router receipt
    (a statusbericht with a bron). Only what is written after the scenario started."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.receipts: list[dict] = []
        self.brons: set[Pos] = set()
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                       auto_offset_reset="earliest", max_partition_fetch_bytes=4 << 20)
        parts = [TopicPartition(STATUS, p) for p in sorted(self._consumer.partitions_for_topic(STATUS))]
        self._consumer.assign(parts)
        for tp, end in self._consumer.end_offsets(parts).items():
            self._consumer.seek(tp, end)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="status-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for messages in self._consumer.poll(timeout_ms=300).values():
                    got = []
                    for m in messages:
                        record_type, record = contracts.decode(m.value)
                        if record_type == "statusbericht" and record.get("bron"):
                            got.append(record)
                    with self.lock:
                        self.receipts.extend(got)
                        self.brons.update(bron_of(r) for r in got)
        except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost in a thread
            self.error = exc

    def count(self) -> int:
        """Receipts seen so far, copies included: grows while a router routes."""
        return len(self.receipts)

    def progressed(self, seen: int, positions: list, total: int, share: float) -> bool:
        """Routing goes on (receipts after the first ``seen``) and ``share`` of ``total`` inputs have one;
        or everything has one already."""
        covered = self.covered(positions)
        return covered >= total or (self.count() > seen and covered >= share * total)

    def covered(self, positions: Iterable[Pos]) -> int:
        with self.lock:
            return sum(1 for p in positions if p in self.brons)

    def for_positions(self, positions: Iterable[Pos]) -> list[dict]:
        wanted = set(positions)
        with self.lock:
            return [r for r in self.receipts if bron_of(r) in wanted]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._consumer.close()


def wait_drained(watch: StatusWatch, positions: list[Pos], timeout_s: float,
                 check: Callable[[], None] = lambda: None) -> None:
    """Until every position has a receipt (``check`` raises when the router died meanwhile)."""
    def done() -> bool:
        if watch.error:
            raise watch.error
        return watch.covered(positions) >= len(positions)

    wait_for(f"receipts for all {len(positions)} inputs", done, timeout_s, check, poll_s=1.0)


# -- the gemeenten' side ---------------------------------------------------------------------------------
class DirectKeystore:
    """The SDK's ``Sleutelbron`` on the key store's gemeente access in this process: what the HTTP
    API (``herstelbus keys serve``) calls, without 342 tokens and a server."""

    def __init__(self, access: GemeenteAccess, gemeentecode: str) -> None:
        self.access, self.gemeentecode = access, gemeentecode

    def aankondigingen(self, kek_ids):
        return {e.kek_id: e.to_bytes() for e in self.access.announcements(self.gemeentecode, kek_ids)}

    def sleutels(self, refs: list[KeyRef]):
        return self.access.release(self.gemeentecode, list(refs), PURPOSE, policy.trace_from(None))


def gemeente_ends(bootstrap: str, gemeenten: Iterable[str]) -> dict[TopicPartition, int]:
    """End offsets of every gemeente events topic: where a scenario's routed records start."""
    return topic_ends(bootstrap, [gemeente_events_topic(gm) for gm in gemeenten])


def topic_ends(bootstrap: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """End offsets of every partition of ``topics`` (a topic that does not exist has none)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        parts = [TopicPartition(topic, p) for topic in topics
                 for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return consumer.end_offsets(parts)
    finally:
        consumer.close()


def read_range(bootstrap: str, since: dict[TopicPartition, int], keep: Callable[[Any], bool] = lambda m: True) -> list:
    """The records from ``since`` up to each partition's end when called that ``keep`` keeps, in
    partition order (no consumer group)."""
    kept: list = []
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             max_partition_fetch_bytes=4 << 20)
    try:
        ends = consumer.end_offsets(list(since))
        pending = {tp: ends[tp] for tp in since if since[tp] < ends[tp]}
        if pending:
            consumer.assign(list(pending))
            for tp in pending:
                consumer.seek(tp, since[tp])
        while pending:
            for tp, messages in consumer.poll(timeout_ms=500).items():
                kept.extend(m for m in messages if m.offset < ends[tp] and keep(m))
            for tp in [tp for tp in pending if consumer.position(tp) >= pending[tp]]:
                del pending[tp]
                consumer.pause(tp)
    finally:
        consumer.close()
    return kept


def ce_id(message: Any) -> str | None:
    for key, value in message.headers or ():
        if key == "ce_id":
            return value.decode() if value else None
    return None


@dataclass
class SinkResult:
    delivered: Counter = field(default_factory=Counter)  # (gemeente, event id) -> records on its topic
    written: int = 0  # lines the sinks wrote
    duplicates_at_sinks: int = 0  # redelivered copies the sinks recognised and did not write
    refused: Counter = field(default_factory=Counter)  # Weigercode -> records the SDK could not open
    lines: dict[str, list[str]] = field(default_factory=dict)  # gemeente -> event ids in its jsonl


def consume_all(world: World, since: dict[TopicPartition, int], ours: set[str], out_dir: Path,
                batch: int = 500) -> SinkResult:
    """Every gemeente's records written since ``since`` into its jsonl sink, as the connector does per
    poll batch (open with one key release, the SDK's sequence order, the sink's idempotent write).
    Only records of ``ours`` (event ids) are handed over: other tests' records belong to other keys."""
    result = SinkResult()
    access = GemeenteAccess(world.store)
    per_topic: dict[str, list] = defaultdict(list)
    for m in read_range(world.bootstrap, since, lambda m: ce_id(m) in ours):
        per_topic[m.topic].append(m)
    for topic, messages in sorted(per_topic.items()):
        gm = topic.split(".")[1]
        ring = OpeningKeyring(gm, [world.gemeenten[gm]], [world.signing.public_key()])
        opener = Opener(gm, ring, DirectKeystore(access, gm))
        sink = JsonlSink(out_dir, gm)
        try:
            for m in messages:
                result.delivered[(gm, ce_id(m))] += 1
            for start in range(0, len(messages), batch):
                resultaten = orden(opener.open_batch(messages[start:start + batch]))
                result.refused.update(r.code.value for r in resultaten if not isinstance(r, Geopend))
                verslag = sink.schrijf([r for r in resultaten if isinstance(r, Geopend)])
                result.written += len(verslag.nieuw)
                result.duplicates_at_sinks += len(verslag.dubbel)
        finally:
            sink.close()
    import json

    for path in sorted(out_dir.glob("GM*.jsonl")):
        result.lines[path.stem] = [json.loads(line)["event_id"] for line in path.read_text().splitlines()]
    return result


# -- the checks ------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    figures: dict[str, Any]
    failures: list[str]


def check(world: World, watch: StatusWatch, positions: list[Pos], since_ends: dict[TopicPartition, int],
          started: dt.datetime, out_dir: Path, *, reconcile_run: bool = True) -> Outcome:
    """Receipts, sinks and reconcile for one scenario's inputs; figures and what failed."""
    failures: list[str] = []
    receipts = watch.for_positions(positions)
    per_bron: dict[Pos, set] = defaultdict(set)
    for r in receipts:
        per_bron[bron_of(r)].add((r["status"], str(r["event_id"]), str(r["status_id"])))
    lost_receipts = [p for p in positions if p not in per_bron]
    conflicting = [p for p, v in per_bron.items() if len(v) > 1]
    status = Counter(next(iter(v))[0] for v in per_bron.values() if len(v) == 1)
    if lost_receipts:
        failures.append(f"{len(lost_receipts)} inputs without a receipt, e.g. {lost_receipts[:3]}")
    if conflicting:
        failures.append(f"{len(conflicting)} inputs with different receipts, e.g. {conflicting[:3]}")

    expected: dict[str, set[str]] = defaultdict(set)  # gemeente -> event ids its ROUTED receipts name
    for r in receipts:
        if r["status"] == "ROUTED":
            for doel in r["doelen"]:
                expected[doel["gemeentecode"]].add(str(r["event_id"]))
    ours = {str(r["event_id"]) for r in receipts if r.get("event_id")}
    sinks = consume_all(world, since_ends, ours, out_dir)
    missing = extra = twice = 0
    for gm in sorted(set(expected) | set(sinks.lines)):
        lines = sinks.lines.get(gm, [])
        twice += len(lines) - len(set(lines))
        missing += len(expected[gm] - set(lines))
        extra += len(set(lines) - expected[gm])
    if missing:
        failures.append(f"{missing} routed events missing from their gemeente's sink")
    if extra:
        failures.append(f"{extra} events in a sink that no ROUTED receipt names for that gemeente")
    if twice:
        failures.append(f"{twice} events written twice to a sink")
    if sinks.refused:
        failures.append(f"records the gemeente could not open: {dict(sinks.refused)}")

    figures: dict[str, Any] = {
        "events_in": len(positions),
        "routed": status["ROUTED"], "unroutable": status["UNROUTABLE"], "invalid": status["INVALID"],
        "duplicate": status["DUPLICATE"],
        "duplicate_receipts": len(receipts) - len({(bron_of(r), str(r["status_id"])) for r in receipts}),
        "routed_records_at_gemeenten": sum(sinks.delivered.values()),
        "duplicates_emitted": sum(n - 1 for n in sinks.delivered.values()),
        "sink_lines": sum(len(v) for v in sinks.lines.values()),
        "duplicates_at_sinks": sinks.duplicates_at_sinks,
        "double_effects": twice + len(conflicting),
        "lost": len(lost_receipts) + missing,
    }
    if reconcile_run:
        report = reconcile.run(world.bootstrap, since=started, timeout_s=600)
        figures["reconcile"] = report.summary()
        figures["reconcile_unaccounted"] = report.unaccounted_records
        if not report.ok or report.unaccounted_records:
            failures.append(f"reconcile: {report.summary()}; "
                            + "; ".join(str(d.as_json()) for d in (*report.unaccounted, *report.orphans)[:5]))
    return Outcome(figures, failures)


def seeded(name: str) -> tuple[int, random.Random]:
    """A fresh seed per run (the topics keep earlier runs' events), printed so a failure can be rerun
    with HERSTELBUS_RELIABILITY_SEED."""
    seed = int(os.environ.get("HERSTELBUS_RELIABILITY_SEED") or random.randrange(1 << 30))
    print(f"\n[reliability] {name}: seed {seed}")
    return seed, random.Random(seed)


@dataclass
class Scenario:
    """What every router scenario starts from: a world for all gemeenten, its seeded events, and
    the watches that tell what happened to them."""

    world: World
    seed: int
    rng: random.Random
    records: list[tuple[str, dict]]
    began: float  # monotonic
    started: dt.datetime  # for reconcile --since
    since_ends: dict[TopicPartition, int]  # the gemeente topics' ends before the scenario
    watch: StatusWatch


def scenario(kafka: Any, tmp_path: Path, name: str, events: int) -> Scenario:
    from herstelbus.settings import get_settings
    from herstelbus.topics import provision, wanted_topics

    provision(kafka.bootstrap, wanted_topics(get_settings().topic_policy(), dt.date(2025, 1, 1)), 1)
    world = World(tmp_path, kafka.bootstrap, gemeenten=gemeenten_now())
    seed, rng = seeded(name)
    records = valid_events(events, seed)
    return Scenario(world, seed, rng, records, time.monotonic(), dt.datetime.now(dt.timezone.utc),
                    gemeente_ends(kafka.bootstrap, world.gemeenten), StatusWatch(kafka.bootstrap))


# -- a broker of the scenario's own ------------------------------------------------------------------
@dataclass(frozen=True)
class OwnBroker:
    """What ``scenario()`` and the World need of a broker (as the ``kafka`` fixture's), plus the
    broker itself to stop and start on the same data (``broker.down()``, ``broker.up()``)."""

    broker: Any  # herstelbus.devkafka.LocalBroker
    bootstrap: str
    env: dict[str, str]


@contextmanager
def own_broker(tmp: Path) -> Iterator[OwnBroker]:
    """A broker for one scenario, stopped at the end whatever happened. For scenarios that stop the
    broker or feed the router what might stop it: the session's broker is shared by the whole suite,
    and every router on it is one consumer group, so a record no router gets past there would stall
    every later router test."""
    from herstelbus.devkafka import LocalBroker
    from herstelbus.settings import Settings, get_settings
    from tests.conftest import free_port

    settings = Settings(data_dir=tmp / "own-broker", cache_dir=get_settings().cache_dir.resolve(),
                        kafka_port=free_port(), kafka_controller_port=free_port(), kafka_sasl_port=free_port())
    broker = LocalBroker(settings)
    try:
        bootstrap = broker.up().bootstrap
        yield OwnBroker(broker, bootstrap, {"HERSTELBUS_BOOTSTRAP_SERVERS": bootstrap,
                                            "HERSTELBUS_DATA_DIR": str(tmp / "own-broker-clients")})
    finally:
        broker.down()


def from_start(bootstrap: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """Every partition of ``topics`` from offset 0: on a scenario's own broker, all of it is the scenario's."""
    return {tp: 0 for tp in topic_ends(bootstrap, topics)}
