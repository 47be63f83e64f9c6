"""``herstelbus replay``, the pure part: which offsets to read, which records to re-deliver, how
fast, and what the audit record and the summary say. The adapter (``herstelbus.ops.replay``) does
the Kafka reading and writing around it.

A replay re-produces a gemeente's routed records as they are (same key, value bytes and partition)
with one header added, ``ce_replay: true`` (the connector's ``Geopend.replay``). It decides on
headers only: the exchange cannot open a sealed record, and has no need to.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from herstelbus.core import contracts
from herstelbus.core.contracts import ROUTED_TYPES
from herstelbus.core.contracts.envelope import RECORD_TYPES

REPLAY_HEADER = "ce_replay"  # a CloudEvents extension: the connector reads it as extensions["replay"]
REPLAY_WAARDE = b"true"
ACTIE = "replay"
COMPONENT = "ops"
TYPES = tuple(ROUTED_TYPES)  # overdracht, pauzeknop, erkenning
_ROUTED = {routed: source for source, routed in ROUTED_TYPES.items()}

# Audit reasons (redencode) for a replay that did not finish.
AFGEBROKEN = "AFGEBROKEN"  # stopped by the operator (Ctrl-C)
BROKERFOUT = "BROKERFOUT"  # the broker refused or did not acknowledge a record
VERWERKINGSFOUT = "VERWERKINGSFOUT"  # a bug in the replay itself
MAX_AANTALLEN = 64  # the audit contract's maxItems for aantallen

_OFFSET = re.compile(r"[0-9]{1,19}")
_PARTITIE_OFFSETS = re.compile(r"[0-9]{1,9}:[0-9]{1,19}(,[0-9]{1,9}:[0-9]{1,19})*")


class OngeldigeInvoer(ValueError):
    """Options that make no replay. The text names options, partitions and offsets only."""


# -- the range ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tijdstip:
    """An ISO 8601 moment; the broker maps it to the first offset with a timestamp at or after it."""

    ms: int  # epoch milliseconds, UTC

    def __str__(self) -> str:
        return datetime.fromtimestamp(self.ms / 1000, timezone.utc).isoformat()


@dataclass(frozen=True)
class Offsets:
    """``OFFSET`` (every partition: ``alle``) or ``P:OFFSET[,P:OFFSET...]`` (only those partitions)."""

    alle: int | None = None
    per_partitie: Mapping[int, int] = field(default_factory=dict)


Grens = Tijdstip | Offsets


def lees_grens(text: str, optie: str) -> Grens:
    """``--from`` / ``--to``: an offset, ``P:OFFSET`` list, or ISO 8601 date or date-time (UTC
    when it has no offset). Digits are always an offset, never a basic-format date."""
    text = text.strip()
    if _OFFSET.fullmatch(text):
        return Offsets(alle=int(text))
    if _PARTITIE_OFFSETS.fullmatch(text):
        paren = [tuple(map(int, deel.split(":"))) for deel in text.split(",")]
        per = dict(paren)
        if len(per) != len(paren):
            raise OngeldigeInvoer(f"{optie}: a partition is named twice")
        return Offsets(per_partitie=per)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise OngeldigeInvoer(f"{optie}: expected OFFSET, P:OFFSET[,P:OFFSET...] or an ISO 8601 "
                              "date / date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return Tijdstip(int(moment.timestamp() * 1000))


@dataclass(frozen=True)
class Bereik:
    """One partition's half-open offset range ``[van, tot)``; ``tot`` never beyond the end the
    partition had when the replay started, so a replay never reads its own copies."""

    partitie: int
    van: int
    tot: int
    afgekapt: bool = False  # the requested start is past retention: read from the log start

    @property
    def aantal(self) -> int:
        return self.tot - self.van


def partities(van: Grens, bestaand: Iterable[int]) -> list[int]:
    """The partitions a replay reads: every one, or those ``P:OFFSET`` names (all must exist)."""
    bestaand = sorted(bestaand)
    if isinstance(van, Offsets) and van.per_partitie:
        onbekend = sorted(set(van.per_partitie) - set(bestaand))
        if onbekend:
            raise OngeldigeInvoer(f"--from: no partition {', '.join(map(str, onbekend))} "
                                  f"(the topic has {len(bestaand)}: 0..{len(bestaand) - 1})")
        return sorted(van.per_partitie)
    return bestaand


def bereik(van: Grens, tot: Grens | None, *, begin: Mapping[int, int], eind: Mapping[int, int],
           van_tijd: Mapping[int, int | None] | None = None,
           tot_tijd: Mapping[int, int | None] | None = None) -> list[Bereik]:
    """Per partition in ``eind`` (those ``partities`` chose), the range to read.

    ``begin`` / ``eind``: the log start and end offsets when the replay started. ``van_tijd`` /
    ``tot_tijd``: the broker's offsets for a ``Tijdstip`` bound (None: no record that late, i.e.
    the end). ``--to OFFSET`` is inclusive (the last offset replayed); ``--to TIME`` replays what
    was written before TIME.
    """
    if isinstance(tot, Offsets) and tot.per_partitie:
        vreemd = sorted(set(tot.per_partitie) - set(eind))
        if vreemd:
            raise OngeldigeInvoer(f"--to: partition {', '.join(map(str, vreemd))} is not replayed")
    _controleer_volgorde(van, tot)
    uit = []
    for p in sorted(eind):
        start = _offset(van, p, van_tijd, default=eind[p])
        stop = eind[p] if tot is None else _offset(tot, p, tot_tijd, default=eind[p], inclusief=True)
        afgekapt = start < begin[p]
        start = min(max(start, begin[p]), eind[p])
        uit.append(Bereik(p, start, min(max(stop, start), eind[p]), afgekapt))
    return uit


def _offset(grens: Grens, p: int, tijden: Mapping[int, int | None] | None, *, default: int,
            inclusief: bool = False) -> int:
    if isinstance(grens, Tijdstip):
        if tijden is None:
            raise ValueError("a time bound needs the broker's offsets for it")  # a bug in the caller
        gevonden = tijden.get(p)
        return default if gevonden is None else gevonden
    waarde = grens.alle if grens.alle is not None else grens.per_partitie.get(p)
    if waarde is None:
        return default
    return waarde + 1 if inclusief else waarde


def _controleer_volgorde(van: Grens, tot: Grens | None) -> None:
    if isinstance(van, Tijdstip) and isinstance(tot, Tijdstip) and tot.ms < van.ms:
        raise OngeldigeInvoer("--to is before --from")
    if isinstance(van, Offsets) and isinstance(tot, Offsets):
        for p in sorted(set(van.per_partitie) | set(tot.per_partitie)) or [None]:
            v = van.alle if van.alle is not None else van.per_partitie.get(p)
            t = tot.alle if tot.alle is not None else tot.per_partitie.get(p)
            if v is not None and t is not None and t < v:
                raise OngeldigeInvoer("--to is before --from" + (f" (partition {p})" if p is not None else ""))


# -- which records ---------------------------------------------------------------------------------------
class Keuze(enum.Enum):
    OPNIEUW = "opnieuw"  # re-deliver
    ANDER_TYPE = "ander_type"  # --type asked for other events
    DUBBEL = "dubbel"  # its event id was re-delivered earlier in this replay


def header(headers: Iterable[tuple[str, Any]], naam: str) -> bytes | None:
    for key, value in headers or ():
        if isinstance(key, str) and key.lower() == naam:
            return value
    return None


def soort(headers: Iterable[tuple[str, Any]]) -> str | None:
    """overdracht | pauzeknop | erkenning from ``ce_type``; None for anything else."""
    value = header(headers, "ce_type")
    try:
        return _ROUTED.get(RECORD_TYPES.get(value.decode("utf-8"), "")) if value is not None else None
    except UnicodeDecodeError:
        return None


class Filter:
    """Per record, in topic order: re-deliver it or not. An event id goes once per replay: the
    first copy in the range (the router's at-least-once duplicates and earlier replays' copies of
    the same event add nothing). A record without ``ce_id`` cannot be matched, so it goes as is."""

    def __init__(self, types: Iterable[str] | None = None) -> None:
        self.types = frozenset(types) if types else None
        unknown = (self.types or frozenset()) - set(TYPES)
        if unknown:
            raise OngeldigeInvoer(f"--type: unknown {', '.join(sorted(unknown))}; known: {', '.join(TYPES)}")
        self.gezien: set[bytes] = set()

    def kies(self, headers: Iterable[tuple[str, Any]]) -> Keuze:
        if self.types is not None and soort(headers) not in self.types:
            return Keuze.ANDER_TYPE
        event_id = header(headers, "ce_id")
        if event_id is not None:
            if event_id in self.gezien:
                return Keuze.DUBBEL
            self.gezien.add(event_id)
        return Keuze.OPNIEUW


def met_header(headers: Iterable[tuple[str, Any]], naam: str, waarde: bytes) -> list[tuple[str, bytes]]:
    """The record's headers, unchanged and in order, plus ``naam: waarde`` exactly once (a copy of
    a copy keeps one: the envelope refuses a header twice). Also for redrive and reroute copies."""
    kept = [(k, v) for k, v in headers or () if not (isinstance(k, str) and k.lower() == naam)]
    return [*kept, (naam, waarde)]


def replay_headers(headers: Iterable[tuple[str, Any]]) -> list[tuple[str, bytes]]:
    """The record's headers plus ``ce_replay: true`` exactly once."""
    return met_header(headers, REPLAY_HEADER, REPLAY_WAARDE)


