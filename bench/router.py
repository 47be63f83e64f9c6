"""Router throughput, cost and latency on the real broker, against a faust pass-through floor (issue 5).

    .venv/bin/python bench/router.py [--events 20000] [--repeats 3] [--warmups 1]
                                     [--router-events 0] [--router-budget-s 180]
                                     [--latency-rate 1000] [--latency-seconds 20] [--latency-drain-s 60]
                                     [--scenarios floor,floor-acked,router,latency]

Everything runs on one broker in one run, so the router is only ever reported as a ratio to a floor
measured beside it. The broker is one this script starts (pinned jars, its own data dir and free
ports, stopped at the end) unless ``HERSTELBUS_BOOTSTRAP_SERVERS`` names one; then, because the
router's topic names are fixed, the script deletes and recreates them there and refuses to do so
without ``--reset-topics-on-external-broker``.

Workload: ``--events`` synthetic UHT events (``herstelbus.connectors.uht.synthetic``, seed 1), the
ones UHT's publisher would accept (``parse_json_event``), Avro-encoded once, with their CloudEvents
headers, keyed by dossiernummer. It contains the generator's edge cases (1 % duplicates, VOW,
buitenland, splits, unknown codes, herindeling, fan-out to a partner's gemeente, contactwens NEE).

Scenarios (each on fresh topics: see ``reset_topics``):
  floor       a faust agent (``faustkit.make_app``, the router's settings) consuming the three
              ingest topics as raw bytes and sending every record unchanged to one output topic
              (``await topic.send()``: faust's own batching, acks flushed before each commit).
  floor-acked the same agent awaiting each record's ack before the next, as the router awaits
              its outputs before writing the receipt (diagnostic: what that choice costs).
  router      ``python -m herstelbus router``, one process, fresh key store, tables and group.
              Every scenario gets --warmups unreported runs of 2,000 events first. The router's
              measured runs use all --events, unless the warm-up's rate says --repeats runs would
              take longer than --router-budget-s: then the first K events (printed; --router-events
              fixes K). The floors always use all --events.
Throughput: all events are in the ingest topics before the worker starts. The rate is taken from
the output records' CreateTime (set by the worker's producer when it appends the record, same
machine clock): (N - 1) / (last - first), i.e. from the first record out to the N-th; start-up
and group join are excluded. The router's output is its receipts on uht.status.v1, exactly one
per input. CPU is the worker's utime+stime (/proc/<pid>/stat, sampled every 50 ms) over that same
window, per 1,000 events; peak RSS is VmHWM from /proc/<pid>/status just before it is stopped.
Latency: a router on fresh topics is warmed up with 2,000 events (every gemeente's first key epoch
made), then a paced producer publishes at --latency-rate for --latency-seconds. Latency per routed
record = CreateTime of the record on the gemeente topic (router's clock) − wall clock just before
the producer's send() (this process's clock): same machine, same clock, 1 ms resolution of
CreateTime. When the router falls behind, events still unprocessed --latency-drain-s after the last
publish count with their age at that cutoff, and percentiles they can affect are printed as "≥".
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import _ceiling
import _kit

GOAL_RATIO, GOAL_RATE, GOAL_P99_MS, GOAL_SCALE = 0.70, 10_000, 50.0, 1.7
THROUGHPUT = ("floor", "floor-kafka-python", "floor-acked", "router", "router-2")  # worker scenarios, in run order
OIN = "00000001003214345000"
WARMUP_EVENTS = 2_000  # per warm-up run, and before the latency run (every gemeente's first epoch)


# -- the pass-through floor: this file run as a faust worker ---------------------------------------
def passthrough_worker(app_id: str, sink: str, acked: bool) -> None:
    import faust

    from herstelbus.core.topology import INGEST
    from herstelbus.faustkit import make_app, run_worker
    from herstelbus.settings import get_settings

    settings = get_settings()
    app = make_app(app_id, settings, topic_partitions=settings.ingest_partitions,
                   key_serializer="raw", value_serializer="raw")  # as the router's create_app
    ingest = app.topic(*INGEST, key_serializer="raw", value_serializer="raw")
    out = app.topic(sink, key_serializer="raw", value_serializer="raw")

    @app.agent(ingest)
    async def passthrough(stream: faust.StreamT) -> None:
        async for event in stream.events():
            msg = event.message
            headers = list(msg.headers.items()) if isinstance(msg.headers, dict) else list(msg.headers or [])
            fut = await out.send(key=msg.key, value=msg.value, headers=headers)
            if acked:
                await fut

    run_worker(app, settings)


# -- helpers -----------------------------------------------------------------------------------------
@dataclass
class Run:
    scenario: str
    repetition: int  # 0 = warm-up
    events: int
    seconds: float  # first to last output record (CreateTime)
    events_per_s: float
    cpu_s_per_1000: float
    peak_rss_mb: float | None
    startup_s: float  # worker start to its first output record
    outcomes: dict[str, int] = field(default_factory=dict)


class Bench:
    def __init__(self, args: argparse.Namespace, bootstrap: str, workdir: Path) -> None:
        from herstelbus.settings import Settings

        self.args, self.bootstrap, self.workdir = args, bootstrap, workdir
        self.settings = Settings(bootstrap_servers=bootstrap, ingest_partitions=args.ingest_partitions)
        self.runs: list[Run] = []
        self.run_no = 0
        self.keys_dir = workdir / "keys"
        self.keys_dir.mkdir(parents=True, exist_ok=True)

    # -- preparation -------------------------------------------------------------------------------
    def prepare(self) -> None:
        from herstelbus.core.gemeenten import gemeenten_vanaf
        from herstelbus.core.privacy import (
            PseudonymSecret, generate_gemeente_key, generate_signing_key, private_key_to_pem, public_key_to_pem,
        )
        from herstelbus.topics import wanted_topics

        t0 = time.monotonic()
        self.events = self.encoded(self.args.events, seed=1)
        # the latency run: its own events (other event ids), 2,000 for warm-up, then the paced ones
        most = max(self.args.latency_rates, default=0) if "latency" in self.args.scenarios.split(",") else 0
        self.latency_events = self.encoded(2_000 + int(most * self.args.latency_seconds), seed=2)
        print(f"# {len(self.events)} + {len(self.latency_events)} events generated and encoded "
              f"in {time.monotonic() - t0:.1f}s; "
              f"mean value {statistics.mean(len(e[2]) for e in self.events):.0f} bytes")

        # Every gemeente with topics gets a key (a superset of those the events reach: woongemeenten,
        # opvolgers, partners' gemeenten). One key pair per gemeente: the key store identifies a
        # gemeente key by its public key, so one shared pair cannot be registered for two gemeenten.
        self.specs = wanted_topics(self.settings.topic_policy(), dt.date(2025, 1, 1))
        self.gemeenten = sorted({g.code for g in gemeenten_vanaf(dt.date(2025, 1, 1))})
        self.gemeente_keys = {gm: generate_gemeente_key() for gm in self.gemeenten}
        (self.keys_dir / "pseudonym.key").write_text(PseudonymSecret.generate().export_base64())
        (self.keys_dir / "signing.pem").write_bytes(private_key_to_pem(generate_signing_key()))
        (self.keys_dir / "ops.pub.pem").write_bytes(public_key_to_pem(generate_gemeente_key().public_key()))
        from herstelbus.topics import provision

        t0 = time.monotonic()
        report = provision(self.bootstrap, self.specs, self.settings.replication_factor)
        print(f"# topics: {len(report.created)} created, {len(report.existing)} existed "
              f"({time.monotonic() - t0:.1f}s); {len(self.gemeenten)} gemeente keys")

    @staticmethod
    def encoded(n: int, seed: int) -> list[tuple[str, bytes, bytes, list, str]]:
        """The first ``n`` events UHT's publisher accepts: (topic, key, value, headers, event_id)."""
        from herstelbus.connectors.uht.synthetic import generate
        from herstelbus.core import contracts

        source = contracts.source_urn(OIN, "uht")
        out = []
        for obj in generate(int(n * 1.02) + 50, seed=seed):
            try:
                record_type, record = contracts.parse_json_event(obj)
            except contracts.InvalidEvent:
                continue  # refused by UHT's publisher (the generator's 11-proef failures)
            out.append((f"uht.{record_type}.v1", record["dossiernummer"].encode(),
                        contracts.encode(record_type, record),
                        contracts.headers_for(record_type, record, source=source), str(record["event_id"])))
            if len(out) == n:
                return out
        raise SystemExit(f"the generator gave fewer than {n} valid events")

    def keystore(self, run_dir: Path) -> str:
        from herstelbus.core.privacy import GemeenteKey
        from herstelbus.keystore.store import KeyAdmin, KeyStore

        url = f"sqlite:///{run_dir / 'keystore.sqlite'}"
        store = KeyStore.open(url)
        admin = KeyAdmin(store)
        since = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
        for gm, key in self.gemeente_keys.items():
            admin.register_gemeente_key(GemeenteKey(gm, key.public_key(), since), "bench")
        store.close()
        return url

    # -- topics --------------------------------------------------------------------------------------
    def reset_topics(self) -> None:
        """Fresh ingest, status, ops and table changelog topics and no router consumer group; the
        684 gemeente topics are kept (only appended to; deleting them per run costs more than a run)."""
        from kafka import KafkaAdminClient

        from herstelbus.core.topology import ROUTER_APP_ID
        from herstelbus.topics import provision

        wanted = [s for s in self.specs if not s.name.startswith("gemeente.")]
        names = {s.name for s in wanted}
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="herstelbus-bench")
        try:
            _kit.delete_topics(admin, names)
            known = {g["group_id"] if isinstance(g, dict) else g[0] for g in admin.list_groups()}
            doomed = [ROUTER_APP_ID] if ROUTER_APP_ID in known else []
            for group, result in (admin.delete_groups(doomed) if doomed else {}).items():
                if result not in ("OK", "GroupIdNotFoundError"):
                    raise SystemExit(f"deleting consumer group {group}: {result}")
        finally:
            admin.close()
        report = provision(self.bootstrap, wanted, self.settings.replication_factor)
        if len(report.created) != len(wanted):
            raise SystemExit(f"recreating topics: only {len(report.created)} of {len(wanted)} were created fresh")

    def create_topic(self, name: str) -> None:
        from herstelbus.core.topology import TopicSpec
        from herstelbus.topics import provision

        provision(self.bootstrap, [TopicSpec(name, self.settings.ingest_partitions)], self.settings.replication_factor)

    def preload(self, events: list) -> None:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=20,
                                 batch_size=256 * 1024, max_in_flight_requests_per_connection=5)
        for topic, key, value, headers, _ in events:
            producer.send(topic, key=key, value=value, headers=headers)
        producer.flush()
        producer.close()

    def end_total(self, consumer, topic: str) -> int:
        from kafka import TopicPartition

        parts = consumer.partitions_for_topic(topic) or set()
        return sum(consumer.end_offsets([TopicPartition(topic, p) for p in parts]).values())

    def read_all(self, topic: str, expected: int, decode: bool = False) -> list:
        """Every record of a (fresh) topic: (timestamp ms, value or decoded record)."""
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(topic, bootstrap_servers=self.bootstrap, auto_offset_reset="earliest",
                                 enable_auto_commit=False, consumer_timeout_ms=3000, max_poll_records=5000)
        out = []
        try:
            for m in consumer:
                out.append(m.timestamp)
                if decode:
                    out[-1] = (m.timestamp, m.value)
                if len(out) >= expected:
                    break
        finally:
            consumer.close()
        return out

    # -- one worker run ---------------------------------------------------------------------------------
    def env(self, run_dir: Path, keystore_url: str | None = None) -> dict[str, str]:
        env = {**os.environ, "HERSTELBUS_BOOTSTRAP_SERVERS": self.bootstrap,
               "HERSTELBUS_INGEST_PARTITIONS": str(self.settings.ingest_partitions),
               "HERSTELBUS_DATA_DIR": str(run_dir), "HERSTELBUS_LOG_FORMAT": "json",
               "HERSTELBUS_PSEUDONYM_KEY_FILE": str(self.keys_dir / "pseudonym.key"),
               "HERSTELBUS_SIGNING_KEY_FILE": str(self.keys_dir / "signing.pem"),
               "HERSTELBUS_OPS_PUBLIC_KEY_FILE": str(self.keys_dir / "ops.pub.pem")}
        if keystore_url:
            env["HERSTELBUS_KEYSTORE_URL"] = keystore_url
        return env

    def start(self, cmd: list[str], env: dict, run_dir: Path,
              log_name: str = "worker.log") -> tuple[subprocess.Popen, _kit.ProcMonitor]:
        log = open(run_dir / log_name, "w")
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=_kit.REPO)
        log.close()
        mon = _kit.ProcMonitor(proc.pid)
        mon.start()
        return proc, mon

    def wait_for(self, proc: subprocess.Popen, topic: str, count: int, timeout: float, run_dir: Path) -> None:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        deadline = time.monotonic() + timeout
        try:
            while self.end_total(consumer, topic) < count:
                if proc.poll() is not None:
                    raise SystemExit(f"the worker exited ({proc.returncode}); log: {run_dir / 'worker.log'}")
                if time.monotonic() > deadline:
                    raise SystemExit(f"{topic}: fewer than {count} records after {timeout:.0f}s; "
                                     f"log: {run_dir / 'worker.log'}")
                time.sleep(0.1)
        finally:
            consumer.close()

    def wait_ready(self, workers: list, run_dir: Path, settle_s: float = 5.0) -> None:
        """Until every worker logged faust's "Worker ready" (joined, tables recovered), then
        ``settle_s`` for the rebalance the last one's joining started in the others."""
        deadline = time.monotonic() + self.args.timeout
        for i, (proc, _) in enumerate(workers):
            log = run_dir / f"worker-{i}.log"
            while "Worker ready" not in log.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"worker {i} not ready (exit {proc.poll()}); log: {log}")
                time.sleep(0.2)
        time.sleep(settle_s)

    def stop(self, proc: subprocess.Popen, mon: _kit.ProcMonitor) -> float | None:
        from herstelbus.processes import stop

        try:
            return mon.peak_rss_mb()
        finally:
            try:
                mon.stop()
            finally:
                stop(proc, timeout_s=30)

    def throughput(self, scenario: str, repetition: int, n: int) -> Run:
        """One worker run over the first ``n`` prepared events."""
        from herstelbus.core import contracts
        from herstelbus.core.topology import STATUS

        self.run_no += 1
        run_dir = self.workdir / f"run{self.run_no:02d}-{scenario}"
        run_dir.mkdir(parents=True)
        app_id = f"bench-{scenario}-{os.getpid()}-{self.run_no}"  # never a group an older worker is in
        self.reset_topics()
        if scenario.startswith("router"):
            env = self.env(run_dir, self.keystore(run_dir))
            cmd, out_topic = [sys.executable, "-m", "herstelbus", "router"], STATUS
        else:
            env = self.env(run_dir)
            out_topic = f"bench.{app_id}.v1"
            self.create_topic(out_topic)
            worker = "--passthrough-kafka-python" if scenario == "floor-kafka-python" else "--passthrough-worker"
            cmd = [sys.executable, str(Path(__file__).resolve()), worker, app_id, out_topic]
            if scenario == "floor-acked":
                cmd.append("--acked")
        if scenario != "router-2":
            self.preload(self.events[:n])
        started = time.time()
        workers = []  # router-2: a second process in the same group, with a data dir of its own
        for i in range(2 if scenario == "router-2" else 1):
            (run_dir / f"p{i}").mkdir()
            workers.append(self.start(cmd, {**env, "HERSTELBUS_DATA_DIR": str(run_dir / f"p{i}")}, run_dir,
                                      f"worker-{i}.log"))
        try:
            if scenario == "router-2":  # both in the group and settled first: a rebalance is not the measure
                self.wait_ready(workers, run_dir)
                self.preload(self.events[:n])
            self.wait_for(workers[0][0], out_topic, n, self.args.timeout, run_dir)
        finally:
            rss = max((r for r in (self.stop(proc, mon) for proc, mon in workers) if r is not None), default=None)
        records = self.read_all(out_topic, n, decode=scenario.startswith("router"))
        stamps = sorted(r[0] if isinstance(r, tuple) else r for r in records)
        first, last = stamps[0] / 1000, stamps[-1] / 1000
        seconds = max(last - first, 1e-3)
        cpu = sum(mon.cpu_at(last) - mon.cpu_at(first) for _, mon in workers)
        outcomes: dict[str, int] = {}
        if scenario.startswith("router"):
            for _, value in records:
                status = contracts.decode(value)[1]["status"]
                outcomes[status] = outcomes.get(status, 0) + 1
        run = Run(scenario, repetition, n, round(seconds, 3), round((n - 1) / seconds, 1),
                  round(cpu / (n - 1) * 1000, 4), None if rss is None else round(rss, 1), round(first - started, 2),
                  outcomes)
        label = "warm-up" if repetition == 0 else f"rep {repetition}"
        print(f"  {scenario:<12} {label:<7} {n:>6,} events {run.events_per_s:>9,.0f} events/s  {seconds:6.2f}s  "
              f"cpu {run.cpu_s_per_1000:.3f} s/1000  rss {run.peak_rss_mb} MB  start-up {run.startup_s:.1f}s"
              + (f"  {outcomes}" if outcomes else ""), flush=True)
        self.runs.append(run)
        return run

    # -- Kafka's own ceiling ---------------------------------------------------------------------------
    def ceiling(self, repetitions: int) -> dict:
        """Kafka's producer and consumer performance tools, records of the events' mean size, on a
        fresh topic with the ingest topics' partitions; the median of ``repetitions`` runs."""
        size = round(statistics.mean(len(e[2]) for e in self.events))
        runs = []
        for rep in range(1, repetitions + 1):
            self.run_no += 1
            topic = f"bench.ceiling-{os.getpid()}-{self.run_no}.v1"
            self.create_topic(topic)
            run = _ceiling.ceiling(self.bootstrap, topic, self.args.ceiling_records, size, self.args.timeout)
            print(f"  ceiling      rep {rep}   {run['records']:>6,} records of {size} bytes: producer "
                  f"{run['producer_events_per_s']:>9,.0f}/s, consumer {run['consumer_events_per_s']:>9,.0f}/s",
                  flush=True)
            runs.append(run)
        rates = sorted(r["events_per_s"] for r in runs)
        return {"events_per_run": self.args.ceiling_records, "record_size": size, "repetitions": len(runs),
                "events_per_s_median": statistics.median(rates), "events_per_s_min": rates[0],
                "events_per_s_max": rates[-1],
                "producer_events_per_s_median": statistics.median(r["producer_events_per_s"] for r in runs),
                "consumer_events_per_s_median": statistics.median(r["consumer_events_per_s"] for r in runs),
                "runs": runs}

    # -- latency --------------------------------------------------------------------------------------
    def latency(self, rate: int) -> dict:
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition

        from herstelbus.core import contracts
        from herstelbus.core.topology import STATUS, gemeente_events_topic

        self.run_no += 1
        run_dir = self.workdir / f"run{self.run_no:02d}-latency"
        run_dir.mkdir(parents=True)
        self.reset_topics()
        env = self.env(run_dir, self.keystore(run_dir))
        warm = self.latency_events[:WARMUP_EVENTS]
        paced = self.latency_events[WARMUP_EVENTS:WARMUP_EVENTS + int(rate * self.args.latency_seconds)]
        self.preload(warm)
        proc, mon = self.start([sys.executable, "-m", "herstelbus", "router"], env, run_dir)
        published: dict[str, float] = {}
        tps = [TopicPartition(gemeente_events_topic(gm), p) for gm in self.gemeenten
               for p in range(self.settings.gemeente_partitions)]
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, max_poll_records=5000)
        try:
            self.wait_for(proc, STATUS, len(warm), self.args.timeout, run_dir)
            start_offsets = consumer.end_offsets(tps)
            producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=0)
            interval = 1.0 / rate
            t0 = time.perf_counter()
            wall0 = time.time() - t0  # wall clock = wall0 + perf_counter(): one clock read per event
            for i, (topic, key, value, headers, event_id) in enumerate(paced):
                due = t0 + i * interval
                now = time.perf_counter()
                if due > now:
                    time.sleep(due - now)
                published.setdefault(event_id, wall0 + time.perf_counter())  # a duplicate keeps the first
                producer.send(topic, key=key, value=value, headers=headers)
            producer.flush()
            took = time.perf_counter() - t0
            producer.close()
            print(f"  latency: published {len(paced):,} events in {took:.1f}s "
                  f"({len(paced) / took:,.0f}/s, target {rate:,}/s)", flush=True)
            drain_started = time.monotonic()
            try:
                self.wait_for(proc, STATUS, len(warm) + len(paced), self.args.latency_drain_s, run_dir)
                drain_s = round(time.monotonic() - drain_started, 1)
            except SystemExit:
                drain_s = None
            cutoff = time.time()
        finally:
            rss = self.stop(proc, mon)
        # Which paced events got a receipt (and which were routed): the rest were not processed by
        # the cutoff, so their latency is at least cutoff - publish time (a lower bound).
        receipts = {}
        for _, value in self.read_all(STATUS, len(warm) + len(paced), decode=True):
            receipt = contracts.decode(value)[1]
            if receipt.get("event_id") is not None and str(receipt["event_id"]) in published:
                receipts.setdefault(str(receipt["event_id"]), receipt["status"])  # paced events only
        consumer.assign(tps)
        for tp, off in start_offsets.items():
            consumer.seek(tp, off)
        end_offsets = consumer.end_offsets(tps)
        remaining = sum(end_offsets[tp] - start_offsets[tp] for tp in tps)
        samples: list[tuple[float, bool]] = []  # (ms, is a lower bound)
        by_window: dict[int, list[float]] = {}  # delivered latencies by 5 s window of publish time
        first_publish = min(published.values())
        while remaining > 0:
            batch = consumer.poll(timeout_ms=3000)
            if not batch:
                break
            for records in batch.values():
                for m in records:
                    remaining -= 1
                    ce_id = dict(m.headers).get("ce_id", b"").decode()
                    if ce_id in published:
                        samples.append((m.timestamp - published[ce_id] * 1000, False))
                        by_window.setdefault(int(published[ce_id] - first_publish) // 5, []).append(samples[-1][0])
        consumer.close()
        unprocessed = [e for e in published if e not in receipts]
        samples += [((cutoff - published[e]) * 1000, True) for e in unprocessed]
        samples.sort()

        def at(q: float) -> tuple[float, bool]:
            """Nearest-rank percentile; a lower bound when any lower-bound sample ranks at or below it
            (its true value can only be larger, so it may move above this rank)."""
            i = min(len(samples) - 1, max(0, math.ceil(q / 100 * len(samples)) - 1))
            return samples[i][0], any(lower for _, lower in samples[: i + 1])

        result = {
            "rate_target": rate, "seconds": self.args.latency_seconds,
            "published": len(paced), "publish_rate": round(len(paced) / took, 1),
            "routed_records": sum(1 for _, lower in samples if not lower),
            "unprocessed_at_cutoff": len(unprocessed), "drain_s": drain_s, "peak_rss_mb": rss,
            "statuses": {s: list(receipts.values()).count(s) for s in sorted(set(receipts.values()))},
        }
        for q in (50, 95, 99):
            value, lower = at(q)
            result[f"p{q}_ms"] = round(value, 1)
            result[f"p{q}_is_lower_bound"] = lower
        result["max_ms"] = round(samples[-1][0], 1)
        # flat: a steady latency; growing: the router falls behind the paced rate (queueing)
        result["delivered_p50_ms_by_5s_of_publishing"] = [
            round(statistics.median(by_window[w]), 1) if w in by_window else None for w in range(max(by_window) + 1)
        ] if by_window else []
        shown = "/".join(("≥" if result[f"p{q}_is_lower_bound"] else "") + f"{result[f'p{q}_ms']:,.0f}"
                         for q in (50, 95, 99))
        print(f"  latency: delivered p50 per 5 s of publishing {result['delivered_p50_ms_by_5s_of_publishing']} ms")
        print(f"  latency: {result['routed_records']:,} routed records, p50/p95/p99 {shown} ms"
              + (f", drained {drain_s}s after the last publish" if drain_s is not None else
                 f"; {len(unprocessed):,} events not processed {self.args.latency_drain_s:.0f}s after the "
                 "last publish (counted with their age at that moment: lower bounds)"), flush=True)
        return result


@contextmanager
def prepared_bench(args: argparse.Namespace, name: str) -> Iterator[Bench]:
    """A broker of its own (or the external one, reset), a work dir, the events, keys and topics."""
    with (_kit.bench_broker(name=name,
                            wipes="the router's topics (uht.*, status, ops, table changelogs) and its consumer group",
                            reset_allowed=args.reset_topics_on_external_broker) as bootstrap,
          _kit.work_dir(keep=args.keep_workdir, what="worker logs and key stores") as workdir):
        bench = Bench(args, bootstrap, workdir)
        bench.prepare()
        yield bench


# -- report -------------------------------------------------------------------------------------------
def summarise(runs: list[Run], latency: dict | None, args: argparse.Namespace, meta: dict,
              ceiling: dict | None = None) -> dict:
    table = {}
    if ceiling:
        table["ceiling"] = {k: v for k, v in ceiling.items() if k != "runs"}
        table["ceiling"].update(cpu_s_per_1000_median=None, peak_rss_mb_max=None)
    for scenario in THROUGHPUT:
        reps = [r for r in runs if r.scenario == scenario and r.repetition > 0]
        if not reps:
            continue
        rates = sorted(r.events_per_s for r in reps)
        table[scenario] = {
            "events_per_run": reps[0].events, "repetitions": len(reps),
            "events_per_s_median": statistics.median(rates), "events_per_s_min": rates[0],
            "events_per_s_max": rates[-1],
            "cpu_s_per_1000_median": statistics.median(r.cpu_s_per_1000 for r in reps),
            "peak_rss_mb_max": max((r.peak_rss_mb or 0) for r in reps),
        }
    floor = table.get("floor", {}).get("events_per_s_median")
    top = table.get("ceiling", {}).get("events_per_s_median")
    for row in table.values():
        row["ratio_to_floor"] = round(row["events_per_s_median"] / floor, 3) if floor else None
        row["ratio_to_ceiling"] = round(row["events_per_s_median"] / top, 3) if top else None
    router = table.get("router")
    goals = {}
    if router and floor:
        goals[f"router >= {GOAL_RATIO:.0%} of the faust pass-through"] = router["ratio_to_floor"] >= GOAL_RATIO
    if router:
        goals[f"router >= {GOAL_RATE:,} events/s per process"] = router["events_per_s_median"] >= GOAL_RATE
    if router and table.get("router-2"):
        scale = round(table["router-2"]["events_per_s_median"] / router["events_per_s_median"], 3)
        table["router-2"]["ratio_to_router"] = scale
        goals[f"2 router processes >= {GOAL_SCALE}x one"] = scale >= GOAL_SCALE
    if latency:
        goals[f"p99 <= {GOAL_P99_MS:.0f} ms at {latency['rate_target']:,} events/s"] = latency["p99_ms"] <= GOAL_P99_MS
    return {"meta": meta, "scenarios": table, "latency": latency, "goals": goals,
            "runs": [asdict(r) for r in runs], "ceiling_runs": (ceiling or {}).get("runs", [])}


def latency_text(lat: dict) -> str:
    return "/".join(("≥" if lat[f"p{q}_is_lower_bound"] else "") + f"{lat[f'p{q}_ms']:,.0f}" for q in (50, 95, 99))


def print_table(summary: dict) -> None:
    lat = summary["latency"]
    print()
    print(f"{'scenario':<19}{'events/run':>11}{'events/s median':>17}{'(min–max)':>20}{'× floor':>9}"
          f"{'× ceiling':>10}{'CPU s/1000':>12}{'peak RSS MB':>13}   p50/p95/p99 ms")

    def shown(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    for name, row in summary["scenarios"].items():
        spread = f"{row['events_per_s_min']:,.0f}–{row['events_per_s_max']:,.0f}"
        print(f"{name:<19}{row['events_per_run']:>11,}{row['events_per_s_median']:>17,.0f}{spread:>20}"
              f"{shown(row['ratio_to_floor'], '.3f'):>9}{shown(row['ratio_to_ceiling'], '.3f'):>10}"
              f"{shown(row['cpu_s_per_1000_median'], '.3f'):>12}{shown(row['peak_rss_mb_max'], '.0f'):>13}"
              f"   {latency_text(lat) if name == 'router' and lat else ''}")
    if lat:
        print(f"latency: router at {lat['rate_target']:,} events/s for {lat['seconds']:.0f} s "
              f"(published at {lat['publish_rate']:,.0f}/s): {lat['routed_records']:,} routed records; "
              + (f"caught up {lat['drain_s']} s after the last publish" if lat["drain_s"] is not None else
                 f"NOT caught up: {lat['unprocessed_at_cutoff']:,} events unprocessed at the cutoff "
                 "(≥: lower bounds)"))
    print()
    for goal, met in summary["goals"].items():
        print(f"goal: {goal}: {'met' if met else 'NOT met'}")


# -- main -----------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20_000, help="events per throughput run")
    ap.add_argument("--repeats", type=int, default=3, help="measured repetitions per scenario")
    ap.add_argument("--warmups", type=int, default=1, help="unreported runs before the repetitions")
    ap.add_argument("--router-events", type=int, default=0,
                    help="events per measured router run (default: all --events, or fewer when the "
                         "warm-up's rate says --repeats runs would exceed --router-budget-s)")
    ap.add_argument("--router-budget-s", type=float, default=180.0,
                    help="seconds the measured router runs may take together (with --router-events 0)")
    ap.add_argument("--acked-floor-repeats", type=int, default=1,
                    help="repetitions of the diagnostic floor that awaits every ack (0: skip)")
    ap.add_argument("--latency-rates", type=lambda v: [int(x) for x in v.split(",") if x], default=[1_000, 5_000],
                    help="events/s of the paced producer, one latency run each, comma-separated; the first "
                         "is the goal's (empty: skip)")
    ap.add_argument("--latency-seconds", type=float, default=20.0)
    ap.add_argument("--latency-drain-s", type=float, default=60.0,
                    help="how long after the last paced publish the router may take to catch up")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds a run may take before it is abandoned")
    ap.add_argument("--ceiling-repeats", type=int, default=3, help="runs of Kafka's own performance tools")
    ap.add_argument("--ceiling-records", type=int, default=500_000,
                    help="records per ceiling run (the events' size; more than --events: the tools' JVM warms up)")
    ap.add_argument("--ingest-partitions", type=int, default=2,
                    help="partitions per ingest topic (2: one each for the two processes of router-2)")
    ap.add_argument("--scenarios", default="ceiling,floor,floor-kafka-python,floor-acked,router,router-2,latency",
                    help="comma-separated subset of floor, floor-acked, router, latency")
    ap.add_argument("--keep-workdir", action="store_true", help="keep worker logs and key stores (path printed)")
    ap.add_argument("--reset-topics-on-external-broker", action="store_true",
                    help="allow deleting the router's topics on the broker HERSTELBUS_BOOTSTRAP_SERVERS names")
    ap.add_argument("--passthrough-worker", nargs=2, metavar=("APP_ID", "SINK"), help=argparse.SUPPRESS)
    ap.add_argument("--acked", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--passthrough-kafka-python", nargs=2, metavar=("GROUP", "SINK"), help=argparse.SUPPRESS)
    ap.add_argument("--passthrough-topics", nargs="+", help=argparse.SUPPRESS)  # default: the ingest topics
    args = ap.parse_args()
    if args.passthrough_worker:
        passthrough_worker(*args.passthrough_worker, args.acked)
        return
    if args.passthrough_kafka_python:
        from herstelbus.core.topology import INGEST
        from herstelbus.settings import get_settings

        _ceiling.passthrough_kafka_python(get_settings().bootstrap, *args.passthrough_kafka_python,
                                          args.passthrough_topics or list(INGEST))
        return

    started_at, load_at_start = time.monotonic(), os.getloadavg()
    with prepared_bench(args, "router") as bench:
        bootstrap = bench.bootstrap
        chosen = set(args.scenarios.split(","))
        n, warm_n = len(bench.events), min(len(bench.events), WARMUP_EVENTS)
        ceiling = bench.ceiling(args.ceiling_repeats) if "ceiling" in chosen and args.ceiling_repeats > 0 else None
        plan = [("floor", args.repeats), ("floor-kafka-python", args.repeats),
                ("floor-acked", args.acked_floor_repeats), ("router", args.repeats), ("router-2", args.repeats)]
        for scenario, reps in plan:
            if reps <= 0 or scenario not in chosen:
                continue
            warm = [bench.throughput(scenario, 0, warm_n) for _ in range(args.warmups)]
            size = n
            if scenario.startswith("router") and args.router_events:
                size = min(n, args.router_events)
            elif scenario.startswith("router") and warm:  # keep the run inside its time budget (see --router-budget-s)
                fits = int(args.router_budget_s / reps * statistics.median(r.events_per_s for r in warm))
                size = max(warm_n, min(n, fits // 1000 * 1000))
                if size < n:
                    print(f"  router: {size:,} of the {n:,} events per repetition, to stay within "
                          f"--router-budget-s {args.router_budget_s:.0f} at the warm-up's rate", flush=True)
            for rep in range(1, reps + 1):
                bench.throughput(scenario, rep, size)
        latencies = [bench.latency(rate) for rate in args.latency_rates if rate > 0] if "latency" in chosen else []
        latency = latencies[0] if latencies else None  # the goal's rate (the first)

    import faust

    meta = _kit.run_meta(started_at, load_at_start, bootstrap, {"faust": faust.__version__},
                         events=args.events, repeats=args.repeats, warmups=args.warmups,
                         ingest_partitions=bench.settings.ingest_partitions)
    summary = summarise(bench.runs, latency, args, meta, ceiling)
    summary["latency_by_rate"] = latencies
    for extra in latencies[1:]:
        print(f"latency at {extra['rate_target']:,} events/s: p50/p95/p99 {latency_text(extra)} ms"
              + ("" if extra["drain_s"] is not None else
                 f" (NOT caught up: {extra['unprocessed_at_cutoff']:,} unprocessed at the cutoff, ≥: lower bounds)"))
    print_table(summary)
    _kit.write_results("router", summary)


if __name__ == "__main__":
    main()
