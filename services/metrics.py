"""Prometheus metrics and ``/healthz`` for the faust workers (router, acks relay).

Every metric is declared here, once, in prometheus_client's default registry (which also carries
the process collector: CPU, memory, open files). Label values are only record types, outcomes,
reason codes, call names and topic names: bounded sets, never an event id, a pseudonym or any
other value taken from a record (reason codes are checked against the code pattern first).

The HTTP endpoint (``HERSTELBUS_METRICS_PORT``, 0: off) runs in a thread of the worker process, so a
scrape never waits for the event loop, and ``/healthz`` can tell when the event loop stopped
turning: it reads what the stall watchdog (``faustkit.watch_progress``) noted on its last tick.
Counting runs after the work it counts is done and never raises into a worker: a bug in it is
logged (``metrics_bug``), the worker goes on (faust would acknowledge and restart a raising agent).
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import socket
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from herstelbus.core.routing import INVALID, OVERGESLAGEN, UNROUTABLE
from herstelbus.core.topology import DEADLETTER, STATUS
from herstelbus.core.topology import UNROUTABLE as UNROUTABLE_TOPIC
from herstelbus.keystore.errors import KeyConflict, KeystoreUnavailable, SubjectErasedWrite
from herstelbus.logs import get_logger

_log = get_logger("herstelbus.metrics")
disable_created_metrics()  # no *_created series: they double the series and say only when a worker started

# Seconds from UHT's publish to the receipt: milliseconds normally, up to the ordering wait (5 s),
# minutes to hours while a backlog drains after an outage.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LAG_INTERVAL_S = 5.0

# -- router ---------------------------------------------------------------------------------------
ROUTER_EVENTS_IN = Counter(
    "herstelbus_router_events_in_total", "Input events by type and receipt status, once their receipt is acknowledged.",
    ["type", "outcome"])
ROUTER_RECORDS_OUT = Counter(
    "herstelbus_router_records_out_total", "Records the router wrote (acknowledged), by kind.", ["kind"])
ROUTER_LATENCY = Histogram(
    "herstelbus_router_latency_seconds", "From an input record's Kafka timestamp to its receipt acknowledged.",
    buckets=LATENCY_BUCKETS)
ROUTER_WAITING = Gauge(
    "herstelbus_router_waiting_records", "Input records held back for UHT's order across the input topics.")

# -- acks relay -----------------------------------------------------------------------------------
ACKS_IN = Counter(
    "herstelbus_acks_in_total", "Gemeente acks by their status and what the relay decided "
    "(geaccepteerd, herhaling, geweigerd, deadletter).", ["status", "outcome"])
ACKS_OVERDUE = Counter(
    "herstelbus_acks_overdue_total", "OVERDUE notices sent (acknowledged), by reason.", ["reason"])
ACKS_LATENCY = Histogram(
    "herstelbus_acks_latency_seconds", "From an ack's Kafka timestamp to it being relayed and stored.",
    buckets=LATENCY_BUCKETS)

# -- both -----------------------------------------------------------------------------------------
DEADLETTERS = Counter(
    "herstelbus_deadletters_total", "Records written to herstel.deadletter.v1, by reason code.",
    ["component", "reason"])
UNROUTABLE_RECORDS = Counter(
    "herstelbus_unroutable_total", "Records written to herstel.unroutable.v1, by reason code.",
    ["component", "reason"])
KEYSTORE_CALLS = Histogram(
    "herstelbus_keystore_call_duration_seconds", "Key-store calls by call and outcome (ok, unavailable, "
    "refused, error); _count is the number of calls.", ["call", "outcome"], buckets=CALL_BUCKETS)
CONSUMER_LAG = Gauge(
    "herstelbus_consumer_lag_records", "Records on the partitions this worker owns past its committed offset, "
    "per input topic.", ["topic"])

_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
OTHER = "OTHER"


def code(value: Any) -> str:
    """A label value for a reason or status code: the code itself, or OTHER for anything that does
    not look like one (so no value from a record can ever become a label)."""
    return value if isinstance(value, str) and _CODE.fullmatch(value) else OTHER


# -- counting -------------------------------------------------------------------------------------
def _guarded(count: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(count)
    def guarded(*args: Any, **kwargs: Any) -> None:
        try:
            count(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - logged loudly; the counted work is already done
            _log.error("metrics_bug", counter=count.__name__, error=type(exc).__name__)
    return guarded


@_guarded
def routed(planned: Iterable[tuple[Any, Any, Any]], receipts: Iterable[Any], outs: Iterable[Any]) -> None:
    """A routed batch whose receipts are acknowledged: ``planned`` (event, bron, plan), its receipts
    and its outputs. One pass over the batch, then one ``inc`` per distinct label set."""
    now = time.time()
    events: Tally = Tally()
    letters: Tally = Tally()
    held: Tally = Tally()
    observe = ROUTER_LATENCY.observe
    count = 0
    for (event, _, plan), receipt in zip(planned, receipts, strict=True):
        status = receipt["status"]
        events[plan.record_type, status] += 1
        if plan.outputs:  # a repeated receipt (redelivery) wrote nothing new
            if status == INVALID:
                letters[code(receipt.get("reden"))] += 1
            elif status == UNROUTABLE:
                held[code(receipt.get("reden"))] += 1
            elif receipt.get("overgeslagen"):
                held[OVERGESLAGEN] += 1
        observe(max(0.0, now - event.message.timestamp))
        count += 1
    kinds = Tally(_KINDS.get(out.topic, "gemeente") for out in outs)
    kinds["status"] += count
    for (record_type, status), n in events.items():
        ROUTER_EVENTS_IN.labels(record_type, status).inc(n)
    for kind, n in kinds.items():
        ROUTER_RECORDS_OUT.labels(kind).inc(n)
    for reason, n in letters.items():
        DEADLETTERS.labels("router", reason).inc(n)
    for reason, n in held.items():
        UNROUTABLE_RECORDS.labels("router", reason).inc(n)


# 342 gemeente topics would be 342 series: one kind for all of them.
_KINDS = {DEADLETTER: "deadletter", UNROUTABLE_TOPIC: "unroutable", STATUS: "status"}


@_guarded
def ack_judged(status: Any, outcome: str, unroutable_reason: Any = None) -> None:
    """An ack judged by the core (``outcome``: its soort: geaccepteerd, herhaling, geweigerd)."""
    ACKS_IN.labels(code(status), outcome).inc()
    if unroutable_reason is not None:
        UNROUTABLE_RECORDS.labels("acks", code(unroutable_reason)).inc()


@_guarded
def ack_dead_letter(reason: Any) -> None:
    """An ack that could not be judged (unreadable, invalid, or a bug): dead-lettered for ops."""
    ACKS_IN.labels(OTHER, "deadletter").inc()
    DEADLETTERS.labels("acks", code(reason)).inc()


@_guarded
def ack_relayed(published_at: float | None) -> None:
    if published_at is not None:
        ACKS_LATENCY.observe(max(0.0, time.time() - published_at))


@_guarded
def overdue(reasons: Iterable[Any]) -> None:
    for reason, n in Tally(code(r) for r in reasons).items():
        ACKS_OVERDUE.labels(reason).inc(n)


@contextmanager
def keystore_call(call: str) -> Iterator[None]:
    """Time one key-store call and count it by outcome; the call's exception passes through."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    except KeystoreUnavailable:
        outcome = "unavailable"
        raise
    except (KeyConflict, SubjectErasedWrite):
        outcome = "refused"
        raise
    finally:
        KEYSTORE_CALLS.labels(call, outcome).observe(time.perf_counter() - started)


