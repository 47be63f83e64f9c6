"""Gemeente reference data and the herindeling resolver.

The router asks one question: for this gemeentecode on this date, which gemeente's topic gets
the event? ``resolve`` answers it from ``schemas/reference/gemeenten.csv`` (CBS codes with begin
and end dates and opvolgers; sources and conventions in the README beside that file).

Date semantics: ``begindatum`` is the first day a gemeente exists, ``einddatum`` the first day it
no longer exists (the herindelingsdatum, the day its opvolger takes over). The router passes the
event date; for a replay or re-route it may pass today's date instead, which sends events of
a gemeente dissolved since then to its opvolger.

Pure: the CSV is read once, lazily; no Kafka, HTTP or database.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path

import herstelbus

REFERENCE_DIR_ENV = "HERSTELBUS_REFERENCE_DIR"
BESTAND = "gemeenten.csv"
KOLOMMEN = ("gemeentecode", "naam", "begindatum", "einddatum", "opvolgers")

# ASCII digits only: \d would also accept e.g. Arabic-Indic digits.
_CODE = re.compile(r"GM[0-9]{4}")

# Stable reason codes for Unknown; the router copies them into its unroutable record.
ONGELDIG_FORMAAT = "ONGELDIG_FORMAAT"  # not GM + 4 digits
ONGELDIGE_DATUM = "ONGELDIGE_DATUM"  # `on` is not a date
ONBEKEND = "ONBEKEND"  # well-formed, but no such gemeente in the reference data
NOG_NIET_BESTAAND = "NOG_NIET_BESTAAND"  # the gemeente did not exist yet on that date
GEEN_OPVOLGER = "GEEN_OPVOLGER"  # dissolved, and no opvolger that exists on that date

# A real chain is one or two herindelingen long; the bound only guards against bad data.
_MAX_STAPPEN = 32


@dataclass(frozen=True, slots=True)
class Gemeente:
    code: str
    naam: str
    begindatum: date | None  # None: existed before the sources' horizon (see README)
    einddatum: date | None  # None: still exists; else the first day it no longer exists
    opvolgers: tuple[str, ...]  # empty while it exists; >1 for a split

    def bestaat_op(self, on: date) -> bool:
        return (self.begindatum is None or self.begindatum <= on) and (
            self.einddatum is None or on < self.einddatum
        )


@dataclass(frozen=True, slots=True)
class Resolved:
    code: str
    naam: str
    requested_code: str
    via: tuple[str, ...]  # requested_code ... code; just (code,) when nothing was followed


@dataclass(frozen=True, slots=True)
class Split:
    """Dissolved into more than one gemeente: only the address can tell which; unroutable."""

    requested_code: str
    successors: tuple[str, ...]  # the gemeenten that exist on the requested date


@dataclass(frozen=True, slots=True)
class Unknown:
    requested_code: str
    reason: str


Resolution = Resolved | Split | Unknown


def reference_dir() -> Path:
    override = os.environ.get(REFERENCE_DIR_ENV)
    if override:
        return Path(override)
    return Path(herstelbus.__file__).resolve().parent.parent / "schemas" / "reference"


def get(code: str) -> Gemeente | None:
    if not isinstance(code, str):
        return None
    return _tabel().get(code)


def gemeenten_on(on: date) -> tuple[Gemeente, ...]:
    """Every gemeente that exists on ``on``, by code (one Kafka topic each)."""
    dag = _als_datum(on)
    if dag is None:
        return ()
    return tuple(g for g in _tabel().values() if g.bestaat_op(dag))


def gemeenten_vanaf(on: date) -> tuple[Gemeente, ...]:
    """Every gemeente that exists on ``on`` or comes into being later (topics are made ahead)."""
    dag = _als_datum(on)
    if dag is None:
        return ()
    return tuple(g for g in _tabel().values() if g.einddatum is None or dag < g.einddatum)


def resolve(code: str, on: date) -> Resolution:
    """The gemeente that exists on ``on`` for ``code``, following opvolgers after herindelingen.

    Never raises: any input that cannot be routed gives Unknown with a reason code.
    """
    gevraagd = code if isinstance(code, str) else repr(code)
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        return Unknown(gevraagd, ONGELDIG_FORMAAT)
    dag = _als_datum(on)
    if dag is None:
        return Unknown(gevraagd, ONGELDIGE_DATUM)
    tabel = _tabel()
    start = tabel.get(code)
    if start is None:
        return Unknown(code, ONBEKEND)
    if start.begindatum is not None and dag < start.begindatum:
        return Unknown(code, NOG_NIET_BESTAAND)

    eind = _eindpunten(start, dag, tabel)
    if eind is None:
        return Unknown(code, GEEN_OPVOLGER)
    if len(eind) > 1:
        return Split(code, tuple(sorted(eind)))
    doel, pad = next(iter(eind.items()))
    return Resolved(doel, tabel[doel].naam, code, pad)


def _eindpunten(
    start: Gemeente, dag: date, tabel: dict[str, Gemeente]
) -> dict[str, tuple[str, ...]] | None:
    """Follow opvolgers from ``start`` to the gemeenten that exist on ``dag``.

    Returns {code: path from start}, or None when some branch ends without one: a split with a
    dead branch is not routable to the remaining parts either.
    """
    gevonden: dict[str, tuple[str, ...]] = {}
    werk: list[tuple[Gemeente, tuple[str, ...]]] = [(start, (start.code,))]
    while werk:
        g, pad = werk.pop()
        if g.bestaat_op(dag):
            gevonden.setdefault(g.code, pad)
            continue
        if len(pad) > _MAX_STAPPEN or not g.opvolgers:
            return None
        for opvolger in reversed(g.opvolgers):
            volgende = tabel.get(opvolger)
            if volgende is None or opvolger in pad:
                return None
            werk.append((volgende, (*pad, opvolger)))
    return gevonden


def _als_datum(on: object) -> date | None:
    # datetime is a date subclass but does not compare with date: use its calendar day.
    if isinstance(on, datetime):
        return on.date()
    if isinstance(on, date):
        return on
    return None


@cache
def _tabel() -> dict[str, Gemeente]:
    return _lees(reference_dir() / BESTAND)


def _lees(pad: Path) -> dict[str, Gemeente]:
    """Read and check the reference file; bad data fails loudly at load, never at resolve."""
    with pad.open(newline="", encoding="utf-8") as f:
        rijen = list(csv.reader(f))
    if not rijen or tuple(rijen[0]) != KOLOMMEN:
        raise ValueError(f"{pad}: header must be {','.join(KOLOMMEN)}")
    tabel: dict[str, Gemeente] = {}
    for nr, rij in enumerate(rijen[1:], start=2):
        if len(rij) != len(KOLOMMEN):
            raise ValueError(f"{pad}:{nr}: expected {len(KOLOMMEN)} columns")
        code, naam, begin, eind, opvolgers = (v.strip() for v in rij)
        if not _CODE.fullmatch(code) or not naam:
            raise ValueError(f"{pad}:{nr}: bad gemeentecode or empty naam")
        if code in tabel:
            raise ValueError(f"{pad}:{nr}: {code} listed twice")
        g = Gemeente(
            code=code,
            naam=naam,
            begindatum=date.fromisoformat(begin) if begin else None,
            einddatum=date.fromisoformat(eind) if eind else None,
            opvolgers=tuple(opvolgers.split()),
        )
        if g.begindatum and g.einddatum and g.einddatum <= g.begindatum:
            raise ValueError(f"{pad}:{nr}: {code} ends before it begins")
        # An einddatum without opvolgers is allowed (resolves to GEEN_OPVOLGER); the unit tests
        # hold the real data to "every dissolved gemeente has an opvolger".
        if g.opvolgers and g.einddatum is None:
            raise ValueError(f"{pad}:{nr}: {code} has opvolgers but no einddatum")
        tabel[code] = g
    for g in tabel.values():
        for o in g.opvolgers:
            opvolger = tabel.get(o)
            # The opvolger must take over on the herindelingsdatum itself.
            if opvolger is None or g.einddatum is None or not opvolger.bestaat_op(g.einddatum):
                raise ValueError(f"{pad}: opvolger {o} of {g.code} does not exist on {g.einddatum}")
    return dict(sorted(tabel.items()))
