"""Scenario 2 (issue 10): the broker stopped mid-run and started again on the same data.

On a broker of its own (the session's serves the whole suite and is never stopped), UHT publishes
a synthetic batch for all 342 gemeenten in parts while the router routes it. At a moment drawn
from a seeded RNG, once the receipts pass a random share of what is published so far, the broker
is stopped (controlled shutdown) and, a few seconds later, started again on the same data dir; the
next part is published meanwhile, so UHT's sends meet the outage too. The router (under
``herstelbus supervise``) rides it out: it retries, or ends itself with 70 and is restarted.

A send UHT's producer gave up on is sent again: it may then be on the topic twice (the first write
succeeded, its acknowledgement was lost), the second copy a DUPLICATE. So the inputs are the
records on the ingest topics, read back, not the acknowledged positions alone. After it drains:
one terminal receipt per record written, every event UHT meant to publish written, every
gemeente's jsonl sink holds each event routed to it exactly once, reconcile reports 0 unaccounted.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from herstelbus.core.topology import INGEST
from tests.reliability import figures
from tests.reliability.harness import (
    BackgroundPublish, PublishThroughOutages, RouterProcess, ce_id, check, from_start, own_broker, read_range,
    scenario, wait_drained, wait_for,
)

pytestmark = pytest.mark.kafka

EVENTS = figures.size(1_500, 50_000)
RESTARTS = figures.size(1, 3)
WAIT_S = figures.size(200, 900)  # short: fail with a message before pytest's 300 s timeout does


def test_broker_restarted_mid_run_routes_everything_exactly_once(tmp_path) -> None:
    with own_broker(tmp_path) as kafka:
        sc = scenario(kafka, tmp_path, "scenario 2", EVENTS)
        world, seed, rng, records, began, started, since_ends, watch = (
            sc.world, sc.seed, sc.rng, sc.records, sc.began, sc.started, sc.since_ends, sc.watch)
        ingest_start = from_start(kafka.bootstrap, INGEST)
        router = RouterProcess(world, tmp_path / "router.log")
        step = -(-len(records) // (RESTARTS + 1))
        parts = [records[i:i + step] for i in range(0, len(records), step)]
        publishers = [PublishThroughOutages(deadline_s=WAIT_S) for _ in parts]
        publishing = [BackgroundPublish(kafka.bootstrap, parts[0], publishers[0])]

        def acknowledged() -> list:
            return [p for part in publishing for p in part.positions]

        def running() -> None:
            for part in publishing:
                part.check()
            assert router.alive(), f"the router ended (seed {seed})\n{router.tail()}"

        router.start()
        moments, outages = [], []
        try:
            for part, publisher in zip(parts[1:], publishers[1:], strict=True):
                wait_for("publishing", publishing[-1].done.is_set, WAIT_S, running)
                share, seen = rng.uniform(0.2, 0.8), watch.count()
                wait_for(f"receipts for {share:.0%}",
                         lambda: watch.progressed(seen, acknowledged(), len(acknowledged()), share), WAIT_S, running)
                time.sleep(rng.uniform(0.0, 1.0))
                moments.append(f"{watch.covered(acknowledged()) / len(records):.0%}")
                down_at = time.monotonic()
                kafka.broker.down()
                # The next part goes out while there is no broker: UHT's sends must ride it out too.
                publishing.append(BackgroundPublish(kafka.bootstrap, part, publisher))
                time.sleep(rng.uniform(2.0, 6.0))
                kafka.broker.up()
                outages.append(round(time.monotonic() - down_at, 1))
                running()
            wait_for("publishing", lambda: all(p.done.is_set() for p in publishing), WAIT_S, running)
            running()
            written = read_range(kafka.bootstrap, ingest_start)
            positions = [(m.topic, m.partition, m.offset) for m in written]
            wait_drained(watch, positions, WAIT_S, running)
        finally:
            exit_code = router.stop()
            watch.close()
        routing_s = time.monotonic() - began
        outcome = check(world, watch, positions, since_ends, started, tmp_path / "sinks")

    # Exact at UHT's side: every acknowledged position is a record read back, and every event UHT
    # meant to publish (the batch repeats a few on purpose) is on the topics at least as often.
    unknown_acks = set(acknowledged()) - set(positions)
    not_written = Counter(str(r["event_id"]) for _, r in records) - Counter(ce_id(m) for m in written)
    figures.record("2 broker restarted mid-run", **outcome.figures, broker_restarts=len(outages),
                   outage_seconds=outages, restart_moments=", ".join(moments),
                   resent_by_uht=sum(p.resent for p in publishers),
                   written_unacknowledged=len(positions) - len(set(acknowledged())),
                   self_restarts=router.self_restarts(), seed=seed, routing_seconds=round(routing_s),
                   seconds=round(time.monotonic() - began))
    assert exit_code == 0, f"exit {exit_code}\n" + router.tail()
    assert not unknown_acks, f"seed {seed}: acknowledged positions not on the topics: {sorted(unknown_acks)[:5]}"
    assert not not_written, f"seed {seed}: {sum(not_written.values())} events never written"
    assert not outcome.failures, f"seed {seed}: " + "\n".join(outcome.failures)
    assert len(outages) == RESTARTS
