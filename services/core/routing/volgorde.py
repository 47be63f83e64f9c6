"""The order in which the router takes its input records (rule 3 across topics).

UHT publishes to three topics, and a consumer may get them in any order: after a restart onto a
backlog, a pauzeknop can come in before the overdracht that UHT published before it, and would
then miss the gemeente that overdracht makes eerder betrokken. That pause would not reach a
creditor. So the router merges its input partitions by Kafka timestamp, as Kafka Streams does for
co-partitioned inputs (max.task.idle.ms): a pauzeknop or erkenning (whose routing reads the
memory) waits until every other input partition is known to hold nothing older that is not routed
yet. An overdracht never waits: it reads no memory.

Known to hold nothing older, for another partition, means one of:
- its next record waiting here is not older (the merge takes the oldest head first);
- the last record received from it is not older;
- it is caught up: everything up to its end offset was received, and the broker said so in a
  fetch answered after the waiting record was published (an older end offset may predate it);
- it has been silent for ``wacht_s`` since the waiting record arrived: a partition that does not
  deliver must not hold pauses back for ever (its records, if any, then follow out of order).

Records of one partition always keep their order: a waiting head holds its partition back.
Pure: the adapter (services/router/volgorde.py) supplies the records and what the consumer knows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Wachtend:
    """A record received and not routed yet."""

    partitie: Hashable  # its input partition (topic, partition)
    offset: int
    ts_ms: int  # Kafka timestamp (UHT's publish time)
    leest_geheugen: bool  # pauzeknop or erkenning: its targets depend on what was routed before
    ontvangen_s: float  # monotonic clock, when it arrived here
    item: Any = None  # the adapter's own handle (the faust event)


@dataclass(frozen=True, slots=True)
class Stand:
    """What the router knows of one input partition it owns."""

    volgende: int | None  # the next offset it expects (last received + 1, else the committed offset)
    einde: int | None  # the broker's end offset (high watermark) as last fetched
    gepeild_ms: int | None  # wall clock of that fetch answer
    laatste_ts_ms: int | None  # Kafka timestamp of the last record received
    laatst_ontvangen_s: float  # monotonic clock of the last record received (or of the assignment)


def kies(wachtrijen: Mapping[Hashable, Sequence[Wachtend]], standen: Mapping[Hashable, Stand],
         nu_s: float, wacht_s: float) -> list[Wachtend]:
    """The records that may be routed now, in the order to route them. ``wachtrijen``: per input
    partition its waiting records in offset order. ``wacht_s`` 0 takes everything at once, in
    timestamp order (ordering off)."""
    rijen = {p: deque(rij) for p, rij in wachtrijen.items() if rij}
    geblokkeerd: set[Hashable] = set()
    gekozen: list[Wachtend] = []
    while True:
        koppen = [rij[0] for p, rij in rijen.items() if p not in geblokkeerd and rij]
        if not koppen:
            return gekozen
        # Oldest first; at the same millisecond an overdracht before what reads the memory.
        kop = min(koppen, key=lambda w: (w.ts_ms, w.leest_geheugen, str(w.partitie), w.offset))
        if not kop.leest_geheugen or wacht_s <= 0 or _niets_ouder_elders(kop, rijen, standen, nu_s, wacht_s):
            gekozen.append(rijen[kop.partitie].popleft())
        else:
            geblokkeerd.add(kop.partitie)


def _niets_ouder_elders(kop: Wachtend, rijen: Mapping[Hashable, deque], standen: Mapping[Hashable, Stand],
                        nu_s: float, wacht_s: float) -> bool:
    for p in set(standen) | set(rijen):
        if p == kop.partitie:
            continue
        rij = rijen.get(p)
        if rij:  # a waiting head older than kop is itself waiting: kop waits behind it
            if rij[0].ts_ms < kop.ts_ms:
                return False
            continue
        stand = standen.get(p)
        if stand is None or not voorbij(stand, kop.ts_ms, kop.ontvangen_s, nu_s, wacht_s):
            return False
    return True


def voorbij(stand: Stand, ts_ms: int, sinds_s: float, nu_s: float, wacht_s: float) -> bool:
    """Whether a partition is known to hold nothing unreceived that was published before ``ts_ms``
    (see the module docstring); ``sinds_s``: when the record that waits for it arrived."""
    if stand.laatste_ts_ms is not None and stand.laatste_ts_ms >= ts_ms:
        return True
    ingehaald = (stand.volgende is not None and stand.einde is not None and stand.volgende >= stand.einde
                 and stand.gepeild_ms is not None and stand.gepeild_ms >= ts_ms)
    return ingehaald or nu_s - max(stand.laatst_ontvangen_s, sinds_s) >= wacht_s
