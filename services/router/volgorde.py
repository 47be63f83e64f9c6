"""The router's waiting room: input records held until their turn (herstelbus.core.routing.volgorde).

faust acknowledges a take_events batch when the loop body ends; a record held here keeps one
reference of its own (``faustpatch.keep``), so faust cannot commit its offset, nor any later one
of its partition, until it is routed and that reference is released. A crash or a SIGTERM while
records wait loses nothing: they come back from the committed offset (on a stop faust no longer
waits for them: faustpatch). A revoked partition's records are dropped here (the new owner reads
them again) without being acknowledged.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from herstelbus import metrics
from herstelbus import faustpatch
from herstelbus.core.routing.besluit import FAN_OUT
from herstelbus.core.routing.volgorde import Stand, Wachtend, kies
from herstelbus.faustkit import partition_stand
from herstelbus.router.pipeline import TOPIC_TYPES


class Wachtrij:
    def __init__(self, app: Any, wacht_s: float, max_wachtend: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app, self.wacht_s, self.max_wachtend, self.clock = app, wacht_s, max_wachtend, clock
        self.rijen: dict[Any, deque[Wachtend]] = {}
        self.ontvangen: dict[Any, tuple[int, int, float]] = {}  # tp -> (offset, ts_ms, when)

    def __len__(self) -> int:
        return sum(len(rij) for rij in self.rijen.values())

    def voeg_toe(self, events: Iterable[Any]) -> None:
        now = self.clock()
        for event in events:
            msg = event.message
            faustpatch.keep(msg)  # ours: released in afgehandeld() or vergeet()
            ts_ms = int(msg.timestamp * 1000)
            self.rijen.setdefault(msg.tp, deque()).append(
                Wachtend(msg.tp, msg.offset, ts_ms, TOPIC_TYPES.get(msg.topic) in FAN_OUT, now, event))
            self.ontvangen[msg.tp] = (msg.offset, ts_ms, now)

    def klaar(self) -> tuple[list[Any], bool]:
        """The events to route now, in order; and whether the cap forced them out of order."""
        wachtend = len(self)
        te_veel = wachtend > self.max_wachtend
        wacht_s = 0.0 if te_veel else self.wacht_s
        gekozen = kies(self.rijen, self._standen(), self.clock(), wacht_s)
        for w in gekozen:
            self.rijen[w.partitie].popleft()
        metrics.ROUTER_WAITING.set(wachtend - len(gekozen))
        return [w.item for w in gekozen], te_veel

    @staticmethod
    def afgehandeld(events: Iterable[Any]) -> None:
        """Routed: release our reference, so faust may commit them."""
        for event in events:
            faustpatch.let_go(event.message)
            event.ack()

    def vergeet(self, tps: Iterable[Any]) -> int:
        """Partitions revoked: their waiting records go to the new owner from the committed offset."""
        dropped = 0
        for tp in tps:
            for w in self.rijen.pop(tp, ()):
                faustpatch.let_go(w.item.message)
                dropped += 1
            self.ontvangen.pop(tp, None)
        metrics.ROUTER_WAITING.set(len(self))
        return dropped

    def _standen(self) -> dict[Any, Stand]:
        consumer = self.app.consumer
        owned = {tp for tp in consumer.assignment() if tp.topic in TOPIC_TYPES} | set(self.rijen)
        return {tp: partition_stand(consumer, tp, self.ontvangen.get(tp)) for tp in owned}
