"""The routing decision: which gemeenten get an event, and why (issue 5, rules 2-6).

``decide`` is the whole of it; the adapter supplies the two things it cannot know itself: the
date to resolve on (``peildatum`` of the event) and the gemeenten that were eerder betrokken (its
routing memory, see ``geheugen``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from .. import gemeenten
from ..gemeenten import Resolved, Split

# Why a gemeente gets the event: the RouteringReden symbols of the routed and status contracts.
WOONGEMEENTE = "WOONGEMEENTE"
HERINDELING = "HERINDELING"
EERDER_BETROKKEN = "EERDER_BETROKKEN"

# Why there is no woongemeente. Besides these, gemeenten.Unknown's own codes (ONBEKEND,
# NOG_NIET_BESTAAND, GEEN_OPVOLGER, ONGELDIG_FORMAAT, ONGELDIGE_DATUM) pass through unchanged.
VOW = "VOW"
BUITENLAND = "BUITENLAND"
GEEN_GEMEENTECODE = "GEEN_GEMEENTECODE"
SPLITSING = "SPLITSING"

SOORTEN = ("overdracht", "pauzeknop", "erkenning")
# A pause or a recognition concerns every creditor that knows the person; a handover only the
# gemeente where the parent lives now.
FAN_OUT = frozenset({"pauzeknop", "erkenning"})

# Herindelingen take effect at midnight Dutch time, so the event date is the Dutch calendar day.
_NL = ZoneInfo("Europe/Amsterdam")


@dataclass(frozen=True, slots=True)
class Target:
    gemeentecode: str  # the gemeente that exists on the routing date: its topic gets the record
    reden: str
    oorspronkelijke_gemeentecode: str | None = None  # as UHT sent it, or as remembered
    opvolger_gemeentecode: str | None = None  # set when the original was dissolved since


@dataclass(frozen=True, slots=True)
class Routed:
    targets: tuple[Target, ...]  # never empty; the woongemeente first, then by gemeentecode
    geminimaliseerd: bool = False  # overdracht with contactwens NEE: no contact details (rule 5)
    urgent: bool = False  # overdracht with urgentie.urgent: priority header (rule 6)
    # Why there is no woongemeente, when the event reached only eerder betrokken gemeenten.
    unroutable_primary: str | None = None
    # Eerder betrokken gemeenten that no longer resolve (e.g. split since): (code, reason).
    overgeslagen: tuple[tuple[str, str], ...] = ()

    @property
    def gemeentecodes(self) -> tuple[str, ...]:
        return tuple(t.gemeentecode for t in self.targets)


@dataclass(frozen=True, slots=True)
class Unroutable:
    reason: str


Decision = Routed | Unroutable


def peildatum(record: Mapping[str, Any]) -> date:
    """The date an event is routed on: the Dutch calendar day of its ``occurred_at``."""
    occurred: datetime = record["occurred_at"]
    return occurred.astimezone(_NL).date()


def decide(record_type: str, record: Mapping[str, Any], *, on: date,
           eerder: Iterable[str] = frozenset()) -> Decision:
    """Where a validated UHT event goes (rules 2-6).

    ``eerder``: the gemeenten that received earlier events of the same subject or dossier (the
    union of both memories); used for pauzeknop and erkenning only. When the event has no
    woongemeente but eerder betrokken gemeenten, it still goes to them: a pause that reaches no
    creditor brings the bailiff back. Never raises for a record that passed validation.
    """
    if record_type not in SOORTEN:
        raise ValueError("not a routed event type")
    primary = _primary(record, on)
    if isinstance(primary, Target):
        targets, waarom_niet = [primary], None
    else:
        targets, waarom_niet = [], primary
    overgeslagen: tuple[tuple[str, str], ...] = ()
    if record_type in FAN_OUT:
        extra, overgeslagen = _eerder_betrokken(eerder, on, exclude={t.gemeentecode for t in targets})
        targets += extra
    if waarom_niet is not None and not targets:
        return Unroutable(waarom_niet)
    overdracht = record_type == "overdracht"
    urgentie = record.get("urgentie") if overdracht else None
    return Routed(
        targets=tuple(targets),
        geminimaliseerd=overdracht and record.get("contactwens") == "NEE",
        urgent=isinstance(urgentie, Mapping) and urgentie.get("urgent") is True,
        unroutable_primary=waarom_niet,
        overgeslagen=overgeslagen,
    )


def _primary(record: Mapping[str, Any], on: date) -> Target | str:
    """The woongemeente as a Target, or the reason code why there is none."""
    woonsituatie = record.get("woonsituatie")
    if woonsituatie in (VOW, BUITENLAND):  # even with a (stale) gemeentecode: they do not live there
        return woonsituatie
    code = record.get("gemeentecode")
    if code is None:
        return GEEN_GEMEENTECODE
    found = gemeenten.resolve(code, on)
    if isinstance(found, Resolved):
        if len(found.via) == 1:
            return Target(found.code, WOONGEMEENTE, code, None)
        return Target(found.code, HERINDELING, code, found.code)
    if isinstance(found, Split):
        return SPLITSING  # only the address could tell which part: ops decide
    return found.reason


def _eerder_betrokken(eerder: Iterable[str], on: date, exclude: set[str]
                      ) -> tuple[list[Target], tuple[tuple[str, str], ...]]:
    """Each remembered gemeente resolved again on ``on`` (it may have merged since), minus those
    already targeted. Two remembered codes that merged into one gemeente give one target: the one
    that needed no herindeling, else the lowest code, so the result does not depend on set order."""
    best: dict[str, tuple[int, str]] = {}
    skipped: list[tuple[str, str]] = []
    for code in sorted(c for c in eerder if isinstance(c, str)):
        found = gemeenten.resolve(code, on)
        if isinstance(found, Resolved):
            if found.code not in exclude:
                rank = (len(found.via), code)
                best[found.code] = min(best.get(found.code, rank), rank)
        else:
            skipped.append((code, SPLITSING if isinstance(found, Split) else found.reason))
    targets = [Target(doel, EERDER_BETROKKEN, code, doel if doel != code else None)
               for doel, (_, code) in sorted(best.items())]
    return targets, tuple(skipped)
