"""Deadlines: by when a gemeente must have acknowledged, per event type and urgency.

Defaults (configurable, ``parse_termijnen``):
- urgent overdracht: ONTVANGEN within 4 hours;
- other overdracht: ONTVANGEN within 2 working days;
- pauzeknop: VERWERKT within 5 working days;
- erkenning: VERWERKT within 10 working days.
Working days are Monday to Friday in Europe/Amsterdam except the Dutch public holidays as the
``holidays`` package lists them (Nieuwjaarsdag, Goede Vrijdag, Pasen, Koningsdag, Bevrijdingsdag in
lustrum years, Hemelvaart, Pinksteren, Kerst).
A deadline is met by its status or any later one (GEWEIGERD is an answer too).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from .berichten import overdue_status
from .staat import GEWEIGERD, ONTVANGEN, VERWERKT, Doel

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
FEESTDAGEN = holidays.country_holidays("NL")  # fills in each year on first lookup
_GEHAALD = {ONTVANGEN: {ONTVANGEN, VERWERKT, GEWEIGERD}, VERWERKT: {VERWERKT, GEWEIGERD}}


@dataclass(frozen=True)
class Termijn:
    status: str  # ONTVANGEN | VERWERKT: what must have arrived
    duur: timedelta | None = None  # wall-clock time, or
    werkdagen: int = 0  # working days (Mon-Fri)

    def deadline(self, routed_at: datetime) -> datetime:
        return routed_at + self.duur if self.duur is not None else plus_werkdagen(routed_at, self.werkdagen)


# (event_type, urgent) -> Termijn
Termijnen = Mapping[tuple[str, bool], Termijn]
DEFAULT_TERMIJNEN: dict[tuple[str, bool], Termijn] = {
    ("OVERDRACHT", True): Termijn(ONTVANGEN, duur=timedelta(hours=4)),
    ("OVERDRACHT", False): Termijn(ONTVANGEN, werkdagen=2),
    ("PAUZEKNOP", False): Termijn(VERWERKT, werkdagen=5),
    ("PAUZEKNOP", True): Termijn(VERWERKT, werkdagen=5),
    ("ERKENNING", False): Termijn(VERWERKT, werkdagen=10),
    ("ERKENNING", True): Termijn(VERWERKT, werkdagen=10),
}


def plus_werkdagen(start: datetime, n: int) -> datetime:
    """``start`` moved ``n`` working days on, same time of day (Amsterdam); a weekend or holiday
    start counts from the next working day: Friday 10:00 + 2 -> Tuesday 10:00, Saturday 10:00 + 1 ->
    Monday 10:00; Friday 24 April 2026 + 1 -> Tuesday 28 April (Koningsdag the 27th)."""
    local = start.astimezone(AMSTERDAM)
    day = local.date()
    while n > 0:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in FEESTDAGEN:
            n -= 1
    return datetime.combine(day, local.timetz().replace(tzinfo=None), AMSTERDAM).astimezone(start.tzinfo)


_SPEC = re.compile(r"(OVERDRACHT|PAUZEKNOP|ERKENNING)(:URGENT)?=(ONTVANGEN|VERWERKT)/(\d+)(S|M|H|WD)")
_UNIT = {"S": "seconds", "M": "minutes", "H": "hours"}


def parse_termijnen(text: str, base: Termijnen = DEFAULT_TERMIJNEN) -> dict[tuple[str, bool], Termijn]:
    """``SOORT[:URGENT]=STATUS/<n><s|m|h|wd>`` separated by commas, over ``base``; without
    ``:URGENT`` both urgencies are set. E.g. ``OVERDRACHT=ONTVANGEN/2wd,ERKENNING=VERWERKT/10wd``."""
    out = dict(base)
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = _SPEC.fullmatch(part.upper())
        if m is None:
            raise ValueError(f"not a deadline: {part!r} (want SOORT[:URGENT]=STATUS/<n><s|m|h|wd>)")
        soort, urgent, status, n, unit = m.groups()
        termijn = (Termijn(status, werkdagen=int(n)) if unit == "WD"
                   else Termijn(status, duur=timedelta(**{_UNIT[unit]: int(n)})))
        for u in ((True,) if urgent else (True, False)):
            out[soort, u] = termijn
    return out


@dataclass(frozen=True)
class Overdue:
    doel: Doel
    termijn: Termijn
    deadline: datetime
    status: dict[str, Any]  # the OVERDUE statusbericht


def due(state: Iterable[Doel], now: datetime, termijnen: Termijnen = DEFAULT_TERMIJNEN) -> list[Overdue]:
    """Every (event, gemeente, deadline) that passed unmet and was not notified yet."""
    out = []
    for doel in state:
        termijn = termijnen.get((doel.event_type, doel.urgent))
        if termijn is None or termijn.status in doel.gemeld or doel.state in _GEHAALD[termijn.status]:
            continue
        deadline = termijn.deadline(doel.routed_at)
        if deadline <= now:
            out.append(Overdue(doel, termijn, deadline, overdue_status(doel, termijn.status, at=now)))
    return out