# -- how fast ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tempo:
    """``--rate N``: the k-th event (0-based) goes no earlier than k/N seconds after the first, so
    a slow stretch is caught up but the average never exceeds N per second."""

    per_seconde: float | None = None

    def __post_init__(self) -> None:
        if self.per_seconde is not None and not self.per_seconde > 0:
            raise OngeldigeInvoer("--rate: must be more than 0 events per second")

    def wacht(self, verzonden: int, verstreken_s: float) -> float:
        """Seconds to sleep before the next event, ``verzonden`` having gone in ``verstreken_s``."""
        if self.per_seconde is None:
            return 0.0
        return max(0.0, verzonden / self.per_seconde - verstreken_s)


# -- what was done -----------------------------------------------------------------------------------
@dataclass
class Tellingen:
    gelezen: int = 0  # records read in the range
    gekozen: int = 0  # chosen to be re-delivered (what --dry-run reports)
    opnieuw_afgeleverd: int = 0  # written again, acknowledged by the broker
    ander_type: int = 0
    dubbel: int = 0

    def tel(self, keuze: Keuze) -> None:
        self.gelezen += 1
        if keuze is Keuze.OPNIEUW:
            self.gekozen += 1
        elif keuze is Keuze.ANDER_TYPE:
            self.ander_type += 1
        else:
            self.dubbel += 1


