"""The one place that decides how every herstelbus faust app is configured and run.

At-least-once everywhere (faust-streaming 0.15's exactly_once has open duplicate bugs): every hop
is idempotent by event id instead. Topics are never auto-declared by faust; herstelbus creates
them explicitly, so a misspelt topic fails instead of appearing silently.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.streams import _current_event

from herstelbus import faustpatch, fetchguard
from herstelbus.kafkaclient import security
from herstelbus.core.routing.volgorde import Stand
from herstelbus.core.topology import OPS_MAX_MESSAGE_BYTES
from herstelbus.logs import configure_logging, get_logger
from herstelbus.settings import Settings


def make_app(app_id: str, settings: Settings, strict_topics: Iterable[str] = (), **overrides: Any) -> faust.App:
    """A faust app with herstelbus' settings. ``strict_topics``: the topics it consumes whose offsets
    never jump (not transactional, not compacted); a jump there is treated as loss (faustpatch)."""
    faustpatch.install(strict_topics)
    fetchguard.install()
    datadir = (settings.data_dir / "faust" / app_id).resolve()
    datadir.parent.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    options: dict[str, Any] = {
        "broker": f"kafka://{settings.bootstrap}",
        "store": "memory://",
        "datadir": str(datadir),
        "processing_guarantee": "at_least_once",
        "topic_allow_declare": False,
        "topic_disable_leader": True,
        "web_enabled": False,
        "producer_acks": -1,
        # faust's default (1,000,000) is below one input's dead letter: the worker restarted for ever.
        "producer_max_request_size": OPS_MAX_MESSAGE_BYTES,
        "consumer_auto_offset_reset": "earliest",
    }
    credentials = broker_credentials(settings)
    if credentials is not None:
        options["broker_credentials"] = credentials
    options.update(overrides)
    return faust.App(app_id, **options)


def broker_credentials(settings: Settings) -> faust.SASLCredentials | None:
    """The worker's principal (HERSTELBUS_KAFKA_CLIENT_CONFIG) as faust wants it: SCRAM over TLS
    against the broker's CA; None for the local plaintext listener."""
    options = security(settings)
    if not options:
        return None
    context = ssl.create_default_context(cafile=options.get("ssl_cafile"))
    return faust.SASLCredentials(username=options["sasl_plain_username"], password=options["sasl_plain_password"],
                                 mechanism=options.get("sasl_mechanism", "SCRAM-SHA-512"), ssl_context=context)


def run_worker(app: faust.App, settings: Settings) -> None:
    """Run ``app`` until SIGINT/SIGTERM, logging through herstelbus' structlog chain."""
    configure_logging(settings)
    worker = faust.Worker(app, loglevel=settings.log_level, override_logging=False)
    worker.execute_from_commandline()


