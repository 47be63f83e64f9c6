"""Growth: the router's events/s as its state grows, at 10k, 100k and 1M events (issue 9, scenario 7).

    .venv/bin/python bench/growth.py [--marks 10000,100000,1000000] [--window 10000]
                                     [--floor-events 20000] [--ceiling-records 500000]

One router process (fresh key store, tables, group) over max(--marks) synthetic UHT events (seed 3,
the router bench's workload and encoding), all on the ingest topics before it starts. Its receipts'
CreateTimes on uht.status.v1 give, at each mark, the rate over the --window receipts ending there,
with the router's CPU seconds per 1,000 events over the same window. What grows: the routing memory
(faust tables of subject and dossier pseudonyms, with their changelog topics), the key store (one
row per event and gemeente) and the dedup table of event ids. Flat growth: the last mark's rate over
the first's, printed with the goal (>= GOAL_FLAT).

Ratios: a faust pass-through floor (--floor-events, one run) and Kafka's own tools (one ceiling run)
are measured on the same broker in the same run, before the router, and every rate is printed with
its ratio to both. Results: bench/results/growth-<date>.json (report.py gathers them).
"""

from __future__ import annotations

import argparse
import os
import time

import _kit
from router import Bench, prepared_bench

GOAL_FLAT = 0.9


def window_rate(stamps: list[int], mark: int, window: int) -> tuple[float, float, float]:
    """events/s over the ``window`` receipts ending at receipt ``mark`` (1-based), and that window's
    first and last CreateTime in seconds."""
    first, last = stamps[mark - window] / 1000, stamps[mark - 1] / 1000
    return (window - 1) / max(last - first, 1e-3), first, last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--marks", type=lambda v: sorted({int(x) for x in v.split(",") if x}),
                    default=[10_000, 100_000, 1_000_000], help="receipt counts to take the rate at")
    ap.add_argument("--window", type=int, default=10_000, help="receipts per rate window (at most the first mark)")
    ap.add_argument("--floor-events", type=int, default=20_000)
    ap.add_argument("--ceiling-records", type=int, default=500_000)
    ap.add_argument("--ingest-partitions", type=int, default=2)
    ap.add_argument("--keep-workdir", action="store_true")
    ap.add_argument("--reset-topics-on-external-broker", action="store_true")
    args = ap.parse_args()
    n, window = args.marks[-1], min(args.window, args.marks[0])
    # what Bench reads from its arguments: the floor's events, no latency runs, the run timeout
    args.events, args.scenarios, args.latency_rates, args.latency_seconds = args.floor_events, "growth", [], 0
    args.timeout = 300.0

    started_at, load_at_start = time.monotonic(), os.getloadavg()
    with prepared_bench(args, "growth") as bench:
        bootstrap = bench.bootstrap
        ceiling = bench.ceiling(1)["events_per_s_median"]
        floor = bench.throughput("floor", 1, len(bench.events)).events_per_s

        t0 = time.monotonic()
        events = Bench.encoded(n, seed=3)
        print(f"# {n:,} events generated and encoded in {time.monotonic() - t0:.0f}s", flush=True)
        growth = route_growing(bench, events, args.marks, window)
        del events

    import faust

    meta = _kit.run_meta(started_at, load_at_start, bootstrap, {"faust": faust.__version__}, events=n,
                         window=window, ingest_partitions=bench.settings.ingest_partitions)
    for row in growth["marks"]:
        row["ratio_to_floor"] = round(row["events_per_s"] / floor, 3)
        row["ratio_to_ceiling"] = round(row["events_per_s"] / ceiling, 4)
    rates = [row["events_per_s"] for row in growth["marks"]]
    growth["flat_ratio"] = round(rates[-1] / rates[0], 3)
    summary = {"meta": meta, "floor_events_per_s": floor, "ceiling_events_per_s": ceiling, **growth,
               "goals": {f"flat growth to {n:,} (last/first >= {GOAL_FLAT})": growth["flat_ratio"] >= GOAL_FLAT}}
    print()
    print(f"{'events':>10}{'events/s':>10}{'× floor':>9}{'× ceiling':>11}{'CPU s/1000':>12}")
    for row in growth["marks"]:
        print(f"{row['mark']:>10,}{row['events_per_s']:>10,.0f}{row['ratio_to_floor']:>9.3f}"
              f"{row['ratio_to_ceiling']:>11.4f}{row['cpu_s_per_1000']:>12.3f}")
    print(f"floor (faust pass-through) {floor:,.0f}/s, ceiling (Kafka's tools) {ceiling:,.0f}/s; "
          f"last/first {growth['flat_ratio']}; peak RSS {growth['peak_rss_mb']} MB; "
          f"changelog records {growth['changelog_records']:,}; statuses {growth['statuses']}")
    for goal, met in summary["goals"].items():
        print(f"goal: {goal}: {'met' if met else 'NOT met'}")
    _kit.write_results("growth", summary)


def route_growing(bench: Bench, events: list, marks: list[int], window: int) -> dict:
    """One router over all ``events``; the rate and CPU at each mark."""
    import sys

    from kafka import KafkaAdminClient, KafkaConsumer

    from herstelbus.core import contracts
    from herstelbus.core.topology import STATUS

    bench.run_no += 1
    run_dir = bench.workdir / f"run{bench.run_no:02d}-growth"
    run_dir.mkdir(parents=True)
    bench.reset_topics()
    env = bench.env(run_dir, bench.keystore(run_dir))
    t0 = time.monotonic()
    bench.preload(events)
    print(f"# {len(events):,} events on the ingest topics in {time.monotonic() - t0:.0f}s", flush=True)
    proc, mon = bench.start([sys.executable, "-m", "herstelbus", "router"], env, run_dir)
    try:
        bench.wait_for(proc, STATUS, len(events), len(events) / 100 + 300, run_dir)
    finally:
        rss = bench.stop(proc, mon)
    stamps: list[int] = []
    statuses: dict[str, int] = {}
    consumer = KafkaConsumer(STATUS, bootstrap_servers=bench.bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=3000, max_poll_records=5000)
    try:
        for m in consumer:
            stamps.append(m.timestamp)
            status = contracts.decode(m.value)[1]["status"]
            statuses[status] = statuses.get(status, 0) + 1
            if len(stamps) >= len(events):
                break
    finally:
        consumer.close()
    stamps.sort()
    rows = []
    for mark in marks:
        rate, first, last = window_rate(stamps, mark, window)
        rows.append({"mark": mark, "events_per_s": round(rate, 1),
                     "cpu_s_per_1000": round((mon.cpu_at(last) - mon.cpu_at(first)) / (window - 1) * 1000, 4)})
        print(f"  growth: {mark:>9,} events: {rate:>7,.0f} events/s over the last {window:,}", flush=True)
    admin = KafkaAdminClient(bootstrap_servers=bench.bootstrap, client_id="herstelbus-bench")
    try:
        changelogs = [t for t in admin.list_topics() if t.endswith("-changelog")]
    finally:
        admin.close()
    counter = KafkaConsumer(bootstrap_servers=bench.bootstrap)
    try:
        changelog_records = sum(bench.end_total(counter, t) for t in changelogs)
    finally:
        counter.close()
    return {"marks": rows, "window": window, "events": len(events), "receipts": len(stamps),
            "statuses": statuses, "peak_rss_mb": None if rss is None else round(rss, 1), "changelog_records": changelog_records,
            "total_s": round((stamps[-1] - stamps[0]) / 1000, 1)}


if __name__ == "__main__":
    main()
