"""Scenario 1 (issue 10): the router SIGKILLed at random moments while it works, restarted each time.

UHT publishes a synthetic batch for all 342 gemeenten while the router routes it; at moments drawn
from a seeded RNG the router process itself gets SIGKILL (no shutdown, nothing flushed or
committed): mostly once the receipts pass a random share of the batch (so the kills fall all over
the run, mid-batch), some while it is still starting or recovering its tables (faustpatch's
territory). After it drains: one terminal receipt per input, every gemeente's jsonl sink holds each
event routed to it exactly once, reconcile reports 0 unaccounted.
"""

from __future__ import annotations

import time

import pytest

from tests.reliability import figures
from tests.reliability.harness import (
    BackgroundPublish, RouterProcess, check, scenario, wait_drained, wait_for,
)

pytestmark = pytest.mark.kafka

EVENTS = figures.size(1_500, 100_000)
KILLS = figures.size(3, 20)
STARTUP_KILLS = 0.25  # share of the kills aimed at start-up and table recovery


def test_router_sigkilled_at_random_moments_routes_everything_exactly_once(kafka, tmp_path) -> None:
    sc = scenario(kafka, tmp_path, "scenario 1", EVENTS)
    world, seed, rng, records, began, started, since_ends, watch = (
        sc.world, sc.seed, sc.rng, sc.records, sc.began, sc.started, sc.since_ends, sc.watch)
    router = RouterProcess(world, tmp_path / "router.log")
    def running() -> None:
        publishing.check()
        assert router.alive(), f"the router ended by itself (seed {seed})\n{router.tail()}"

    publishing = BackgroundPublish(kafka.bootstrap, records)
    positions = publishing.positions
    router.start()
    moments = []
    try:
        # Kill points as shares of the batch, in order; start-up kills take no share.
        shares = sorted(rng.uniform(0.02, 0.95) for _ in range(KILLS))
        for share in shares:
            if rng.random() < STARTUP_KILLS:
                wait_for("router process", lambda: router.child() is not None, 60, running)
                time.sleep(rng.uniform(0.5, 8.0))
                moments.append("start-up")
            else:  # once this router routes (new receipts) and the batch is that far
                seen = watch.count()
                wait_for(f"receipts for {share:.0%}", lambda: watch.progressed(seen, positions, len(records), share),
                         600, running)
                time.sleep(rng.uniform(0.0, 1.5))
                moments.append(f"{watch.covered(positions) / len(records):.0%}")
            running()
            assert router.kill(), f"no router to kill (seed {seed})\n{router.tail()}"
            router.start()
        wait_for("publishing", publishing.done.is_set, 600, running)
        running()
        wait_drained(watch, positions, figures.size(240, 1200), running)
    finally:
        exit_code = router.stop()
        watch.close()
    routing_s = time.monotonic() - began
    outcome = check(world, watch, positions, since_ends, started, tmp_path / "sinks")
    figures.record("1 router SIGKILLed at random moments", **outcome.figures, kills=router.kills,
                   kill_moments=", ".join(moments), self_restarts=router.self_restarts(),
                   seed=seed, routing_seconds=round(routing_s), seconds=round(time.monotonic() - began))
    assert exit_code == 0, f"exit {exit_code}\n" + router.tail()
    assert not outcome.failures, f"seed {seed}: " + "\n".join(outcome.failures)
    assert router.kills == KILLS