@contextmanager
def table_writes_for(event: faust.EventT) -> Iterator[None]:
    """Table writes inside go to the changelog partition of ``event`` (tables are co-partitioned
    with their source topic). faust takes that partition from the current event, which a batch
    (``stream.take_events``) does not set per event. Only the context variable faust's tables read
    is set, in this task: setting the stream's ``current_event`` instead would make the take buffer
    file the next record under the wrong event, skipping one and routing another twice."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


async def track_topics(app: faust.App, topics: Iterable[str]) -> None:
    """Fetch the producer's metadata for ``topics`` once, before the first send. aiokafka refreshes
    the metadata of every topic it tracks each time it meets a new one, so a router meeting 342
    gemeente topics one by one stalled its sends for seconds (a p95 of 1.7 s at 300 events/s).
    Only an optimisation: on failure the sends fetch what they need themselves."""
    try:
        client = app.producer._ensure_producer().client  # faust 0.15.3 on aiokafka 0.14 (pinned)
        await asyncio.gather(*(client.add_topic(topic) for topic in topics))  # one update for all
    except Exception as exc:  # noqa: BLE001 - see the docstring
        _log.warning("topic_metadata_not_prefetched", error=type(exc).__name__)


class Progress:
    """The agent's side of the stall watchdog: a batch in hand, and how many it finished. The
    watchdog notes what it saw on each tick here too, for ``/healthz`` (herstelbus.metrics)."""

    def __init__(self) -> None:
        self.busy = 0
        self.finished = 0
        self.finished_at: float | None = None  # time.monotonic() of the last finished batch
        self.checked_at: float | None = None  # the watchdog's last tick: the event loop turns
        self.assigned = 0  # watched partitions owned at that tick
        self.stalled = False

    @contextmanager
    def batch(self) -> Iterator[None]:
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1
            self.finished += 1
            self.finished_at = time.monotonic()

    def marker(self) -> tuple[int, int]:
        return self.busy, self.finished


def stalled_partitions(behind: Iterable[str], since: dict[str, float], now: float, stall_after_s: float) -> list[str]:
    """Partitions with records waiting for ``stall_after_s`` while the agent was idle. ``since``
    (partition -> first seen behind) is updated: partitions no longer behind are forgotten."""
    behind = set(behind)
    for partition in set(since) - behind:
        del since[partition]
    for partition in behind:
        since.setdefault(partition, now)
    return sorted(p for p, first in since.items() if now - first >= stall_after_s)


def watch_progress(app: faust.App, topics: Iterable[str], progress: Progress, stall_after_s: float) -> None:
    """End the worker when records wait on partitions it owns while its agent sits idle for
    ``stall_after_s``: a consumer that silently stopped fetching (faust-streaming issues #175,
    #640, and the recovery race faustpatch guards) is restarted by its supervisor and reads on
    from the committed offsets. Busy (a batch in hand, retrying the key store), rebalancing or
    recovering tables is not idle."""
    watched = frozenset(topics)
    since: dict[str, float] = {}
    last = progress.marker()

    @app.timer(max(0.5, min(5.0, stall_after_s / 6)))  # also /healthz's heartbeat: not too rare
    async def watchdog() -> None:
        nonlocal last
        consumer = app.consumer
        owned = [tp for tp in consumer.assignment() if tp.topic in watched]
        progress.checked_at, progress.assigned = time.monotonic(), len(owned)
        marker = progress.marker()
        if progress.busy or marker != last or app.rebalancing or app.in_recovery:
            since.clear()
            last = marker
            return
        behind = [f"{tp.topic}/{tp.partition}" for tp in owned
                  if (consumer.highwater(tp) or 0) > (faustpatch.committed_offset(consumer, tp) or 0)]
        stalled = stalled_partitions(behind, since, time.monotonic(), stall_after_s)
        if stalled:
            progress.stalled = True
            _log.error("partitions_stalled", partitions=stalled, idle_s=stall_after_s)
            faustpatch.exit_now()


def partition_stand(consumer: Any, tp: Any, received: tuple[int, int, float] | None) -> Stand:
    """What a worker knows of an input partition it owns (core.routing.volgorde.Stand):
    ``received`` is (offset, Kafka timestamp ms, monotonic time) of the last record it handled
    there, None when nothing yet in this assignment."""
    einde, gepeild = faustpatch.fetch_position(consumer, tp)
    if received is not None:
        offset, ts_ms, when = received
        return Stand(offset + 1, einde, gepeild, ts_ms, when)
    # Nothing handled in this assignment: it resumes at the committed offset, and the wait for a
    # silent partition counts from when the record that waits for it arrived.
    committed = faustpatch.committed_offset(consumer, tp)
    if committed is None and einde == 0:  # never committed and empty: nothing to wait for
        committed = 0
    return Stand(committed, einde, gepeild, None, float("-inf"))


MAX_BACKOFF_S = 30.0
TRANSIENT: tuple[type[BaseException], ...] = (KafkaError, OSError, asyncio.TimeoutError)
_log = get_logger("herstelbus.faustkit")


async def retry_or_exit(what: str, step: Callable[[], Awaitable[Any]],
                        transient: tuple[type[BaseException], ...] = TRANSIENT) -> Any:
    """Run ``step`` until it succeeds, waiting with backoff while it fails transiently (the
    partition waits, nothing is skipped). Any other exception is a bug: the process exits at once,
    before faust can acknowledge (and commit) records whose outputs were not written; they come
    back after the restart, and ops see the exit."""
    delay = 0.5
    while True:
        try:
            return await step()
        except transient as exc:
            _log.warning("retrying", step=what, error=type(exc).__name__, retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)
        except Exception as exc:
            _log.error("worker_bug_exiting", step=what, error=type(exc).__name__)
            faustpatch.exit_now()
