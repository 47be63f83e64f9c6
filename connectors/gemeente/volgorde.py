"""Per dossier, events are applied in ``sequence`` (volgnummer) order, and a gap is reported.

The contract's volgnummer increases per *dossier*, and a dossier's events concern more than one
person (ouder, toeslagpartner: different subjects), so the series is the dossier, not the subject:
an ouder's event after the toeslagpartner's is the next one, not a gap. The series key is the
event's ``reeks`` (``resultaat.reekssleutel`` of gemeentecode and dossiernummer): personal data
like the dossiernummer itself, so it stays in memory and in a sink's own store; a ``Gat`` names
only the event id and the subject pseudonym.

Records are keyed by pseudonym, so one dossier's events may sit on several partitions, and the
router reads UHT's three ingest topics independently, so a pauzeknop can arrive before the
overdracht it follows: within a poll batch the SDK puts each dossier's events back in order; across
batches a sink reports what is missing or late. A gemeente sees only the dossier's events routed
to it: a series starts where it joined, and a volgnummer routed only elsewhere (an overdracht goes
to the woongemeente alone, e.g. after a move) shows here as a gap. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .resultaat import Geopend, Resultaat, reekssleutel


def orden(batch: Sequence[Resultaat]) -> list[Resultaat]:
    """The batch with each dossier's opened events sorted by sequence, in the slots those events
    held; other dossiers' events and refusals keep their place (stable for equal sequences)."""
    out = list(batch)
    slots: dict[str, list[int]] = {}
    for i, r in enumerate(batch):
        if isinstance(r, Geopend):
            slots.setdefault(r.reeks, []).append(i)
    for indices in slots.values():
        if len(indices) > 1:
            ordered = sorted((batch[i] for i in indices), key=lambda r: r.sequence)  # type: ignore[union-attr]
            for i, r in zip(indices, ordered):
                out[i] = r
    return out


@dataclass(frozen=True, slots=True)
class Gat:
    """A sequence that does not follow the last applied one of its dossier. Ids and numbers only:
    no dossiernummer and no series key (the event id finds the dossier in the gemeente's own store)."""

    event_id: str
    subject: str  # pseudonym of this event's person (the dossier may have others)
    verwacht: int  # the sequence that should have come next in the dossier
    gekregen: int
    soort: Literal["gat", "te_laat"]  # missing events before this one, or this one came after a later one


class Volgorde:
    """The last applied sequence per series (``Geopend.reeks``: the dossier). The first event of a
    series sets the baseline: a gemeente may join a dossier midway (herindeling, toeslagpartner,
    a move), so no gap is reported then. ``laatste`` holds series keys: personal data, never log it."""

    def __init__(self, laatste: Mapping[str, int] | None = None) -> None:
        self.laatste: dict[str, int] = dict(laatste or {})

    def pas_toe(self, event_id: str, subject: str, sequence: int, *, reeks: str) -> Gat | None:
        last = self.laatste.get(reeks)
        self.laatste[reeks] = sequence if last is None else max(last, sequence)
        if last is None or sequence == last + 1:
            return None
        return Gat(event_id, subject, last + 1, sequence, "gat" if sequence > last else "te_laat")

    def volg(self, event: Geopend) -> Gat | None:
        """``pas_toe`` for an opened event."""
        return self.pas_toe(event.event_id, event.subject, event.sequence, reeks=event.reeks)


__all__ = ["Gat", "Volgorde", "orden", "reekssleutel"]
