"""The stall watchdog's decision (herstelbus.faustkit): which partitions waited too long while the
agent was idle. The timer around it only reads faust's consumer and exits."""

from __future__ import annotations

from herstelbus.faustkit import Progress, stalled_partitions


def test_a_partition_behind_for_the_whole_window_is_stalled() -> None:
    since: dict[str, float] = {}
    assert stalled_partitions(["uht.pauzeknop.v1/1"], since, now=100.0, stall_after_s=60) == []
    assert stalled_partitions(["uht.pauzeknop.v1/1"], since, now=159.0, stall_after_s=60) == []
    assert stalled_partitions(["uht.pauzeknop.v1/1", "uht.erkenning.v1/0"], since, now=160.0,
                              stall_after_s=60) == ["uht.pauzeknop.v1/1"]


def test_a_partition_that_caught_up_starts_again() -> None:
    since: dict[str, float] = {}
    stalled_partitions(["uht.pauzeknop.v1/1"], since, now=100.0, stall_after_s=60)
    stalled_partitions([], since, now=130.0, stall_after_s=60)
    assert stalled_partitions(["uht.pauzeknop.v1/1"], since, now=170.0, stall_after_s=60) == []
    assert since == {"uht.pauzeknop.v1/1": 170.0}


def test_progress_counts_finished_batches_and_knows_one_in_hand() -> None:
    progress = Progress()
    with progress.batch():
        assert progress.marker() == (1, 0)
    try:
        with progress.batch():
            raise RuntimeError
    except RuntimeError:
        pass
    assert progress.marker() == (0, 2)
