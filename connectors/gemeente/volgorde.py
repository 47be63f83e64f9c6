"""Per subject, events are applied in ``sequence`` (volgnummer) order, and a gap is reported.

Records of one subject share a partition (keyed by pseudonym), but the router reads UHT's three
ingest topics independently, so a pauzeknop can arrive before the overdracht it follows: within a
poll batch the SDK puts each subject's events back in order; across batches a sink reports what is
missing or late. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .resultaat import Geopend, Resultaat


def orden(batch: Sequence[Resultaat]) -> list[Resultaat]:
    """The batch with each subject's opened events sorted by sequence, in the slots those events
    held; other subjects' events and refusals keep their place (stable for equal sequences)."""
    out = list(batch)
    slots: dict[str, list[int]] = {}
    for i, r in enumerate(batch):
        if isinstance(r, Geopend):
            slots.setdefault(r.subject, []).append(i)
    for indices in slots.values():
        if len(indices) > 1:
            ordered = sorted((batch[i] for i in indices), key=lambda r: r.sequence)  # type: ignore[union-attr]
            for i, r in zip(indices, ordered):
                out[i] = r
    return out


@dataclass(frozen=True, slots=True)
class Gat:
    """A sequence that does not follow the subject's last applied one. Ids and numbers only."""

    event_id: str
    subject: str  # pseudonym
    verwacht: int  # the sequence that should have come next
    gekregen: int
    soort: Literal["gat", "te_laat"]  # missing events before this one, or this one came after a later one


class Volgorde:
    """The last applied sequence per subject. The first event of a subject sets the baseline: a
    gemeente may join a dossier midway (herindeling, toeslagpartner), so no gap is reported then."""

    def __init__(self, laatste: Mapping[str, int] | None = None) -> None:
        self.laatste: dict[str, int] = dict(laatste or {})

    def pas_toe(self, event_id: str, subject: str, sequence: int) -> Gat | None:
        last = self.laatste.get(subject)
        self.laatste[subject] = sequence if last is None else max(last, sequence)
        if last is None or sequence == last + 1:
            return None
        return Gat(event_id, subject, last + 1, sequence, "gat" if sequence > last else "te_laat")


__all__ = ["Gat", "Volgorde", "orden"]