def uitslag(gelukt: int, reden: str | None) -> str:
    """The audit contract's Resultaat of an ops run: all done, ``gelukt`` records done before it
    stopped for ``reden``, or none (also for redrive and reroute)."""
    if reden is None:
        return "GESLAAGD"
    return "GEDEELTELIJK" if gelukt else "MISLUKT"


def resultaat(tellingen: Tellingen, reden: str | None) -> str:
    return uitslag(tellingen.opnieuw_afgeleverd, reden)


def aantallen(tellingen: Tellingen, bereiken: Sequence[Bereik]) -> dict[str, int]:
    """Counts, and the source range per partition (``p<N>.van`` first offset read, ``p<N>.tot``
    first offset not read) as long as the contract's 64 entries hold them."""
    uit = {"gelezen": tellingen.gelezen, "opnieuw_afgeleverd": tellingen.opnieuw_afgeleverd,
           "ander_type": tellingen.ander_type, "dubbel": tellingen.dubbel}
    if len(uit) + 2 * len(bereiken) <= MAX_AANTALLEN:
        for b in bereiken:
            uit[f"p{b.partitie}.van"], uit[f"p{b.partitie}.tot"] = b.van, b.tot
    return uit


def audit_record(*, audit_id: str, at: datetime, actor: str, gemeentecode: str, topic: str,
                 tellingen: Tellingen, bereiken: Sequence[Bereik], reden: str | None = None) -> dict[str, Any]:
    """The ``audit`` record for ``herstel.audit.v1``: who replayed which gemeente's topic, the
    counts, the outcome. Codes, counts and offsets only."""
    return {
        "audit_id": audit_id, "at": at, "actor": actor, "component": COMPONENT, "actie": ACTIE,
        "resultaat": resultaat(tellingen, reden), "reden": reden, "gemeentecode": gemeentecode,
        "topic": topic, "event_id": None, "subject": None, "aantallen": aantallen(tellingen, bereiken),
    }


