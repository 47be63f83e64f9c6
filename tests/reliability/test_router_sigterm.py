"""The router stopped with SIGTERM while a record waits in its Wachtrij for UHT's order must stop.

Found by scenario 6 (test_router_rebalance.py): a router told to stop (SIGTERM, as in a rolling
deploy) while it routes a backlog never ends. faust's shutdown stops the app's timers first (their
``itertimer`` ends once the app is stopping), so ``route_waiting`` never runs again and the records
the Wachtrij holds (each with its own ``incref``) are never acknowledged; then
``App._stop_consumer`` -> ``Consumer.wait_empty`` waits for exactly those acknowledgements, for
ever. The process stays a live member of the consumer group (aiokafka keeps heartbeating), owns
its partitions and routes nothing; the stall watchdog is a timer too. Under ``herstelbus
supervise``, ``processes.stop``'s SIGKILL after its timeout hits supervise only, and the router
runs on as an orphan holding its partitions.

Here one pauzeknop carries a Kafka timestamp 5 minutes ahead (a UHT clock ahead of ours), so it waits
HERSTELBUS_VOLGORDE_WACHT_S (20 s here) for the router's other partitions, deterministically; during a
backlog pauzeknoppen and erkenningen wait like this all the time. The router gets SIGTERM about 5 s
after the record came in. Whether a fixed router routes it first (within the 20 s) or ends without
it (0, or 70: it is read again after the restart) is the fix's choice; it must end, and the record
must get its receipt from the next router.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import subprocess
import sys
import time

import pytest
from kafka import KafkaProducer

from herstelbus.connectors.uht.publish import UHT_OIN, ingest_record
from herstelbus.core import contracts
from herstelbus.core.topology import STATUS
from herstelbus.errors import EXIT_RESTART
from herstelbus.settings import get_settings
from herstelbus.topics import provision, wanted_topics
from tests.integration.kafka_read import bron_of, read_until, wait_for_line
from tests.integration.router_world import AMSTERDAM, World, _event, fresh_bsn, start_router

pytestmark = pytest.mark.kafka

STOP_WITHIN_S = 60


def test_sigterm_while_a_record_waits_for_uht_order_stops_the_router(kafka, tmp_path) -> None:
    provision(kafka.bootstrap, wanted_topics(get_settings().topic_policy(), dt.date(2025, 1, 1)), 1)
    world = World(tmp_path, kafka.bootstrap)
    rng = random.Random()
    pauze = _event("pauzeknop_start", gemeentecode=AMSTERDAM, dossiernummer=f"UHT-2024-{rng.randrange(10**6):06d}")
    pauze["persoon"]["bsn"] = fresh_bsn(rng)
    topic, key, value, headers = ingest_record(*contracts.parse_json_event(pauze),
                                               contracts.source_urn(UHT_OIN, "uht"))
    log = tmp_path / "router.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "herstelbus", "router"],
                                env={**os.environ, **world.env, "HERSTELBUS_VOLGORDE_WACHT_S": "20"},
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for_line(log, "Worker ready", alive=lambda: proc.poll() is None)
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
        sent = producer.send(topic, key=key, value=value, headers=headers,
                             timestamp_ms=int(time.time() * 1000) + 300_000).get(timeout=30)
        producer.close()
        position = (sent.topic, sent.partition, sent.offset)
        receipts = read_until(kafka.bootstrap, STATUS, lambda seen: False, timeout=5)
        assert position not in {bron_of(contracts.decode(m.value)[1]) for m in receipts}, "it did not wait"
        proc.terminate()
        began = time.monotonic()
        try:
            exit_code: int | None = proc.wait(timeout=STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            exit_code = None
        waited = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    tail = log.read_text(errors="replace")[-3000:]
    assert exit_code in (0, EXIT_RESTART), (f"the router did not end within {STOP_WITHIN_S} s of SIGTERM while a record waited "
                            f"for UHT's order (exit {exit_code} after {waited:.0f} s)\n{tail}")

    # Nothing lost either way: the next router routes it (after the default 5 s wait).
    proc = start_router(world, tmp_path / "router-2.log")
    try:
        seen = read_until(kafka.bootstrap, STATUS, lambda seen: proc.poll() is not None or position in {
            bron_of(contracts.decode(m.value)[1]) for m in seen}, timeout=120)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert position in {bron_of(contracts.decode(m.value)[1]) for m in seen}
