"""The consume loop behind ``herstelbus gemeente consume``: per batch, the sink first (durable),
then the acks (the broker has them), then the offset commit.

Acks before the commit: after a crash in between, the batch comes again, the sink recognises every
event and the same acks (same ``ack_id``) are sent again, so none is lost and none is new. Logs hold
event ids, pseudonyms, codes and positions only.

Forget notices (``Vergeten``, AVG art. 19): at start and then at most every ``--vergeet-interval``
seconds between batches, the gemeente's pending notices are fetched from the key store, applied
to the sink (``Sink.vergeet``) and confirmed, only once the sink applied them. A crash between
applying and confirming repeats both next time, which is harmless (the subject is gone: 0 removed).
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from herstelbus.logs import get_logger

from .bevestiging import Bevestiger, geweigerd, kan_bevestigen, ontvangen
from .sdk import Batch, GemeenteConsumer
from .sinks import Sink, SinkFout
from .sleutelkluis import MAX_REFS, SleutelkluisFout, Vergeetverzoek

log = get_logger("herstelbus.gemeente")
DEFAULT_VERGEET_INTERVAL_S = 60.0


@dataclass
class Samenvatting:
    gemeentecode: str
    geopend: int = 0  # opened and written now
    dubbel: int = 0  # opened, the sink had it already (redelivery)
    geweigerd: Counter[str] = field(default_factory=Counter)  # per Weigercode
    bevestigd: int = 0
    gaten: int = 0
    vergeten_actief: bool = False  # forget notices were handled in this run
    vergeten: int = 0  # forget notices applied and confirmed
    vergeten_verwijderd: int = 0  # lines/rows removed (or notices sent) for them
    vergeet_fout: bool = False  # the last round failed: notices still pending (nothing unapplied confirmed)

    def regel(self) -> str:
        refused = sum(self.geweigerd.values())
        by_code = ", ".join(f"{code}: {n}" for code, n in sorted(self.geweigerd.items()))
        vergeten = ""
        if self.vergeten_actief:
            vergeten = (f", forget notices {self.vergeten} ({self.vergeten_verwijderd} removed"
                        + ("; some NOT applied, see the log" if self.vergeet_fout else "") + ")")
        return (f"{self.gemeentecode}: opened {self.geopend + self.dubbel} ({self.geopend} written, "
                f"{self.dubbel} already in sink), refused {refused}" + (f" ({by_code})" if by_code else "")
                + f", acked {self.bevestigd}, sequence gaps {self.gaten}" + vergeten)


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
    def busy(self) -> Iterator[None]:
        """Work a stop must wait for (a batch, a round of forget notices)."""
        self.in_batch = True
        try:
            yield
        finally:
            self.in_batch = False

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


class Vergeetbron(Protocol):
    """Where forget notices come from and are confirmed: the key store (``Sleutelkluis``)."""

    def vergeetverzoeken(self) -> Sequence[Vergeetverzoek]: ...
    def bevestig_vergeten(self, subjects: Sequence[str]) -> int: ...


class Vergeten:
    """Forget notices, pulled from the key store and applied to the sink; then confirmed, only
    those the sink applied. Fail closed: when fetching, applying or confirming fails nothing more
    is confirmed, it is logged (counts, pseudonyms, the sink's or key store's one-line cause) and
    the notices come again next round."""

    PAGE = MAX_REFS  # the key store hands out at most this many per request

    def __init__(self, bron: Vergeetbron, sink: Sink, samenvatting: Samenvatting, interval_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bron, self.sink, self.samenvatting = bron, sink, samenvatting
        self.interval_s, self._clock = interval_s, clock
        self.laatste: float | None = None

    def tijd(self) -> bool:
        return self.laatste is None or self._clock() - self.laatste >= self.interval_s

    def ronde(self) -> bool:
        """Fetch, apply, confirm, page by page until none is pending. False when something failed."""
        self.laatste = self._clock()
        gemeentecode = self.samenvatting.gemeentecode
        while True:
            try:
                verzoeken = list(self.bron.vergeetverzoeken())
            except SleutelkluisFout as exc:
                return self._fout("vergeetverzoeken_niet_opgehaald", 0, [], str(exc))
            if not verzoeken:
                self.samenvatting.vergeet_fout = False
                return True
            subjects = list(dict.fromkeys(v.subject for v in verzoeken))
            audit_ids = {v.subject: v.audit_id for v in verzoeken}
            try:
                verwijderd = self.sink.vergeet(subjects, audit_ids=audit_ids)
            except SinkFout as exc:
                return self._fout("vergeetverzoeken_niet_toegepast", len(subjects), subjects, str(exc))
            try:
                bevestigd = self.bron.bevestig_vergeten(subjects)
            except SleutelkluisFout as exc:
                # applied but not confirmed: applied again next round (idempotent: 0 removed), then confirmed
                return self._fout("vergeetverzoeken_niet_bevestigd", len(subjects), subjects, str(exc))
            self.samenvatting.vergeten += len(subjects)
            self.samenvatting.vergeten_verwijderd += verwijderd
            log.info("vergeetverzoeken_toegepast", gemeentecode=gemeentecode, verzoeken=len(subjects),
                     verwijderd=verwijderd, bevestigd=bevestigd, subjects=subjects)
            if len(verzoeken) < self.PAGE or bevestigd == 0:  # all seen, or none moved: no endless paging
                self.samenvatting.vergeet_fout = False
                return True

    def _fout(self, what: str, n: int, subjects: list[str], reden: str) -> bool:
        self.samenvatting.vergeet_fout = True
        log.error(what, gemeentecode=self.samenvatting.gemeentecode, verzoeken=n, subjects=subjects, reden=reden)
        return False


def consume(consumer: GemeenteConsumer, sink: Sink, bevestiger: Bevestiger | None = None, *,
            once: bool = False, vergeetbron: Vergeetbron | None = None,
            vergeet_interval_s: float = DEFAULT_VERGEET_INTERVAL_S) -> Samenvatting:
    """Run until caught up (``once``) or stopped (SIGTERM/SIGINT); returns the summary.

    With ``vergeetbron`` (the key store) forget notices are applied to the sink at start, then at
    most every ``vergeet_interval_s`` between batches (also while the topic is quiet), and with
    ``once`` once more before returning."""
    samenvatting = Samenvatting(consumer.gemeentecode)
    if vergeetbron is not None and not callable(getattr(sink, "vergeet", None)):
        raise SinkFout(f"sink {type(sink).__name__} cannot apply forget notices (no vergeet)")
    vergeten = Vergeten(vergeetbron, sink, samenvatting, vergeet_interval_s) if vergeetbron is not None else None
    samenvatting.vergeten_actief = vergeten is not None
    with _Stop().installed() as stop:
        try:
            if vergeten is not None:
                with stop.busy():  # a stop waits for the round (apply, confirm), as for a batch
                    vergeten.ronde()
                if stop.requested:
                    return samenvatting
            # with forget notices, quiet polls come back empty too: the notices' timer runs on
            for batch in consumer.batches(until_caught_up=once, ook_leeg=vergeten is not None):
                with stop.busy():
                    if batch.resultaten or vergeten is None:
                        verwerk(batch, consumer, sink, bevestiger, samenvatting)
                    if vergeten is not None and vergeten.tijd():
                        vergeten.ronde()
                if stop.requested:
                    break
            else:
                if vergeten is not None and once:
                    with stop.busy():
                        vergeten.ronde()
        except KeyboardInterrupt:
            pass  # what was committed is safe; the rest comes again
    return samenvatting


__all__ = ["DEFAULT_VERGEET_INTERVAL_S", "Samenvatting", "Vergeetbron", "Vergeten", "consume", "verwerk"]