def controleer_audit(record: Mapping[str, Any]) -> None:
    """Refuse an audit record the contract refuses, before anything is replayed (the actor is the
    one value from outside: an account id, never a person's e-mail)."""
    fouten = contracts.validate("audit", dict(record))
    if any(f.path == "actor" for f in fouten):
        raise OngeldigeInvoer("--actor: expected an account id (letters, digits and . _ : / -, at most 128; "
                              "no e-mail address)")
    if fouten:
        raise OngeldigeInvoer("audit record refused: " + ", ".join(f"{f.reason} {f.path}" for f in fouten))


def samenvatting(gemeentecode: str, tellingen: Tellingen, bereiken: Sequence[Bereik], *, dry_run: bool = False,
                 geschreven: Mapping[int, tuple[int, int]] | None = None) -> str:
    """``replay GM0363: 120 events re-delivered (offsets 0:10-129 -> 0:200-319; 124 read, ...)``."""
    bron = ", ".join(f"{b.partitie}:{b.van}-{b.tot - 1}" if b.aantal else f"{b.partitie}:none" for b in bereiken)
    doel = ", ".join(f"{p}:{a}-{z}" for p, (a, z) in sorted((geschreven or {}).items()))
    extra = [f"{tellingen.gelezen} read"]
    if tellingen.ander_type:
        extra.append(f"{tellingen.ander_type} of another type")
    if tellingen.dubbel:
        extra.append(f"{tellingen.dubbel} duplicate event id{'s' if tellingen.dubbel != 1 else ''} skipped")
    if any(b.afgekapt for b in bereiken):
        extra.append("older offsets are past retention")
    if dry_run:
        wat = f" (dry run): {_events(tellingen.gekozen)} would be re-delivered"
    else:
        wat = f": {_events(tellingen.opnieuw_afgeleverd)} re-delivered"
    return f"replay {gemeentecode}{wat} (offsets {bron or 'none'}{' -> ' + doel if doel else ''}; {'; '.join(extra)})"


def _events(n: int) -> str:
    return f"{n} event{'' if n == 1 else 's'}"


__all__ = [
    "ACTIE", "AFGEBROKEN", "BROKERFOUT", "Bereik", "COMPONENT", "Filter", "Grens", "Keuze", "Offsets",
    "OngeldigeInvoer", "REPLAY_HEADER", "REPLAY_WAARDE", "TYPES", "Tellingen", "Tempo", "Tijdstip", "VERWERKINGSFOUT",
    "aantallen", "audit_record", "bereik", "controleer_audit", "header", "lees_grens", "met_header", "partities",
    "replay_headers", "resultaat", "samenvatting", "soort", "uitslag",
]
