"""Replay (issue 9, scenario 6): `herstelbus replay` over N retained events of one gemeente.

    .venv/bin/python bench/replay.py                        # 1,000,000 events, 3 repetitions
    .venv/bin/python bench/replay.py --events 50000 --repeats 1   # a quick look

On a broker of its own (``_kit.bench_broker``) one gemeente topic is filled with N records shaped
like the router's output: sealed-record-sized values (random bytes: replay never opens a value),
the router's CloudEvents headers, one distinct event id each. Then, per repetition, on a fresh
copy of that topic's range:

- ``floor``: a kafka-python pass-through (``bench/_ceiling.py``'s worker) reading the range and
  writing every record unchanged to another topic, acks=all: Kafka and Python with none of
  replay's work;
- ``replay``: ``python -m herstelbus replay --gemeente GM --from 0 --actor bench`` writing every
  event again to the same topic (dedup by event id, ``ce_replay`` header, audit record).

events/s = (N − 1) / (CreateTime of the last copy − CreateTime of the first), as the router bench
measures; CPU seconds per 1,000 events and peak RSS of the process from ``/proc``. The ceiling:
one run of Kafka's own producer and consumer tools (``_ceiling``) on the same broker, records of
the same size; every rate is printed with its ratio to the floor and to that ceiling. Results: a
table and ``bench/results/replay-<date>.json``. Profile: one more replay run under py-spy
(``--idle``: waiting shows too), its top frames printed and stored (not in the figures). Goal:
replay ≥ 20,000 events/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import _ceiling
import _kit

GM = "GM0363"
GOAL_RATE = 20_000
VALUE_BYTES = 1_400  # a routed overdracht: sealed fields, wrapped key, signature (bench/router.py's mean)


def fill(bootstrap: str, topic: str, n: int) -> None:
    from kafka import KafkaProducer

    from herstelbus.core import contracts
    from herstelbus.core.topology import AUDIT, topic_specs
    from herstelbus.topics import provision

    provision(bootstrap, [s for s in topic_specs([GM]) if s.name in (topic, AUDIT)], 1)  # replay audits
    source = contracts.source_urn("00000001003214345000", "herstelbus")
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024)
    value = os.urandom(VALUE_BYTES)
    now = dt.datetime.now(dt.timezone.utc)
    t0 = time.monotonic()
    for i in range(n):
        event_id = str(uuid.UUID(int=i + 1, version=4))
        subject = f"ps1:bench-{i % 50_000:08d}"  # the shape of a pseudonym (replay never checks more)
        headers = contracts.cloudevent_headers("gerouteerde_overdracht", id=event_id, source=source, time=now,
                                               subject=subject, sequence=i % 7 + 1)
        producer.send(topic, key=subject.encode(), value=value, headers=headers)
    producer.flush()
    producer.close()
    print(f"# {n:,} records of {VALUE_BYTES} bytes written to {topic} in {time.monotonic() - t0:.0f}s", flush=True)


def span(bootstrap: str, topic: str, start: int, n: int) -> tuple[float, float]:
    """CreateTime (s) of the first and last of ``n`` records from ``start`` on partition 0."""
    from kafka import KafkaConsumer, TopicPartition

    tp = TopicPartition(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        consumer.assign([tp])
        stamps = []
        for offset in (start, start + n - 1):
            consumer.seek(tp, offset)
            got = consumer.poll(timeout_ms=10_000, max_records=1).get(tp, [])
            stamps.append(got[0].timestamp / 1000)
        return stamps[0], stamps[1]
    finally:
        consumer.close()


def end(bootstrap: str, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return consumer.end_offsets([TopicPartition(topic, 0)])[TopicPartition(topic, 0)]
    finally:
        consumer.close()


def run(scenario: str, rep: int, bootstrap: str, topic: str, n: int, work: Path, timeout_s: float,
        profile: Path | None = None) -> dict:
    from herstelbus.core.topology import TopicSpec
    from herstelbus.processes import stop
    from herstelbus.topics import provision

    env = {**os.environ, "HERSTELBUS_BOOTSTRAP_SERVERS": bootstrap, "HERSTELBUS_DATA_DIR": str(work)}
    if scenario == "replay":
        out, cmd = topic, [sys.executable, "-m", "herstelbus", "replay", "--gemeente", GM, "--from", "0",
                           "--to", str(n - 1), "--actor", "bench"]
    else:
        out = f"bench.replay-floor-{os.getpid()}-{rep}.v1"
        provision(bootstrap, [TopicSpec(out, 1)], 1)
        cmd = [sys.executable, str(Path(__file__).resolve().parent / "router.py"), "--passthrough-kafka-python",
               f"bench-replay-floor-{os.getpid()}-{rep}", out, "--passthrough-topics", topic]
    if profile is not None:
        cmd = [*_kit.py_spy(profile), *cmd]
    start = end(bootstrap, out)
    with open(work / f"{scenario}-{rep}.log", "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=_kit.REPO)
    mon = _kit.ProcMonitor(proc.pid)
    mon.start()
    deadline = time.monotonic() + timeout_s
    try:
        while end(bootstrap, out) - start < n:
            if proc.poll() is not None and (scenario != "replay" or proc.returncode != 0):
                raise SystemExit(f"{scenario} exited {proc.returncode}: {work / f'{scenario}-{rep}.log'}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{scenario}: fewer than {n:,} copies after {timeout_s:.0f}s")
            time.sleep(0.2)
    finally:
        mon.stop()
        if profile is not None:  # py-spy writes its file when the replay it runs has ended
            proc.wait(timeout=120)
        if proc.poll() is None:
            stop(proc, timeout_s=30)
    first, last = span(bootstrap, out, start, n)
    seconds = max(last - first, 1e-3)
    result = {"scenario": scenario, "repetition": rep, "events": n, "seconds": round(seconds, 2),
              "events_per_s": round((n - 1) / seconds, 1),
              "cpu_s_per_1000": round((mon.cpu_at(last) - mon.cpu_at(first)) / (n - 1) * 1000, 4),
              "peak_rss_mb": mon.peak_rss_mb()}
    print(f"  {scenario:<7} rep {rep}  {n:>9,} events {result['events_per_s']:>10,.0f} events/s  "
          f"cpu {result['cpu_s_per_1000']:.3f} s/1000  rss {result['peak_rss_mb']} MB", flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds one run may take")
    ap.add_argument("--ceiling-records", type=int, default=500_000, help="records of the Kafka ceiling run")
    ap.add_argument("--no-profile", dest="profile", action="store_false", help="skip the py-spy'd replay run")
    ap.add_argument("--keep-workdir", action="store_true")
    ap.add_argument("--reset-topics-on-external-broker", action="store_true")
    args = ap.parse_args()

    from herstelbus.core.topology import gemeente_events_topic

    started_at, load_at_start = time.monotonic(), os.getloadavg()
    topic = gemeente_events_topic(GM)
    runs = []
    with (_kit.bench_broker(name="replay", wipes=f"{topic}", reset_allowed=args.reset_topics_on_external_broker)
          as bootstrap, _kit.work_dir(keep=args.keep_workdir, what="worker logs") as work):
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="herstelbus-bench")
        try:
            _kit.delete_topics(admin, {topic})
        finally:
            admin.close()
        fill(bootstrap, topic, args.events)
        # replay reads and writes the gemeente topic: the lower of Kafka's producer and consumer rates
        ceiling = _ceiling.ceiling_on_new_topic(bootstrap, args.ceiling_records, VALUE_BYTES)["events_per_s"]
        for rep in range(1, args.repeats + 1):
            for scenario in ("floor", "replay"):
                runs.append(run(scenario, rep, bootstrap, topic, args.events, work, args.timeout))
        profile = None
        if args.profile:  # one more replay under py-spy, not in the figures (sampling slows it)
            run("replay", 0, bootstrap, topic, args.events, work, args.timeout, profile=work / "replay.folded")
            profile = _kit.folded_summary(work / "replay.folded")

    table = {}
    for scenario in ("floor", "replay"):
        reps = [r for r in runs if r["scenario"] == scenario]
        rates = sorted(r["events_per_s"] for r in reps)
        table[scenario] = {"events_per_run": args.events, "repetitions": len(reps),
                           "events_per_s_median": statistics.median(rates), "events_per_s_min": rates[0],
                           "events_per_s_max": rates[-1],
                           "cpu_s_per_1000_median": statistics.median(r["cpu_s_per_1000"] for r in reps),
                           "peak_rss_mb_max": max(r["peak_rss_mb"] or 0 for r in reps)}
    floor = table["floor"]["events_per_s_median"]
    for row in table.values():
        row["ratio_to_floor"] = round(row["events_per_s_median"] / floor, 3)
        row["ratio_to_ceiling"] = round(row["events_per_s_median"] / ceiling, 3)
    table["ceiling"] = {"events_per_run": args.ceiling_records, "repetitions": 1, "events_per_s_median": ceiling,
                        "events_per_s_min": ceiling, "events_per_s_max": ceiling, "cpu_s_per_1000_median": None,
                        "peak_rss_mb_max": None, "ratio_to_floor": round(ceiling / floor, 3), "ratio_to_ceiling": 1.0}
    replay = table["replay"]["events_per_s_median"]
    goals = {f"replay >= {GOAL_RATE:,} events/s": replay >= GOAL_RATE}
    print(f"\n{'scenario':<9}{'events/run':>11}{'events/s median':>17}{'(min–max)':>22}{'× floor':>9}"
          f"{'× ceiling':>10}{'CPU s/1000':>12}{'peak RSS MB':>13}")
    for name, row in table.items():
        spread = f"{row['events_per_s_min']:,.0f}–{row['events_per_s_max']:,.0f}"
        cpu, rss = row["cpu_s_per_1000_median"], row["peak_rss_mb_max"]
        print(f"{name:<9}{row['events_per_run']:>11,}{row['events_per_s_median']:>17,.0f}{spread:>22}"
              f"{row['ratio_to_floor']:>9.3f}{row['ratio_to_ceiling']:>10.3f}"
              f"{'-' if cpu is None else f'{cpu:.3f}':>12}{'-' if rss is None else f'{rss:.0f}':>13}")
    for goal, met in goals.items():
        print(f"goal: {goal}: {'met' if met else 'NOT met'}")
    meta = _kit.run_meta(started_at, load_at_start, bootstrap, {}, events=args.events, repeats=args.repeats,
                         value_bytes=VALUE_BYTES)
    _kit.write_results("replay", {"meta": meta, "scenarios": table, "goals": goals, "runs": runs, "profile": profile})


if __name__ == "__main__":
    main()
