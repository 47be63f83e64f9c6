"""Reliability scenarios 4 and 5 (issue 10): the gemeente connector under faults.

The real router routes synthetic UHT dossiers for three gemeenten once per module (sealed, keys in
the key store); the gemeenten' consumers read them through the key store API (`herstelbus keys
serve`) into their sinks.

4. The consumer is SIGKILLed again and again while it writes to the sql sink (SQLite; PostgreSQL
   too when a server is at hand). Half of the kills come the moment new rows are visible in the
   sink, i.e. after the sink's commit and before Kafka's offset commit; the other half at a random
   moment while it works. Then: the sink's rows are exactly the event ids routed to the gemeente,
   none twice, and the sink reported the redelivered records as already in sink (that count proves
   the window was hit), every event acknowledged ONTVANGEN with one ack id.
5. The webhook target times out, answers 5xx and 429 with Retry-After, then recovers: every event
   is stored once by the receiver (which dedups by Idempotency-Key), raw deliveries counted apart.
   Then it answers 410 Gone: the consumer stops with one clear line and exit 1, having
   acknowledged and committed nothing of the failing batch; with the subscription back, a restart
   delivers the rest.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from herstelbus.core.topology import STATUS, gemeente_acks_topic, gemeente_events_topic
from herstelbus.processes import stop
from tests.integration.postgres import db_url, pg_admin_url  # noqa: F401 (fixtures)
from tests.integration.router_world import World, start_router
from tests.reliability import figures
from tests.reliability._gemeente_kit import (
    GemeenteSide, KeysServer, Publisher, Receipts, Tail, acks_of, clear_in_text, committed, figures_of,
    gemeente_records,
    make_events, make_world, personal_values, provision_topics, start_group_at_end, wait_for_receipts,
)
from tests.reliability._gemeente_webhook import SECRET, TOKEN
from tests.reliability import _gemeente_webhook as webhook

pytestmark = pytest.mark.kafka

SQL_GEMEENTEN = ("GM0153", "GM0200")  # Enschede: sql sink on SQLite; Apeldoorn: on PostgreSQL
WEBHOOK_GM = "GM0268"  # Nijmegen
CONSUMER = [sys.executable, "-m", "tests.reliability._gemeente_consumer"]
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Routed:
    world: World
    side: GemeenteSide
    keys: KeysServer
    tail: Tail
    events: dict[str, list[dict]]  # per scenario
    receipts: dict[str, Receipts]
    groups: dict[str, str]  # consumer group per gemeente, started at the topic's end before routing
    values: set[bytes]  # the input's personal values, for the clear-text checks


@pytest.fixture(scope="module")
def routed(kafka, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("gemeente-faults")
    provision_topics(kafka.bootstrap)
    gms = [*SQL_GEMEENTEN, WEBHOOK_GM]
    world = make_world(tmp, kafka.bootstrap, gms)
    side = GemeenteSide(world, gms)
    tail = Tail(kafka.bootstrap, [STATUS, *(gemeente_events_topic(g) for g in gms),
                                  *(gemeente_acks_topic(g) for g in gms)])
    groups = {gm: f"reliability-{gm}-{uuid.uuid4().hex[:8]}" for gm in gms}
    for gm, group in groups.items():
        start_group_at_end(kafka.bootstrap, group, gemeente_events_topic(gm))
    events = {"sql": make_events(list(SQL_GEMEENTEN), figures.size(300, 10_000)),
              "webhook": make_events([WEBHOOK_GM], figures.size(700, 5_000))}  # short: two polls of 500
    router = start_router(world, tmp / "router.log")
    publisher = Publisher(kafka.bootstrap)
    try:
        positions = {name: publisher.send(evs) for name, evs in events.items()}
        everything = [p for ps in positions.values() for p in ps]
        wait_for_receipts(tail, everything, lambda: router.poll() is None, timeout=900)
    finally:
        publisher.close()
        code = stop(router, timeout_s=30)
    assert code == 0, (tmp / "router.log").read_text()[-3000:]
    receipts = {name: Receipts.of(tail, ps) for name, ps in positions.items()}
    for name, ps in positions.items():
        assert len(receipts[name].by_bron) == len(ps), f"{name}: not every event has a receipt"
    keys = KeysServer(world.env, tmp / "keys.log")
    keys.start()
    values = personal_values(e for evs in events.values() for e in evs)
    try:
        yield Routed(world, side, keys, tail, events, receipts, groups, values)
    finally:
        keys.stop()
        tail.close()
        world.store.close()


def _wait_records(routed: Routed, gm: str, event_ids: set[str], timeout: float = 60) -> list:
    deadline = time.monotonic() + timeout
    while True:
        records = gemeente_records(routed.tail, gm, event_ids)
        if {r.ce_id for r in records} == event_ids:
            return records
        assert time.monotonic() < deadline, f"{gm}: not every routed record reached the tail"
        time.sleep(0.5)


def _batches(log: str) -> list[dict]:
    """The consumer's ``batch_verwerkt`` log lines (JSON): records, geschreven, dubbel per batch."""
    out = []
    for line in log.splitlines():
        if '"batch_verwerkt"' in line:
            out.append(json.loads(line))
    return out


