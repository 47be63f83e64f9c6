"""Two guards around faust-streaming 0.15.3's offset handling, found by ``test_router_backlog``.

**Stream partitions resumed before the seek.** When table recovery completes, faust 0.15.3 resumes
the stream partitions, *then* seeks them to the committed offsets (a broker round trip), *then*
resumes flow control, which empties the agents' queues. Records fetched in that window are put in a
queue and thrown away, and the fetch loop, still walking the batch it had, sees the next record as a
"gap" after the seek's offset and marks the records in between as done: they are committed without
ever reaching the agent. On a restart onto a backlog this lost a few hundred records per run (about
one run in two). :func:`install` keeps the stream partitions out of the fetch until recovery has
finished (seek and queue clearing done), then resumes them.

The same holds from the assignment until recovery pauses the partitions: faust first makes every
assigned partition active, and a fetch in those few awaits ends in the same cleared queue. So the
stream partitions are paused from the assignment on and resumed only after recovery completed.

**Gaps are committed.** faust treats a jump in offsets as a gap to commit over (for transaction
markers and compaction). herstelbus' ingest topics are neither transactional nor compacted, so a jump
there means records were skipped. :func:`install` makes a gap on such a topic a loud event
(``offsets_skipped``) and, unless the skipped records are already gone from the log (retention),
ends the process before the gap can be committed, so the restarted worker reads them again.

Pinned to the faust version these were checked against: another version fails at start-up until
someone has looked again.
"""

from __future__ import annotations

import functools
import os
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import faust
from aiokafka.errors import IllegalStateError
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer

from herstelbus.errors import EXIT_RESTART
from herstelbus.logs import get_logger

CHECKED_VERSION = "0.15.3"
_log = get_logger("herstelbus.faustpatch")
_HELD = "_herstelbus_held_partitions"
_exit = os._exit  # no cleanup: faust must not get to commit anything more


def exit_now() -> None:
    """End the worker at once with EXIT_RESTART: nothing more is acknowledged or committed, so the
    restarted worker reads every record that was not fully handled again."""
    _exit(EXIT_RESTART)


def install(strict_topics: Iterable[str]) -> None:
    """Install both guards (idempotent). ``strict_topics`` are topics whose offsets never jump."""
    if faust.__version__ != CHECKED_VERSION:
        raise RuntimeError(f"herstelbus.faustpatch was checked against faust-streaming {CHECKED_VERSION}, "
                           f"not {faust.__version__}: review it before upgrading")
    _STRICT.update(strict_topics)
    if getattr(Consumer, "_herstelbus_patched", False):
        return
    Consumer._herstelbus_patched = True
    Consumer.on_partitions_assigned = _streams_paused_on_assignment(Consumer.on_partitions_assigned)
    Consumer.resume_partitions = _holding(Consumer.resume_partitions)
    Recovery.on_recovery_completed = _resume_streams_last(Recovery.on_recovery_completed)
    Recovery._resume_streams = _resume_streams_last(Recovery._resume_streams)
    Consumer._add_gap = _refuse_gaps(Consumer._add_gap)
    faust.App._stop_consumer = _stopping_lets_go(faust.App._stop_consumer)
    Recovery._seek_offsets = _guarded_recovery_seek(Recovery._seek_offsets)
    Consumer.wait_empty = _not_waiting_for_kept(Consumer.wait_empty)
    Consumer._clean_unacked_messages = _not_waiting_for_kept(Consumer._clean_unacked_messages)


_STRICT: set[str] = set()
# Messages herstelbus keeps a reference to beyond faust's own processing (the router's Wachtrij):
# unacknowledged, so never committed. faust's stop waits for every unacknowledged message, and
# timers (which would route them) stop first: without this a router stopped while records wait
# for UHT's order never ended. When stopping, faust no longer waits for these; they are read
# again after the restart.
_KEPT: weakref.WeakSet = weakref.WeakSet()


def keep(message: Any) -> None:
    """Hold ``message`` beyond its stream's acknowledgement (release it with :func:`let_go`)."""
    message.incref()
    _KEPT.add(message)


def let_go(message: Any) -> None:
    """No longer held here; the caller acknowledges it (routed) or drops it (revoked)."""
    _KEPT.discard(message)


