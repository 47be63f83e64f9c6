"""The consume loop behind ``herstelbus gemeente consume``: per batch, the sink first (durable),
then the acks (the broker has them), then the offset commit.

Acks before the commit: after a crash in between, the batch comes again, the sink recognises every
event and the same acks (same ``ack_id``) are sent again, so none is lost and none is new. Logs hold
event ids, pseudonyms, codes and positions only.
"""

from __future__ import annotations

import signal
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from herstelbus.logs import get_logger

from .bevestiging import Bevestiger, geweigerd, kan_bevestigen, ontvangen
from .sdk import Batch, GemeenteConsumer
from .sinks import Sink

log = get_logger("herstelbus.gemeente")


@dataclass
class Samenvatting:
    gemeentecode: str
    geopend: int = 0  # opened and written now
    dubbel: int = 0  # opened, the sink had it already (redelivery)
    geweigerd: Counter[str] = field(default_factory=Counter)  # per Weigercode
    bevestigd: int = 0
    gaten: int = 0

    def regel(self) -> str:
        refused = sum(self.geweigerd.values())
        by_code = ", ".join(f"{code}: {n}" for code, n in sorted(self.geweigerd.items()))
        return (f"{self.gemeentecode}: opened {self.geopend + self.dubbel} ({self.geopend} written, "
                f"{self.dubbel} already in sink), refused {refused}" + (f" ({by_code})" if by_code else "")
                + f", acked {self.bevestigd}, sequence gaps {self.gaten}")


def verwerk(batch: Batch, consumer: GemeenteConsumer, sink: Sink, bevestiger: Bevestiger | None,
            samenvatting: Samenvatting) -> None:
    """One batch, in the only safe order: sink, acks, commit."""
    verslag = sink.schrijf(batch.geopend)
    samenvatting.geopend += len(verslag.nieuw)
    samenvatting.dubbel += len(verslag.dubbel)
    for gat in verslag.gaten:
        samenvatting.gaten += 1
        log.warning("volgnummer_gat", event_id=gat.event_id, subject=gat.subject, verwacht=gat.verwacht,
                    gekregen=gat.gekregen, soort=gat.soort)
    acks = []
    for r in batch.geweigerd:
        samenvatting.geweigerd[r.code.value] += 1
        log.warning("event_geweigerd", event_id=r.event_id, subject=r.subject, code=r.code.value, reden=r.reden,
                    topic=r.positie.topic, partition=r.positie.partition, offset=r.positie.offset)
        if bevestiger is not None and kan_bevestigen(r.event_id):
            acks.append((geweigerd(consumer.gemeentecode, r), r.subject))
    if bevestiger is not None:
        acks += [(ontvangen(consumer.gemeentecode, e.event_id), e.subject) for e in batch.geopend]
        samenvatting.bevestigd += bevestiger.stuur(acks)
    consumer.commit(batch)
    log.info("batch_verwerkt", records=len(batch.resultaten), geschreven=len(verslag.nieuw),
             dubbel=len(verslag.dubbel), geweigerd=len(batch.geweigerd))


class _Stop:
    """SIGTERM/SIGINT: between batches (polling, waiting for the key store) stop at once; during a
    batch finish it first (sink, acks, commit), so a stopped consumer leaves no batch half done
    whose acks would wait for the next run."""

    def __init__(self) -> None:
        self.in_batch = False
        self.requested = False

    def __call__(self, _signum: int, _frame: object) -> None:
        if not self.in_batch:
            raise KeyboardInterrupt
        self.requested = True

    @contextmanager
    def installed(self) -> Iterator[_Stop]:
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield self
            return
        previous = {sig: signal.signal(sig, self) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def consume(consumer: GemeenteConsumer, sink: Sink, bevestiger: Bevestiger | None = None, *,
            once: bool = False) -> Samenvatting:
    """Run until caught up (``once``) or stopped (SIGTERM/SIGINT); returns the summary."""
    samenvatting = Samenvatting(consumer.gemeentecode)
    with _Stop().installed() as stop:
        try:
            for batch in consumer.batches(until_caught_up=once):
                stop.in_batch = True
                verwerk(batch, consumer, sink, bevestiger, samenvatting)
                stop.in_batch = False
                if stop.requested:
                    break
        except KeyboardInterrupt:
            pass  # what was committed is safe; the rest comes again
    return samenvatting


__all__ = ["Samenvatting", "consume", "verwerk"]
