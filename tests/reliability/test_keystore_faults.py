"""Reliability scenario 3 (issue 10): the key store restarted mid-run and unreachable for a while.

a. The router writes its wrapped keys straight to the key store database (PostgreSQL here). While
   UHT keeps publishing, the PostgreSQL server is stopped (``pg_ctl stop -m immediate`` as a
   crash, ``-m fast`` as a clean restart), kept down, and started again on the same data; and it
   is frozen (SIGSTOP: unreachable without a refusal, as behind a network partition), then
   thawed. The router must hold back (fail closed: no gemeente record without its key row, so
   none is written while the database is away; a refused connection is logged as
   ``keystore_unavailable_retrying``), stay up, and catch up: every
   input exactly one terminal receipt, every routed event its gemeente record, every record opens
   with the gemeente's key, no personal value of the input in the clear on any output topic.
   Needs local PostgreSQL server binaries (to stop and start the server); skipped without them,
   as the integration suite's PostgreSQL tests are.
b. The key store API (``herstelbus keys serve``) is stopped and started again while a gemeente's
   consumer (``herstelbus gemeente consume``, sql sink) fetches keys for a steady stream of
   events. Runs on whatever key store (a) uses, SQLite without PostgreSQL. Whatever the consumer
   does meanwhile, the sink must end up with every routed event once; it should ride the restart
   out rather than exit (see test_the_gemeente_consumer_rides_out_a_key_store_api_restart).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from herstelbus.core.topology import DEADLETTER, STATUS, UNROUTABLE, gemeente_acks_topic, gemeente_events_topic
from herstelbus.processes import stop
from tests.integration.router_world import World, start_router
from tests.reliability import figures
from tests.reliability._gemeente_kit import (
    GemeenteSide, KeysServer, Publisher, Tail, acks_of, figures_of, gemeente_records, in_the_clear, make_events,
    make_world, open_records, personal_values, provision_topics, start_group_at_end, wait_for_receipts,
)
from tests.reliability._keystore_pg import PgCluster

pytestmark = pytest.mark.kafka

ROUTER_GEMEENTEN = ("GM0014", "GM0034")  # Groningen, Almere
API_GM = "GM0758"  # Breda
GRACE_S = 2.0  # a batch whose key rows were stored before the stop may still write its records
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    world: World
    pg: PgCluster | None
    skip_reason: str | None
    router: subprocess.Popen
    log: Path
    tail: Tail
    side: GemeenteSide


@pytest.fixture(scope="module")
def stack(kafka, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("keystore-faults")
    provision_topics(kafka.bootstrap)
    pg, reason = None, None
    try:
        pg = PgCluster()
    except pytest.skip.Exception as exc:  # (a) skips with this reason; (b) runs on SQLite
        reason = str(exc.msg)
    gms = [*ROUTER_GEMEENTEN, API_GM]
    world = make_world(tmp, kafka.bootstrap, gms, keystore_url=pg.url if pg else None)
    side = GemeenteSide(world, gms)
    tail = Tail(kafka.bootstrap, [STATUS, UNROUTABLE, DEADLETTER, *(gemeente_events_topic(g) for g in gms),
                                  gemeente_acks_topic(API_GM)])
    log = tmp / "router.log"
    router = start_router(world, log)
    try:
        yield Stack(world, pg, reason, router, log, tail, side)
    finally:
        code = stop(router, timeout_s=30)
        tail.close()
        world.store.close()
        if pg is not None:
            pg.close()
        assert code == 0, log.read_text()[-3000:]


def _log_events(text_: str) -> list[str]:
    out = []
    for line in text_.splitlines():
        try:
            out.append(json.loads(line).get("event", ""))
        except ValueError:
            out.append(line)
    return out


# -- a: the database under the router -----------------------------------------------------------
def test_router_fails_closed_while_the_key_store_database_is_down_and_catches_up(stack: Stack) -> None:
    if stack.pg is None:
        pytest.skip(stack.skip_reason)
    started = time.monotonic()
    outages = ([("fast", 15.0), ("immediate", 15.0), ("freeze", 15.0), ("fast", 20.0)] if figures.FULL
               else [("immediate", 8.0), ("freeze", 6.0)])
    lead, gap = figures.size(3.0, 4.0), figures.size(4.0, 6.0)
    events = make_events(list(ROUTER_GEMEENTEN), figures.size(400, 10_000))
    log_before = len(stack.log.read_text())
    publisher = Publisher(stack.world.bootstrap)
    windows: list[tuple[float, float]] = []
    try:
        # UHT publishes all along: before, during and after every outage.
        publisher.paced(events, lead + sum(down + gap for _, down in outages))
        t0 = time.monotonic()
        at = t0 + lead
        for mode, down in outages:
            time.sleep(max(0.0, at - time.monotonic()))
            stopped = time.monotonic()
            stack.pg.freeze() if mode == "freeze" else stack.pg.stop(mode)
            time.sleep(down)
            assert stack.router.poll() is None, "the router ended while the key store was away"
            stack.pg.thaw() if mode == "freeze" else stack.pg.start()
            windows.append((stopped, time.monotonic()))
            at = time.monotonic() + gap
        publisher.join()
        receipts = wait_for_receipts(stack.tail, publisher.positions, lambda: stack.router.poll() is None, 600)
    finally:
        publisher.close()
        stack.pg.ensure_up()  # up already, unless an assertion came mid-outage
    caught_up = time.monotonic()
    router_log = stack.log.read_text()[log_before:]
    logged = _log_events(router_log)

    records = {gm: gemeente_records(stack.tail, gm, receipts.routed_to(gm)) for gm in ROUTER_GEMEENTEN}
    missing = sum(len(receipts.routed_to(gm) - {r.ce_id for r in records[gm]}) for gm in ROUTER_GEMEENTEN)
    opened = [open_records(stack.world, gm, records[gm]) for gm in ROUTER_GEMEENTEN]
    during = [r for rs in records.values() for r in rs if any(a + GRACE_S < r.at <= b for a, b in windows)]
    receipts_during = [b for b, at in receipts.first_at.items() if any(a + GRACE_S < at <= e for a, e in windows)]
    first_after = [min((r.at for rs in records.values() for r in rs if r.at > b), default=caught_up) - b
                   for _, b in windows]
    held = {(r["doel"]["topic"], r["doel"]["partition"], r["doel"]["offset"])
            for r in receipts.by_bron.values() if r.get("doel")}
    outputs = [r for rs in records.values() for r in rs] + stack.tail.of(STATUS) + [
        s for s in stack.tail.of(UNROUTABLE) + stack.tail.of(DEADLETTER) if (s.topic, s.partition, s.offset) in held]
    clear = in_the_clear(outputs, personal_values(events))
    result = {
        **figures_of(len(events), receipts),
        "lost": len(events) - len(receipts.by_bron) + missing,
        "gemeente_records": sum(len(rs) for rs in records.values()),
        "records_opened": sum(o for o, _ in opened), "records_refused": sum(r for _, r in opened),
        "values_in_the_clear": clear,
        "outages": len(windows), "outage_s": round(sum(b - a for a, b in windows), 1),
        "gemeente_records_during_outages": len(during), "receipts_during_outages": len(receipts_during),
        "keystore_retries_logged": logged.count("keystore_unavailable_retrying"),
        "router_restarts": router_log.count("herstelbus supervise: worker exited"),
        "outage_kinds": " ".join(f"{m}/{d:g}s" for m, d in outages),
        "catch_up_s": " ".join(f"{x:.1f}" for x in first_after),  # back up -> its first gemeente record
        "seconds": round(caught_up - started, 1),
    }
    figures.record("3a key store database down under the router", **result)
    assert result["no_receipt"] == 0 and result["conflicting_receipts"] == 0 and missing == 0
    assert result["records_refused"] == 0 and result["records_opened"] == result["gemeente_records"]
    assert clear == 0
    assert result["gemeente_records_during_outages"] == 0, "a gemeente record was written while the key store was down"
    assert result["keystore_retries_logged"] >= sum(mode != "freeze" for mode, _ in outages)
    assert result["router_restarts"] == 0 and stack.router.poll() is None
    assert result["routed"] > 0


# -- b: the key store API under a gemeente's consumer --------------------------------------------
@dataclass
class ApiRun:
    expected: set[str]
    rows: list[str]
    exits: list[tuple[int, str]]  # (exit code, last stderr line) of every consumer run that ended by itself
    result: dict


@pytest.fixture(scope="module")
def api_run(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> ApiRun:
    tmp = tmp_path_factory.mktemp("keystore-api")
    started = time.monotonic()
    gm, group = API_GM, f"reliability-{API_GM}-{uuid.uuid4().hex[:8]}"
    start_group_at_end(stack.world.bootstrap, group, gemeente_events_topic(gm))
    restarts = [4.0] * figures.size(1, 3)  # seconds down each time
    lead, gap = 4.0, 6.0
    events = make_events([gm], figures.size(300, 3_000))
    sink = tmp / "sink.sqlite"
    keys = KeysServer(stack.world.env, tmp / "keys.log")
    keys.start()
    env = stack.side.env(gm, keys.base)
    cmd = [sys.executable, "-m", "herstelbus", "gemeente", "consume", gm, "--key-dir", str(stack.side.key_dir(gm)),
           "--sink", f"sql:sqlite:///{sink}", "--ack", "--group-id", group]
    exits: list[tuple[int, str]] = []
    done = threading.Event()

    def supervise() -> None:
        """As systemd's Restart=on-failure would: run the consumer again when it ends by itself."""
        n = 0
        while not done.is_set():
            err = tmp / f"consumer-{n}.log"
            with open(err, "w") as out:
                proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
            while proc.poll() is None and not done.is_set():
                time.sleep(0.1)
            if done.is_set():
                stop(proc, timeout_s=10)
                return
            lines = err.read_text().strip().splitlines()
            exits.append((proc.returncode, lines[-1] if lines else ""))
            n += 1
            time.sleep(1.0)

    publisher = Publisher(stack.world.bootstrap)
    supervisor = threading.Thread(target=supervise, daemon=True)
    try:
        supervisor.start()
        publisher.paced(events, lead + sum(down + gap for down in restarts))
        time.sleep(lead)
        for down in restarts:
            keys.stop()
            time.sleep(down)
            keys.start()
            time.sleep(gap)
        publisher.join()
        receipts = wait_for_receipts(stack.tail, publisher.positions, lambda: stack.router.poll() is None, 600)
        expected = receipts.routed_to(gm)
        engine = create_engine(f"sqlite:///{sink}")
        deadline = time.monotonic() + 300
        while True:
            try:
                with engine.connect() as conn:
                    rows = [r[0] for r in conn.execute(text("SELECT event_id FROM herstel_events"))]
            except Exception:  # noqa: BLE001 - the table comes with the sink
                rows = []
            if set(rows) >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        engine.dispose()
    finally:
        done.set()
        supervisor.join(timeout=30)
        publisher.close()
        keys.stop()
    deadline = time.monotonic() + 30  # the tail reads the last acks
    while True:
        raw_acks, distinct_acks = acks_of(stack.tail, gm, expected)
        if sum(distinct_acks.values()) >= len(expected) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    result = {
        **figures_of(len(events), receipts), "routed_to_gemeente": len(expected),
        "delivered": len(set(rows) & expected),
        "duplicates_at_sink": len(rows) - len(set(rows)), "lost": len(expected - set(rows)),
        "key_store_restarts": len(restarts), "key_store_down_s": sum(restarts),
        "consumer_exits": len(exits), "acks_sent": sum(raw_acks.values()), "acks_distinct": sum(distinct_acks.values()),
        "seconds": round(time.monotonic() - started, 1),
    }
    figures.record("3b key store API restarted under a gemeente consumer", **result)
    return ApiRun(expected, rows, exits, result)


def test_a_key_store_api_restart_loses_nothing_and_doubles_nothing(api_run: ApiRun) -> None:
    assert api_run.result["no_receipt"] == 0 and api_run.expected
    assert set(api_run.rows) == api_run.expected and len(api_run.rows) == len(set(api_run.rows))
    assert api_run.result["acks_distinct"] == len(api_run.expected)
    # An exit is one clear line, never a traceback (a supervisor's log shows why it restarted).
    assert all(code != 0 and line.startswith("herstelbus: error: key store") for code, line in api_run.exits), \
        api_run.exits


def test_the_gemeente_consumer_rides_out_a_key_store_api_restart(api_run: ApiRun) -> None:
    """A key store restart is routine on the exchange's side (a deploy); every gemeente's consumer
    should wait and retry, as the router does for the database and the webhook sink does for its
    target, not end and need a supervisor."""
    assert api_run.exits == [], (
        f"the consumer ended {len(api_run.exits)} time(s) while the key store API restarted: {api_run.exits}")
