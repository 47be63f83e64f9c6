"""SIGTERM during a batch: the batch is finished (sink, acks, commit), then the consumer stops; a
SIGTERM between batches stops it at once. Real signals to this process; the consumer is a stand-in
for the Kafka one (this is the loop's order, not Kafka's)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

from herstelbus.connectors.gemeente.sdk import Batch
from herstelbus.connectors.gemeente.sinks import Schrijfverslag
from herstelbus.connectors.gemeente.verwerking import consume


class _Consumer:
    gemeentecode = "GM0363"

    def __init__(self, batches: int, signal_in_poll: int | None = None) -> None:
        self.batches_left, self.signal_in_poll, self.committed, self.polled = batches, signal_in_poll, [], 0

    def batches(self, *, until_caught_up: bool = False, ook_leeg: bool = False) -> Iterator[Batch]:
        while self.batches_left:
            self.polled += 1
            if self.polled == self.signal_in_poll:
                os.kill(os.getpid(), signal.SIGTERM)  # handled before the next bytecode: the "poll" ends
            self.batches_left -= 1
            yield Batch([], {"tp": self.polled})

    def commit(self, batch: Batch) -> None:
        self.committed.append(batch.offsets["tp"])


class _Sink:
    def __init__(self, signal_in_write: int | None = None) -> None:
        self.writes, self.signal_in_write = 0, signal_in_write

    def schrijf(self, events: list) -> Schrijfverslag:
        self.writes += 1
        if self.writes == self.signal_in_write:
            os.kill(os.getpid(), signal.SIGTERM)
        return Schrijfverslag()

    def close(self) -> None:
        pass


class _Bevestiger:
    def __init__(self) -> None:
        self.sent = 0

    def stuur(self, acks: list) -> int:
        self.sent += 1
        return len(acks)


def test_a_stop_during_a_batch_finishes_it_acks_and_commit_included_then_stops() -> None:
    consumer, sink, acks = _Consumer(batches=5), _Sink(signal_in_write=2), _Bevestiger()
    consume(consumer, sink, acks)
    assert consumer.committed == [1, 2] and acks.sent == 2 and sink.writes == 2


def test_a_stop_between_batches_stops_before_the_next_one() -> None:
    consumer, sink = _Consumer(batches=5, signal_in_poll=3), _Sink()
    consume(consumer, sink, _Bevestiger())
    assert consumer.committed == [1, 2] and sink.writes == 2


def test_the_previous_handlers_are_back_afterwards() -> None:
    before = signal.getsignal(signal.SIGTERM)
    consume(_Consumer(batches=1), _Sink(), None)
    assert signal.getsignal(signal.SIGTERM) is before
