"""The one place that decides how every herstelbus faust app is configured and run.

At-least-once everywhere (faust-streaming 0.15's exactly_once has open duplicate bugs): every hop
is idempotent by event id instead. Topics are never auto-declared by faust; herstelbus creates
them explicitly, so a misspelt topic fails instead of appearing silently.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.streams import _current_event

from herstelbus.logs import configure_logging, get_logger
from herstelbus.settings import Settings


def make_app(app_id: str, settings: Settings, **overrides: Any) -> faust.App:
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
        "consumer_auto_offset_reset": "earliest",
    }
    options.update(overrides)
    return faust.App(app_id, **options)


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


MAX_BACKOFF_S = 30.0
EXIT_BUG = 70  # EX_SOFTWARE: a supervisor restarts the worker; its uncommitted records come back
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
            os._exit(EXIT_BUG)
