"""Metrics and /healthz of real workers (issue 7): a router and an acks relay started with a
metrics port, records published, ``/metrics`` scraped over HTTP before and after.

The broker is shared with other tests, but each worker process here is ours, so are its counters:
a worker is left to finish whatever it finds first (its consumer lag at 0), then the difference
its counters make for our records must be exact."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from herstelbus.core import contracts
from herstelbus.core.privacy import generate_gemeente_key
from herstelbus.core.privacy.keys import public_key_to_pem
from herstelbus.core.topology import INGEST, STATUS, gemeente_acks_topic, gemeente_events_topic
from herstelbus.processes import stop
from herstelbus.settings import get_settings
from herstelbus.topics import provision, wanted_topics
from tests.conftest import free_port
from tests.integration.kafka_read import bron_of, wait_for_line
from tests.integration.router_world import World, _event, start_router, supervised

pytestmark = pytest.mark.kafka

Samples = dict[tuple[str, frozenset], float]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def scrape(port: int) -> tuple[Samples, str]:
    status, body = _get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    text = body.decode()
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    return samples, text


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def lags(samples: Samples) -> dict[str, float]:
    return {dict(labels)["topic"]: v for (name, labels), v in samples.items()
            if name == "herstelbus_consumer_lag_records"}


def wait(what: str, check: Callable[[], object], alive: Callable[[], bool], timeout: float = 120) -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert alive(), f"worker ended while waiting for {what}"
        assert time.monotonic() < deadline, f"{what} not within {timeout:.0f}s"
        time.sleep(0.5)


def healthy(port: int) -> dict | None:
    try:
        status, body = _get(f"http://127.0.0.1:{port}/healthz")
    except OSError:  # not listening yet
        return None
    report = json.loads(body)
    return report if status == 200 and report["partitions_assigned"] > 0 else None


def idle(port: int, topics: set[str] | None = None) -> Samples | None:
    """Samples once the worker has caught up: lag known and 0 on every partition it reports (for
    ``topics``: at least those)."""
    samples, _ = scrape(port)
    lag = lags(samples)
    if not lag or any(lag.values()) or (topics and not topics <= lag.keys()):
        return None
    return samples


def test_router_metrics_and_healthz(kafka, tmp_path: Path) -> None:
    provision(kafka.bootstrap, wanted_topics(get_settings().topic_policy(), dt.date(2025, 1, 1)), 1)
    world = World(tmp_path, kafka.bootstrap)
    port = free_port()
    world.env["HERSTELBUS_METRICS_PORT"] = str(port)
    log = tmp_path / "router.log"
    proc = start_router(world, log)
    alive = lambda: proc.poll() is None  # noqa: E731
    try:
        report = wait("/healthz 200", lambda: healthy(port), alive)
        assert report["worker"] == "router" and report["up"] is True
        before = wait("the router to catch up", lambda: idle(port, set(INGEST)), alive)

        routed = _event("overdracht_volledig")
        vow = _event("overdracht_volledig", woonsituatie="VOW", gemeentecode=None, adres=None,
                     dossiernummer="UHT-2021-000878")
        positions = set(world.publish([routed, vow, dict(routed), b"\x00 geen avro"]))
        world.read(STATUS, lambda seen: positions <= {bron_of(contracts.decode(m.value)[1]) for m in seen})

        expected = {
            ("herstelbus_router_events_in_total", ("type", "overdracht"), ("outcome", "ROUTED")): 1,
            ("herstelbus_router_events_in_total", ("type", "overdracht"), ("outcome", "UNROUTABLE")): 1,
            ("herstelbus_router_events_in_total", ("type", "overdracht"), ("outcome", "DUPLICATE")): 1,
            ("herstelbus_router_events_in_total", ("type", "overdracht"), ("outcome", "INVALID")): 1,
            ("herstelbus_router_records_out_total", ("kind", "gemeente")): 1,
            ("herstelbus_router_records_out_total", ("kind", "unroutable")): 1,
            ("herstelbus_router_records_out_total", ("kind", "deadletter")): 1,
            ("herstelbus_router_records_out_total", ("kind", "status")): 4,
            ("herstelbus_deadletters_total", ("component", "router"), ("reason", "MARKER_ONGELDIG")): 1,
            ("herstelbus_unroutable_total", ("component", "router"), ("reason", "VOW")): 1,
            ("herstelbus_router_latency_seconds_count",): 4,
        }

        def deltas() -> dict:
            after, _ = scrape(port)
            return {k: sample(after, k[0], **dict(k[1:])) - sample(before, k[0], **dict(k[1:])) for k in expected}

        # The receipts are read back here a moment before the router counts them.
        wait("the counters", lambda: deltas() == expected or None, alive, timeout=30)
        after = wait("the router to be idle again", lambda: idle(port, set(INGEST)), alive)
        assert deltas() == expected

        put = ("herstelbus_keystore_call_duration_seconds_count", {"call": "put_wrapped_keys", "outcome": "ok"})
        assert sample(after, put[0], **put[1]) - sample(before, put[0], **put[1]) >= 1
        assert sample(after, "herstelbus_keystore_call_duration_seconds_count", call="gemeente_keys", outcome="ok") >= 1
        assert sample(after, "herstelbus_router_waiting_records") == 0
        assert set(lags(after)) == set(INGEST)

        _, text = scrape(port)
        for secret in (routed["event_id"], vow["event_id"], routed["persoon"]["bsn"], gemeente_events_topic("GM0363")):
            assert secret not in text  # no event ids, no personal data, no per-gemeente output series

        status, body = _get(f"http://127.0.0.1:{port}/healthz")
        report = json.loads(body)
        assert status == 200 and report["up"] and report["seconds_since_last_batch"] is not None
        assert set(report) == {"worker", "up", "partitions_assigned", "seconds_since_last_batch"}
    finally:
        code = stop(proc, timeout_s=30)
        world.store.close()
    text = log.read_text()
    assert code == 0 and "metrics_serving" in text and "metrics_not_served" not in text, text[-3000:]
    assert "Traceback" not in text


def _receipt(event_id: str, gm: str, offset: int) -> dict:
    return {"status_id": str(uuid.uuid4()), "event_id": event_id, "event_type": "OVERDRACHT", "status": "ROUTED",
            "reden": None, "gemeentecode": None, "ack_id": None, "geminimaliseerd": False, "urgent": False,
            "overgeslagen": [],
            "doelen": [{"gemeentecode": gm, "reden": "WOONGEMEENTE", "oorspronkelijke_gemeentecode": None,
                        "opvolger_gemeentecode": None, "topic": gemeente_events_topic(gm), "partition": 0,
                        "offset": offset}],
            # A position no real ingest record has (other tests match router receipts by position).
            "at": dt.datetime.now(dt.timezone.utc),
            "bron": {"topic": "uht.overdracht.v1", "partition": 0, "offset": 2 * 10**15 + uuid.uuid4().int % 10**12},
            "doel": None}


def test_acks_metrics_and_healthz(kafka, tmp_path: Path) -> None:
    provision(kafka.bootstrap, wanted_topics(get_settings().topic_policy(), dt.date(2025, 1, 1)), 1)
    gm = "GM0014"  # a gemeente other acks tests leave alone
    acks_topic = gemeente_acks_topic(gm)
    ops = generate_gemeente_key()
    (tmp_path / "ops.pub.pem").write_bytes(public_key_to_pem(ops.public_key()))
    port = free_port()
    env = {**kafka.env, "HERSTELBUS_DATA_DIR": str(tmp_path / "data"), "HERSTELBUS_STALL_AFTER_S": "15",
           "HERSTELBUS_OPS_PUBLIC_KEY_FILE": str(tmp_path / "ops.pub.pem"), "HERSTELBUS_ACKS_GRACE_S": "2",
           "HERSTELBUS_METRICS_PORT": str(port)}
    event_id = str(uuid.uuid4())
    log = tmp_path / "acks.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(supervised("acks"), env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    alive = lambda: proc.poll() is None  # noqa: E731
    try:
        wait_for_line(log, "Worker ready", alive=alive)
        report = wait("/healthz 200", lambda: healthy(port), alive)
        assert report["worker"] == "acks" and report["partitions_assigned"] > 300  # 342 acks topics, status
        before = wait("the relay to catch up", lambda: idle(port, {STATUS, acks_topic}), alive)

        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
        producer.send(STATUS, key=event_id.encode(), value=contracts.encode("statusbericht", _receipt(event_id, gm, 1)))
        producer.flush()
        ack = {"ack_id": str(uuid.uuid4()), "event_id": event_id, "gemeentecode": gm, "status": "ONTVANGEN",
               "reden": None, "toelichting": None, "at": dt.datetime.now(dt.timezone.utc)}
        producer.send(acks_topic, key=event_id.encode(), value=contracts.encode("ontvangstbevestiging", ack))
        producer.send(acks_topic, key=b"kapot", value=b"\x00 geen avro")
        producer.flush()
        producer.close()

        expected = {
            ("herstelbus_acks_in_total", ("status", "ONTVANGEN"), ("outcome", "geaccepteerd")): 1,
            ("herstelbus_acks_in_total", ("status", "OTHER"), ("outcome", "deadletter")): 1,
            ("herstelbus_deadletters_total", ("component", "acks"), ("reason", "MARKER_ONGELDIG")): 1,
            ("herstelbus_acks_latency_seconds_count",): 2,
        }

        def deltas() -> dict:
            after, _ = scrape(port)
            return {k: sample(after, k[0], **dict(k[1:])) - sample(before, k[0], **dict(k[1:])) for k in expected}

        wait("the counters", lambda: deltas() == expected or None, alive, timeout=60)
        wait("the relay to be idle again", lambda: idle(port, {STATUS, acks_topic}), alive)
        assert deltas() == expected
        _, text = scrape(port)
        assert event_id not in text
    finally:
        code = stop(proc)
    text = log.read_text()
    assert code == 0 and "metrics_serving" in text and "metrics_not_served" not in text, text[-3000:]
