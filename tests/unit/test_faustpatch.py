"""The guards around faust's offset handling (herstelbus.faustpatch), on stand-ins for the two
faust objects they wrap. The end-to-end proof is tests/integration/test_router_backlog.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from faust.types import TP

from herstelbus import faustpatch
from herstelbus.errors import EXIT_RESTART

STREAM = [TP("uht.pauzeknop.v1", p) for p in range(2)]
CHANGELOG = TP("router-gezien-changelog", 0)


class Consumer:
    def __init__(self) -> None:
        self.active: set = set()
        self._paused_partitions: set = set()
        self.app = SimpleNamespace(tables=SimpleNamespace(changelog_topics={CHANGELOG.topic}),
                                   consumer_generation_id=3)
        self.app.consumer = self

    def assignment(self) -> set:
        return {*STREAM, CHANGELOG}

    def _resume(self, tps) -> None:  # noqa: ANN001
        self.active.update(tps)
        self._paused_partitions.difference_update(tps)

    async def _assigned(self, tps: set, generation_id: int = 0) -> None:
        """faust 0.15.3: every assigned partition not paused is active at once."""
        self._paused_partitions.intersection_update(tps)
        self.active = set(tps) - self._paused_partitions
        await asyncio.sleep(0)  # awaits before recovery pauses them: a fetch could deliver now
        self.active_before_recovery = set(self.active)

    resume_partitions = faustpatch._holding(_resume)
    on_partitions_assigned = faustpatch._streams_paused_on_assignment(_assigned)

    async def earliest_offsets(self, tp):  # noqa: ANN001
        return {tp: self.earliest}


class Recovery:
    """faust 0.15.3's order: resume stream partitions, seek (a round trip), clear queues."""

    def __init__(self, consumer: Consumer, rebalance_meanwhile: bool = False) -> None:
        self.app, self.completed = consumer.app, asyncio.Event()
        self.rebalance_meanwhile = rebalance_meanwhile
        self.active_when_queues_cleared: set | None = None

    async def _complete(self, generation_id: int = 0) -> None:
        consumer = self.app.consumer
        consumer.resume_partitions({*STREAM, CHANGELOG})
        await asyncio.sleep(0)  # the seek: a fetch loop could deliver records now
        if self.rebalance_meanwhile:
            self.app.consumer_generation_id += 1
            return
        self.active_when_queues_cleared = set(consumer.active)
        self.completed.set()

    completed_patched = faustpatch._resume_streams_last(_complete)


def test_stream_partitions_resume_only_after_recovery_cleared_the_queues() -> None:
    consumer = Consumer()
    recovery = Recovery(consumer)
    asyncio.run(recovery.completed_patched(3))
    assert recovery.active_when_queues_cleared == {CHANGELOG}  # nothing fetched into the queues
    assert consumer.active == {*STREAM, CHANGELOG}


def test_an_assignment_activates_no_stream_partition_before_recovery() -> None:
    consumer = Consumer()
    asyncio.run(consumer.on_partitions_assigned({*STREAM, CHANGELOG}, 3))
    assert consumer.active_before_recovery == {CHANGELOG}
    asyncio.run(Recovery(consumer).completed_patched(3))
    assert consumer.active == {*STREAM, CHANGELOG}


def test_a_newer_rebalance_resumes_its_own_partitions() -> None:
    consumer = Consumer()
    asyncio.run(Recovery(consumer, rebalance_meanwhile=True).completed_patched(3))
    assert consumer.active == {CHANGELOG}


def test_outside_recovery_completion_partitions_resume_as_asked() -> None:
    consumer = Consumer()
    consumer.resume_partitions(set(STREAM))
    assert consumer.active == set(STREAM)


@pytest.fixture
def gaps(monkeypatch: pytest.MonkeyPatch) -> list:
    committed: list = []

    async def add_gap(self, tp, offset_from, offset_to):  # noqa: ANN001
        committed.append((tp.topic, offset_from, offset_to))

    def refuse(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(faustpatch, "_exit", refuse)
    monkeypatch.setattr(faustpatch, "_STRICT", {"uht.pauzeknop.v1"})
    return [faustpatch._refuse_gaps(add_gap), committed]


def test_a_gap_in_a_strict_topic_ends_the_worker_before_it_is_committed(gaps: list) -> None:
    gap, committed = gaps
    consumer = Consumer()
    consumer.earliest = 0
    with pytest.raises(SystemExit) as stopped:
        asyncio.run(gap(consumer, STREAM[0], 3, 226))
    assert stopped.value.code == EXIT_RESTART and committed == []


def test_a_gap_whose_log_start_cannot_be_read_ends_the_worker(gaps: list) -> None:
    gap, committed = gaps
    consumer = Consumer()

    async def unreachable(tp):  # noqa: ANN001
        raise OSError("broker unreachable")

    consumer.earliest_offsets = unreachable
    with pytest.raises(SystemExit):
        asyncio.run(gap(consumer, STREAM[0], 3, 226))
    assert committed == []


def test_records_removed_by_retention_are_a_gap_to_pass(gaps: list) -> None:
    gap, committed = gaps
    consumer = Consumer()
    consumer.earliest = 226  # 3..225 were deleted before anyone read them
    asyncio.run(gap(consumer, STREAM[0], 3, 226))
    assert committed == [("uht.pauzeknop.v1", 3, 226)]


def test_other_topics_keep_faust_gap_handling(gaps: list) -> None:
    gap, committed = gaps
    asyncio.run(gap(Consumer(), TP("transactional.topic", 0), 5, 9))
    assert committed == [("transactional.topic", 5, 9)]


def test_another_faust_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faustpatch.faust, "__version__", "0.16.0")
    with pytest.raises(RuntimeError, match="review it before upgrading"):
        faustpatch.install([])


def test_an_unknown_or_negative_changelog_offset_is_read_from_the_start_not_a_crash() -> None:
    from collections import Counter

    seeks: list = []

    async def original(self, consumer, tps, offsets, title) -> None:
        seeks.append({tp: offsets[tp] for tp in tps})

    seek = faustpatch._guarded_recovery_seek(original)
    a, b, c, d = (TP("t-changelog", p) for p in range(4))
    offsets = Counter({a: -2, b: 5, c: -1})
    offsets[d] = None  # a partition a rebalance added after the offsets were built
    asyncio.run(seek(None, None, {a, b, c, d}, offsets, "active"))
    assert seeks == [{a: 0, b: 5, c: 0, d: 0}]


class _Recovery:
    def __init__(self, rebalancing: bool) -> None:
        self.signal_recovery_start = asyncio.Event()
        if rebalancing:
            self.signal_recovery_start.set()


@pytest.mark.parametrize("error", [ValueError("Offset must be a positive integer"),
                                   faustpatch.IllegalStateError("No current assignment")])
def test_a_seek_overtaken_by_a_newer_rebalance_is_left_to_the_restarted_recovery(error) -> None:
    async def refused(self, consumer, tps, offsets, title) -> None:
        raise error

    seek = faustpatch._guarded_recovery_seek(refused)
    tp = TP("t-changelog", 0)
    asyncio.run(seek(_Recovery(rebalancing=True), None, {tp}, {tp: 3}, "active"))  # no crash
    with pytest.raises(type(error)):  # without a newer rebalance it is faust's own error
        asyncio.run(seek(_Recovery(rebalancing=False), None, {tp}, {tp: 3}, "active"))
