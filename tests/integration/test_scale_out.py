"""Scale-out (issue 11): two routers in one consumer group share the ingest partitions.

What a second router replica (compose `--scale router=2`, a Deployment with two pods) does: two
``herstelbus supervise -- herstelbus router`` processes, each with its own data dir, the same app id
(consumer group), over ingest topics of 2 partitions each (``HERSTELBUS_INGEST_PARTITIONS=2``). Once
both logged "Worker ready", UHT publishes ~2,000 synthetic events for all 342 gemeenten. Then each
router has routed a share, from partitions the other did not route from (its ``batch_routed`` lines);
every input has exactly one terminal receipt on uht.status.v1; no event id reached a gemeente topic
twice; each gemeente's sink holds exactly the events routed to it; reconcile accounts for all.

On a broker of its own (``own_broker``, as the reliability scenarios that need one): the router's
topic names are fixed, the session's broker has its ingest topics at the default partition count
already, and a topic's partitions can be added but never removed.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter

import pytest

from herstelbus.core.topology import INGEST
from herstelbus.settings import Settings
from herstelbus.topics import provision, wanted_topics
from tests.integration.router_world import World
from tests.reliability.harness import (
    RouterProcess, StatusWatch, check, gemeente_ends, gemeenten_now, own_broker, publish, seeded, topic_ends,
    valid_events, wait_drained,
)

pytestmark = pytest.mark.kafka

EVENTS = 2_000
PARTITIONS = 2
ROUTERS = ("a", "b")


def routed_batches(router: RouterProcess) -> list[dict]:
    """The router's ``batch_routed`` log lines (events, receipts by status, first and last input)."""
    batches = []
    for line in router.text().splitlines():
        if '"batch_routed"' in line:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == "batch_routed":
                batches.append(record)
    return batches


def partitions_of(batches: list[dict]) -> set[tuple[str, int]]:
    """The input partitions a router's batches started and ended on (``topic/partition/offset``)."""
    out = set()
    for batch in batches:
        for where in (batch["first"], batch["last"]):
            topic, partition, _ = where.rsplit("/", 2)
            out.add((topic, int(partition)))
    return out


def test_two_routers_in_one_group_share_the_work_and_route_everything_once(tmp_path) -> None:
    began = time.monotonic()
    with own_broker(tmp_path) as kafka:
        policy = Settings(bootstrap_servers=kafka.bootstrap, ingest_partitions=PARTITIONS).topic_policy()
        provision(kafka.bootstrap, wanted_topics(policy, dt.date(2025, 1, 1)), 1)
        ingest_partitions = Counter(tp.topic for tp in topic_ends(kafka.bootstrap, INGEST))
        assert ingest_partitions == {topic: PARTITIONS for topic in INGEST}

        world = World(tmp_path, kafka.bootstrap, gemeenten=gemeenten_now())
        seed, _ = seeded("scale-out")
        records = valid_events(EVENTS, seed)
        since_ends = gemeente_ends(kafka.bootstrap, world.gemeenten)
        started = dt.datetime.now(dt.timezone.utc)
        watch = StatusWatch(kafka.bootstrap)
        routers = {name: RouterProcess(world, tmp_path / f"router-{name}.log",
                                       HERSTELBUS_DATA_DIR=str(tmp_path / f"data-{name}"),
                                       HERSTELBUS_INGEST_PARTITIONS=str(PARTITIONS))
                   for name in ROUTERS}

        def running() -> None:
            for name, router in routers.items():
                assert router.alive(), f"router {name} ended (seed {seed})\n{router.tail()}"

        exit_codes: dict[str, int | None] = {}
        try:
            for router in routers.values():
                router.start()
            for router in routers.values():
                router.wait_ready(0)  # both joined the group: the partitions are split before UHT sends
            ready_s = time.monotonic() - began
            publish_began = time.monotonic()
            positions = publish(kafka.bootstrap, records)
            wait_drained(watch, positions, 180, running)
            routing_s = time.monotonic() - publish_began
        finally:
            for name, router in routers.items():
                exit_codes[name] = router.stop()
            watch.close()
        outcome = check(world, watch, positions, since_ends, started, tmp_path / "sinks")

    batches = {name: routed_batches(router) for name, router in routers.items()}
    share = {name: sum(b["events"] for b in bs) for name, bs in batches.items()}
    owned = {name: partitions_of(bs) for name, bs in batches.items()}
    figures = {
        **outcome.figures, "seed": seed, "events_in": len(positions),
        "share": share, "batches": {n: len(b) for n, b in batches.items()},
        "partitions": {n: sorted(f"{t}/{p}" for t, p in o) for n, o in owned.items()},
        "self_restarts": {n: r.self_restarts() for n, r in routers.items()},
        "ready_seconds": round(ready_s, 1), "routing_seconds": round(routing_s, 1),
        "seconds": round(time.monotonic() - began, 1),
    }
    print(f"\n[scale-out] {json.dumps(figures, default=str)}")
    tails = "\n".join(f"--- {n}\n{r.tail(2000)}" for n, r in routers.items())

    assert all(code == 0 for code in exit_codes.values()), f"{exit_codes}\n{tails}"
    assert not outcome.failures, f"seed {seed}: " + "\n".join(outcome.failures)
    # Nothing lost, one terminal receipt per input (check: none missing, none conflicting), and in
    # a run without faults not even a redelivered copy: no receipt twice, no gemeente record twice.
    assert outcome.figures["lost"] == 0 and outcome.figures["double_effects"] == 0, figures
    assert outcome.figures["duplicate_receipts"] == 0, figures
    assert outcome.figures["duplicates_emitted"] == 0, f"an event id routed twice to a gemeente topic: {figures}"
    # Both routers worked, each on its own partitions, and together on every input.
    for name in ROUTERS:
        assert share[name] >= 0.2 * len(positions), f"router {name} routed {share[name]} of {len(positions)}: {figures}"
    assert sum(share.values()) == len(positions), figures
    assert not owned["a"] & owned["b"], f"both routers routed from {sorted(owned['a'] & owned['b'])}"