# -- scenario 4 --------------------------------------------------------------------------------------
class _Rows:
    """The sink's rows for one gemeente, read from outside the consumer (another connection)."""

    def __init__(self, url: str, gm: str) -> None:
        self.gm = gm
        self.sqlite = url.startswith("sqlite:///")
        if self.sqlite:
            self.conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
        else:
            self.engine = create_engine(url)
            self.conn = self.engine.connect()

    def _query(self, sql: str) -> list:
        try:
            if self.sqlite:
                return self.conn.execute(sql.replace(":gm", "?"), (self.gm,)).fetchall()
            rows = self.conn.execute(text(sql), {"gm": self.gm}).fetchall()
            self.conn.rollback()  # a fresh snapshot next time
            return rows
        except (sqlite3.OperationalError, SQLAlchemyError):  # no table yet: the sink makes it at start
            if not self.sqlite:
                self.conn.rollback()
            return []

    def count(self) -> int:
        rows = self._query("SELECT count(*) FROM herstel_events WHERE gemeentecode = :gm")
        return rows[0][0] if rows else 0

    def ids(self) -> list[str]:
        return [r[0] for r in self._query("SELECT event_id FROM herstel_events WHERE gemeentecode = :gm")]

    def close(self) -> None:
        self.conn.close()
        if not self.sqlite:
            self.engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sql_sink_consumer_killed_between_sink_write_and_offset_commit(routed: Routed, backend: str,
                                                                      request, tmp_path: Path) -> None:
    started = time.monotonic()
    gm = SQL_GEMEENTEN[0] if backend == "sqlite" else SQL_GEMEENTEN[1]
    url = f"sqlite:///{tmp_path / 'sink.sqlite'}" if backend == "sqlite" else request.getfixturevalue("db_url")
    expected = routed.receipts["sql"].routed_to(gm)
    assert expected, "nothing routed to the gemeente"
    _wait_records(routed, gm, expected)
    env = routed.side.env(gm, routed.keys.base)
    group, key_dir = routed.groups[gm], str(routed.side.key_dir(gm))
    batch = figures.size(5, 50)
    kills_wanted = figures.size(6, 100) if backend == "sqlite" else figures.size(4, 30)
    rows = _Rows(url, gm)
    lives: list[tuple[Path, bool]] = []  # (log, killed right after a sink commit)
    rng = random.Random()
    try:
        while len(lives) < kills_wanted and rows.count() < len(expected):
            log, targeted = tmp_path / f"life-{len(lives)}.log", len(lives) % 2 == 0
            before = rows.count()
            with open(log, "w") as out:
                proc = subprocess.Popen([*CONSUMER, gm, "--key-dir", key_dir, "--sink", f"sql:{url}", "--group-id",
                                         group, "--batch", str(batch)], env=env, cwd=REPO, stdout=out,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + 90
            # Wait for this life's first new rows: the sink has committed a batch. A targeted kill
            # comes at once (the acks and the offset commit are still to come); a random one later.
            while rows.count() == before and proc.poll() is None:
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.001 if targeted else 0.01)
            if not targeted:
                time.sleep(rng.uniform(0, 0.1))
            proc.kill()
            assert proc.wait() == -9, f"the consumer ended by itself: {log.read_text()[-2000:]}"
            lives.append((log, targeted))
        # The rest with the real command, as a gemeente runs it (its group member joins once the
        # killed static member's session has expired).
        final = subprocess.run([sys.executable, "-m", "herstelbus", "gemeente", "consume", gm, "--key-dir", key_dir,
                                "--sink", f"sql:{url}", "--ack", "--once", "--group-id", group], env=env, cwd=REPO,
                               capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        assert final.returncode == 0, final.stderr[-3000:]
        # Ours only: a router of this session also routes what earlier tests left on the ingest
        # topics (shared names and group), and some of that may be this gemeente's.
        all_ids = rows.ids()
        ids = [i for i in all_ids if i in _ours(routed, "sql")]
        foreign = len(set(all_ids)) - len(set(ids))
    finally:
        rows.close()

    per_life = [_batches(log.read_text()) for log, _ in lives] + [_batches(final.stderr)]
    written = sum(b["geschreven"] for life in per_life for b in life)
    redelivered = sum(b["dubbel"] for life in per_life for b in life)
    restarts_with_redelivery = sum(1 for life in per_life[1:] if life and life[0]["dubbel"] > 0)
    time.sleep(2)  # the tail reads the last acks
    raw_acks, distinct_acks = acks_of(routed.tail, gm, expected)
    output = "".join(log.read_text() for log, _ in lives) + final.stdout + final.stderr
    result = {
        "backend": backend, "events_in": len(routed.events["sql"]),
        **{k: v for k, v in figures_of(len(routed.events["sql"]), routed.receipts["sql"]).items() if k != "events_in"},
        "routed_to_gemeente": len(expected), "delivered": len(set(ids)),
        "duplicates_at_sink": len(ids) - len(set(ids)), "written_as_new": written,
        "lost": len(expected - set(ids)), "unexpected_rows": len(set(ids) - expected),
        "kills": len(lives), "kills_right_after_sink_commit": sum(t for _, t in lives),
        "restarts_with_redelivery": restarts_with_redelivery, "redelivered_already_in_sink": redelivered,
        "acks_sent": sum(raw_acks.values()), "acks_distinct": sum(distinct_acks.values()),
        "seconds": round(time.monotonic() - started, 1),
    }
    figures.record(f"4 sql sink ({backend}): consumer killed between sink write and offset commit", **result)
    assert result["lost"] == 0 and result["unexpected_rows"] == 0
    assert result["duplicates_at_sink"] == 0
    assert written <= len(expected) + foreign, "an event was written as new twice"  # logs can miss a killed batch's line
    assert redelivered > 0 and restarts_with_redelivery > 0, "no kill fell between sink write and offset commit"
    assert set(distinct_acks) == expected and set(distinct_acks.values()) == {1}, "one ack id per event"
    assert clear_in_text(output, routed.values) == 0


# -- scenario 5 --------------------------------------------------------------------------------------
HANG_S = 11.0  # the command's webhook timeout is 10 s
SHORT_BURSTS: list[list[webhook.Answer]] = [
    [("hang_stored", {})], [(503, {}), (500, {})], [(429, {"Retry-After": "1"})],
]
FULL_BURSTS: list[list[webhook.Answer]] = [
    [("hang_stored", {})], [(500, {})], [(503, {}), (502, {})], [(429, {"Retry-After": "2"})],
    [(500, {}), (503, {}), (500, {})], [("hang", {})], [(429, {"Retry-After": "date+2"})], [(503, {})] * 4,
    [("hang_stored", {})], [(429, {"Retry-After": "1"}), (500, {})],
]


def _consume_webhook(routed: Routed, receiver: webhook.Receiver, *extra: str) -> subprocess.CompletedProcess:
    env = routed.side.env(WEBHOOK_GM, routed.keys.base, HERSTELBUS_WEBHOOK_SECRET=SECRET,
                          HERSTELBUS_WEBHOOK_TOKEN=TOKEN)
    return subprocess.run([sys.executable, "-m", "herstelbus", "gemeente", "consume", WEBHOOK_GM, "--key-dir",
                           str(routed.side.key_dir(WEBHOOK_GM)), "--sink", f"webhook:{receiver.url}", "--ack",
                           "--group-id", routed.groups[WEBHOOK_GM], *extra], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL)


def test_webhook_target_times_out_fails_rate_limits_recovers_then_is_gone(routed: Routed) -> None:
    started = time.monotonic()
    gm = WEBHOOK_GM
    expected = routed.receipts["webhook"].routed_to(gm)
    records = _wait_records(routed, gm, expected)
    bursts = FULL_BURSTS if figures.FULL else SHORT_BURSTS
    # The 410 comes in the last poll (the command reads 500 records a poll), after every fault.
    gone_after = len(expected) - max(10, len(expected) // 10)
    gap = max(3, int(gone_after * 0.8) // len(bursts))
    receiver = webhook.start(bursts, gap, HANG_S, gone_after=gone_after)
    try:
        gone = _consume_webhook(routed, receiver)  # runs until the 410 stops it
        time.sleep(2)  # the tail reads the last acks
        acked_at_410 = {e for e, n in acks_of(routed.tail, gm, expected)[0].items() if n}
        offsets = committed(routed.world.bootstrap, routed.groups[gm], gemeente_events_topic(gm))
        stored_at_410, answers_at_410 = len(receiver.stored), Counter(receiver.answers)
        receiver.gone_after = None  # the subscription is back
        again = _consume_webhook(routed, receiver, "--once")
    finally:
        webhook.stop(receiver)

    error_lines = [line for line in gone.stderr.splitlines() if line.startswith("herstelbus: error:")]
    below_commit = {r.ce_id for r in records
                    if offsets.get(r.partition) is not None and r.offset < offsets[r.partition]}
    (gone_id,) = set(receiver.gone_for)
    gone_at = {(r.partition, r.offset) for r in records if r.ce_id == gone_id}
    time.sleep(2)
    raw_acks, distinct_acks = acks_of(routed.tail, gm, expected)
    ours = _ours(routed, "webhook")  # as in scenario 4: leftovers of earlier tests are not ours
    stored = {e for e in receiver.stored if e in ours}
    raw, unique = sum(n for e, n in receiver.deliveries.items() if e in ours), len(stored)
    result = {
        **figures_of(len(routed.events["webhook"]), routed.receipts["webhook"]),
        "routed_to_gemeente": len(expected), "delivered": len(stored & expected),
        "raw_deliveries": raw, "unique_deliveries": unique,
        "duplicates_at_sink": raw - unique,  # seen by the receiver, deduplicated by Idempotency-Key
        "different_data_on_redelivery": receiver.different_redeliveries,
        "lost": len(expected - stored), "requests": receiver.requests,
        "timeouts": answers_at_410["hang"] + answers_at_410["hang_stored"],
        "http_5xx": sum(n for k, n in answers_at_410.items() if k.startswith("5")), "http_429": answers_at_410["429"],
        "http_410": receiver.answers["410"], "stored_before_410": stored_at_410,
        "acked_before_410": len(acked_at_410), "committed_before_410": len(below_commit & expected),
        "acks_sent": sum(raw_acks.values()), "acks_distinct": sum(distinct_acks.values()),
        "seconds": round(time.monotonic() - started, 1),
    }
    figures.record("5 webhook: timeouts, 5xx, 429, recovery, then 410 Gone", **result)
    # The faults were all met before the 410, and the 410 stopped the command at once, clearly.
    assert receiver.bursts == [] and result["timeouts"] >= 1 and result["http_429"] >= 1 and result["http_5xx"] >= 2
    assert gone.returncode == 1, gone.stderr[-3000:]
    assert len(error_lines) == 1 and "HTTP 410 Gone" in error_lines[0] and "subscriber is gone" in error_lines[0], \
        gone.stderr[-2000:]
    assert gone.stderr.rstrip().splitlines()[-1] == error_lines[0] and "Traceback" not in gone.stderr
    assert result["http_410"] == 1, "a 410 is not retried"
    # Nothing acknowledged or committed past it: acks and commits cover whole earlier batches only.
    assert gone_id not in acked_at_410 and acked_at_410 == below_commit & expected
    assert 0 < len(acked_at_410) < stored_at_410, "the 410 should come after a first committed poll"
    assert all(offsets[p] is not None and offsets[p] <= o for p, o in gone_at)
    # Then everything, once in effect.
    assert again.returncode == 0, again.stderr[-3000:]
    assert stored == expected and result["lost"] == 0
    assert receiver.different_redeliveries == 0 and not receiver.bad
    assert raw > unique, "no event was delivered twice: the timeouts did not exercise the dedupe"
    assert set(distinct_acks) == expected and set(distinct_acks.values()) == {1}
    assert clear_in_text(gone.stdout + gone.stderr + again.stdout + again.stderr, routed.values) == 0


def _ours(routed: Routed, scenario: str) -> set[str]:
    return {str(e["event_id"]) for e in routed.events[scenario]}

