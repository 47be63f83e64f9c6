"""Scenario 6 (issue 10): two routers in one consumer group, rebalanced mid-run.

Two ``herstelbus router`` processes with the same app id (consumer group) and their own data dirs
share the three ingest partitions while UHT publishes a synthetic batch for all 342 gemeenten.
Mid-run the group changes three times: one router stops (SIGTERM, as a rolling deploy does), comes
back, and a third joins, so partitions move between processes each time. Records a router holds
back for UHT's order when its partitions are revoked are dropped there unacknowledged
(``Wachtrij.vergeet``) and read again by the new owner: ``waiting_forgotten`` counts them. After it
drains: one terminal receipt per input, every gemeente's jsonl sink holds each event routed to it
exactly once, reconcile reports 0 unaccounted.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.reliability import figures
from tests.reliability.harness import (
    BackgroundPublish, RouterProcess, check, scenario, wait_drained, wait_for,
)

pytestmark = pytest.mark.kafka

EVENTS = figures.size(2_000, 100_000)


def _forgotten(router: RouterProcess) -> int:
    """Events the router dropped from its Wachtrij on revocation (its ``wachtend_vergeten`` lines)."""
    total = 0
    for line in router.text().splitlines():
        if "wachtend_vergeten" in line:
            try:
                total += int(json.loads(line).get("events", 0))
            except ValueError:
                pass
    return total


def test_two_routers_rebalanced_mid_run_route_everything_exactly_once(kafka, tmp_path) -> None:
    sc = scenario(kafka, tmp_path, "scenario 6", EVENTS)
    world, seed, rng, records, began, started, since_ends, watch = (
        sc.world, sc.seed, sc.rng, sc.records, sc.began, sc.started, sc.since_ends, sc.watch)
    routers = {name: RouterProcess(world, tmp_path / f"router-{name}.log",
                                   HERSTELBUS_DATA_DIR=str(tmp_path / f"data-{name}")) for name in "abc"}
    a, b, c = routers["a"], routers["b"], routers["c"]
    def running(*names: str) -> None:
        publishing.check()
        for name in names:
            assert routers[name].alive(), f"router {name} ended by itself (seed {seed})\n{routers[name].tail()}"

    def at(share: float, *names: str) -> None:
        """Once the routers route (new receipts) and the batch is ``share`` far, plus a random moment."""
        seen = watch.count()
        wait_for(f"receipts for {share:.0%}", lambda: watch.progressed(seen, positions, len(records), share),
                 600, lambda: running(*names))
        time.sleep(rng.uniform(0.0, 1.0))

    publishing = BackgroundPublish(kafka.bootstrap, records)
    positions = publishing.positions
    a.start()
    b.start()
    changes = []
    exit_codes = {}
    try:
        at(rng.uniform(0.15, 0.3), "a", "b")
        exit_codes["b (left)"] = b.stop()  # b leaves: a takes every partition
        changes.append("b left")
        at(rng.uniform(0.35, 0.5), "a")
        before = b.readies()
        b.start()  # b is back: the partitions are shared again
        b.wait_ready(before)
        changes.append("b rejoined")
        at(rng.uniform(0.55, 0.7), "a", "b")
        c.start()  # a third joins
        c.wait_ready(0)
        changes.append("c joined")
        at(rng.uniform(0.75, 0.85), "a", "b", "c")
        exit_codes["c (left)"] = c.stop()
        changes.append("c left")
        wait_for("publishing", publishing.done.is_set, 600, lambda: running("a", "b"))
        wait_drained(watch, positions, figures.size(240, 1200), lambda: running("a", "b"))
    finally:
        for name, router in routers.items():
            if router.alive():
                exit_codes[name] = router.stop()
        watch.close()
    routing_s = time.monotonic() - began
    outcome = check(world, watch, positions, since_ends, started, tmp_path / "sinks")
    figures.record("6 two routers, rebalanced mid-run", **outcome.figures, group_changes=", ".join(changes),
                   waiting_forgotten=sum(_forgotten(r) for r in routers.values()),
                   self_restarts=sum(r.self_restarts() for r in routers.values()),
                   seed=seed, routing_seconds=round(routing_s), seconds=round(time.monotonic() - began))
    tails = "\n".join(f"--- {n}\n{r.tail(2000)}" for n, r in routers.items())
    assert all(code == 0 for code in exit_codes.values()), f"{exit_codes}\n{tails}"
    assert not outcome.failures, f"seed {seed}: " + "\n".join(outcome.failures)