# -- /healthz ---------------------------------------------------------------------------------------
class Health:
    """What ``/healthz`` answers, from the watchdog's notes in ``progress`` (a ``faustkit.Progress``).

    503 before the watchdog's first tick (faust starts timers once its tables are recovered), when
    it has not ticked for ``stall_after_s`` (the event loop is blocked: the watchdog cannot act,
    so this must say it), and when it found partitions stalled. Partitions assigned are reported
    but not required: a standby worker (more workers than partitions) is healthy."""

    def __init__(self, worker: str, progress: Any, stall_after_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.worker, self.progress, self.stall_after_s, self.clock = worker, progress, stall_after_s, clock

    def report(self) -> tuple[int, dict[str, Any]]:
        p, now = self.progress, self.clock()
        if p.checked_at is None:
            reason = "starting"
        elif p.stalled:
            reason = "stalled"
        elif now - p.checked_at > self.stall_after_s:
            reason = "event_loop_blocked"
        else:
            reason = None
        body = {
            "worker": self.worker,
            "up": reason is None,
            "partitions_assigned": p.assigned,
            "seconds_since_last_batch": None if p.finished_at is None else round(now - p.finished_at, 3),
        }
        if reason is not None:
            body["reason"] = reason
        return (200 if reason is None else 503), body


def wsgi_app(health: Health, registry: Any = REGISTRY) -> Callable:
    """``/metrics`` (prometheus_client's own app) and ``/healthz``; 404 for anything else."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict, start_response: Callable) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/healthz":
            status, body = health.report()
            return _respond(start_response, status, "application/json", json.dumps(body).encode())
        return _respond(start_response, 404, "text/plain; charset=utf-8", b"not found\n")

    return app


def _respond(start_response: Callable, status: int, content_type: str, data: bytes) -> list[bytes]:
    start_response(f"{status} {HTTPStatus(status).phrase}",
                   [("Content-Type", content_type), ("Content-Length", str(len(data)))])
    return [data]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - every scrape is no news
        pass


def start_http(host: str, port: int, app: Callable) -> WSGIServer:
    """Serve ``app`` on ``host:port`` from a daemon thread (a thread per request): never on the
    event loop. Raises OSError when the port is taken."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    server_class = type("MetricsServer", (ThreadingWSGIServer,), {"address_family": family})
    server = make_server(host, port, app, server_class, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="herstelbus-metrics", daemon=True).start()
    return server


# -- wiring into a faust app ------------------------------------------------------------------------
def serve(app: Any, worker: str, topics: Iterable[str], progress: Any, *, stall_after_s: float,
          host: str, port: int) -> None:
    """Serve ``/metrics`` and ``/healthz`` for the faust ``app`` on ``host:port`` while it runs, and
    keep the lag of its input ``topics`` up to date. ``port`` 0: nothing is served. A port that
    cannot be bound is logged and the worker runs on without it: metrics never stop the exchange."""
    if not port:
        return
    from mode import Service  # only in a worker: the sealer and pipeline import this module too

    health = Health(worker, progress, stall_after_s)

    class MetricsEndpoint(Service):
        # A child service of the app: started with it (after logging is set up, before table
        # recovery, so /healthz answers 503 "starting" during a long recovery), stopped with it.
        server: WSGIServer | None = None

        async def on_start(self) -> None:
            try:
                self.server = start_http(host, port, wsgi_app(health))
            except OSError as exc:
                _log.error("metrics_not_served", host=host, port=port, error=type(exc).__name__,
                           errno=exc.errno)
                return
            _log.info("metrics_serving", host=host, port=self.server.server_port, worker=worker)

        async def on_stop(self) -> None:
            if self.server is not None:
                await asyncio.to_thread(self.server.shutdown)  # serve_forever polls every 0.5 s
                self.server.server_close()

    app.add_dependency(MetricsEndpoint())
    watch_lag(app, topics)


def watch_lag(app: Any, topics: Iterable[str], interval_s: float = LAG_INTERVAL_S) -> None:
    """Every ``interval_s``, per input topic: the highwater minus the committed offset, summed over
    the partitions of it this worker owns (as the watchdog reads them). Topics no longer owned
    are dropped, so a revoked topic shows no stale lag."""
    from herstelbus import faustpatch

    watched = frozenset(topics)
    shown: set[str] = set()

    @app.timer(interval_s)
    async def consumer_lag() -> None:
        nonlocal shown
        try:
            consumer = app.consumer
            lag = consumer_lag_per_topic(
                (tp.topic, faustpatch.fetch_position(consumer, tp)[0], faustpatch.committed_offset(consumer, tp))
                for tp in consumer.assignment() if tp.topic in watched)
            for topic, records in lag.items():
                CONSUMER_LAG.labels(topic).set(records)
            for topic in shown - lag.keys():
                CONSUMER_LAG.remove(topic)
            shown = set(lag)
        except Exception as exc:  # noqa: BLE001 - a timer that raises stops for good; next tick tries again
            _log.warning("consumer_lag_not_read", error=type(exc).__name__)


def consumer_lag_per_topic(partitions: Iterable[tuple[str, int | None, int | None]]) -> dict[str, int]:
    """(topic, highwater, committed) per owned partition -> lag per topic. A partition not fetched
    yet (no highwater) is left out; one never committed counts from offset 0."""
    lag: dict[str, int] = {}
    for topic, highwater, committed in partitions:
        if highwater is not None:
            lag[topic] = lag.get(topic, 0) + max(0, highwater - (committed or 0))
    return lag