def _guarded_recovery_seek(seek_offsets: Callable) -> Callable:
    """Table recovery's seek, made safe against a rebalance that overtakes it (faust 0.15.3).

    faust builds the changelog offsets, awaits, then seeks; a rebalance in between adds partitions
    with offset None (``Recovery.add_active``) and aiokafka refuses None or a negative offset with
    ValueError: the worker crashed with exit 1, which no supervisor restarts (reliability scenario 6,
    three fresh-clone runs). Any offset not yet known means "nothing read": that changelog partition
    is read from the start, which restores the table fully. A seek refused while a newer rebalance is
    already signalled is moot: faust's recovery loop starts over right after the seek."""
    @functools.wraps(seek_offsets)
    async def seek(self: Recovery, consumer: Any, tps: Any, offsets: Any, title: str) -> None:
        for tp in tps:
            if not isinstance(offsets[tp], int) or offsets[tp] < 0:
                offsets[tp] = 0
        try:
            await seek_offsets(self, consumer, tps, offsets, title)
        except (ValueError, IllegalStateError) as exc:
            if not self.signal_recovery_start.is_set():
                raise
            _log.warning("recovery_seek_overtaken", reason=type(exc).__name__, partitions=len(tps))
    return seek


def _stopping_lets_go(stop_consumer: Callable) -> Callable:
    @functools.wraps(stop_consumer)
    async def stop(self: faust.App) -> None:
        self._herstelbus_stopping = True
        await stop_consumer(self)
    return stop


def _not_waiting_for_kept(method: Callable) -> Callable:
    @functools.wraps(method)
    def forget_kept(self: Consumer, *args: Any) -> Any:
        if getattr(self.app, "_herstelbus_stopping", False) and _KEPT:
            self._unacked_messages -= set(_KEPT)
        return method(self, *args)
    return forget_kept


def committed_offset(consumer: Consumer, tp: Any) -> int | None:
    """The offset faust last committed for ``tp`` (None before its first commit)."""
    return consumer._committed_offset.get(tp)


def fetch_position(consumer: Consumer, tp: Any) -> tuple[int | None, int | None]:
    """(end offset, wall-clock ms of the fetch answer that told it) for ``tp``, as the underlying
    aiokafka consumer last saw it; (None, None) before its first fetch or when not assigned.
    aiokafka updates both on every fetch answer, records or not."""
    try:
        aio = consumer._thread._ensure_consumer()
        return aio.highwater(tp), aio.last_poll_timestamp(tp) or None
    except Exception:  # not assigned (aiokafka asserts), not started, or stopping
        return None, None


def _streams(consumer: Consumer, tps: Iterable[Any]) -> set:
    changelogs = consumer.app.tables.changelog_topics
    return {tp for tp in tps if tp.topic not in changelogs}


def _streams_paused_on_assignment(on_assigned: Callable) -> Callable:
    @functools.wraps(on_assigned)
    async def assigned(self: Consumer, tps: set, generation_id: int = 0) -> None:
        self._paused_partitions.update(_streams(self, tps))  # faust activates assigned minus paused
        return await on_assigned(self, tps, generation_id)
    return assigned


def _holding(resume_partitions: Callable) -> Callable:
    @functools.wraps(resume_partitions)
    def resume(self: Consumer, tps: Iterable[Any]) -> None:
        held = getattr(self, _HELD, None)
        if held is None:
            return resume_partitions(self, tps)
        tps = set(tps)
        streams = _streams(self, tps)
        held.update(streams)
        return resume_partitions(self, tps - streams)
    return resume


def _resume_streams_last(complete: Callable) -> Callable:
    """Run faust's completion with stream partitions held back, then resume them."""
    @functools.wraps(complete)
    async def completed(self: Recovery, generation_id: int = 0) -> None:
        consumer = self.app.consumer
        held: set = set()
        setattr(consumer, _HELD, held)
        try:
            await complete(self, generation_id)
        finally:
            setattr(consumer, _HELD, None)
        # Only when faust finished (seeked, queues cleared) for this generation; a newer
        # rebalance has its own completion that resumes its own partitions.
        if held and self.completed.is_set() and self.app.consumer_generation_id == generation_id:
            assigned = consumer.assignment()
            consumer.resume_partitions({tp for tp in held if tp in assigned})
    return completed


def _refuse_gaps(add_gap: Callable) -> Callable:
    @functools.wraps(add_gap)
    async def gap(self: Consumer, tp: Any, offset_from: int, offset_to: int) -> None:
        if tp.topic not in _STRICT:
            return await add_gap(self, tp, offset_from, offset_to)
        try:
            earliest = (await self.earliest_offsets(tp)).get(tp)
        except Exception:  # noqa: BLE001 - cannot tell: fail closed (exit, read them again)
            earliest = None
        gone = earliest is not None and offset_to <= earliest  # offset_to is the record that came
        _log.error("offsets_skipped", topic=tp.topic, partition=tp.partition, first=offset_from,
                   last=offset_to - 1, reason="retention" if gone else "skipped_by_consumer")
        if gone:  # deleted by retention before anyone read them: nothing to read again
            return await add_gap(self, tp, offset_from, offset_to)
        exit_now()  # before the gap is committed: the restart reads them again
    return gap
