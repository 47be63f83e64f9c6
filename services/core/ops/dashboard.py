"""The ops dashboard's pure core: counts folded from the ops topics, and the page's view model.

``Overzicht`` folds decoded records of ``uht.status.v1``, ``herstel.deadletter.v1``,
``herstel.unroutable.v1`` and ``herstel.audit.v1`` into counts; ``herstelbus.dashboard`` feeds it
from Kafka and reads snapshots of it. Only codes, counts, ids and topics are kept: a dead letter's
sealed ``origineel`` and ``melding``, an audit record's ``actor`` and ``subject`` are never copied.
Every record is counted once by its own id (status_id, deadletter_id, audit_id): the contracts
derive those from the input position, so a record written again after a redelivery, or read again
after a reconnect, does not count twice.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from herstelbus.core import gemeenten
from herstelbus.core.topology import AUDIT, DEADLETTER, STATUS, UNROUTABLE

# A receipt per input event, the chart's outcomes without a gemeente filter.
UITKOMSTEN = ("ROUTED", "INVALID", "UNROUTABLE", "DUPLICATE")
# What happened per gemeente: the ROUTED receipt's doelen, then the gemeente's acks and overdue notices.
GEMEENTE_UITKOMSTEN = ("ROUTED", "ONTVANGEN", "VERWERKT", "GEWEIGERD", "OVERDUE")
GEMEENTECODE = re.compile(r"GM\d{4}")
AUDIT_BEWAARD = 200
# Per topic: the record type it carries and that type's own id.
_SOORT = {STATUS: ("statusbericht", "status_id"), DEADLETTER: ("deadletter", "deadletter_id"),
          UNROUTABLE: ("deadletter", "deadletter_id"), AUDIT: ("audit", "audit_id")}


@dataclass(frozen=True)
class AuditRegel:
    """An audit entry as the page shows it: no actor (an ops account may name a person), no subject."""

    at: datetime
    component: str
    actie: str
    resultaat: str
    reden: str | None
    gemeentecode: str | None
    topic: str | None
    event_id: str | None
    aantallen: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Momentopname:
    """An immutable copy of the counts, safe to read while the reader goes on."""

    per_dag: dict[date, dict[str, int]]
    per_dag_gemeente: dict[str, dict[date, dict[str, int]]]
    redenen: dict[tuple[str, str, str, str], int]  # (topic, reden, component, bron topic) -> count
    audit: tuple[AuditRegel, ...]  # newest first
    onleesbaar: dict[str, int]  # per topic: records that are not a known contract
    gelezen: int


@dataclass
class Overzicht:
    tz: tzinfo
    audit_max: int = AUDIT_BEWAARD
    _gezien: set[str] = field(default_factory=set)
    _per_dag: Counter = field(default_factory=Counter)  # (day, status)
    _per_gemeente: Counter = field(default_factory=Counter)  # (gemeente, day, status)
    _redenen: Counter = field(default_factory=Counter)
    _audit: deque = field(init=False)
    _onleesbaar: Counter = field(default_factory=Counter)
    _gelezen: int = 0

    def __post_init__(self) -> None:
        self._audit = deque(maxlen=self.audit_max)

    def dag(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def verwerk(self, topic: str, record_type: str, record: dict[str, Any]) -> bool:
        """Count one decoded record of ``topic``; False when it was seen before or is not for us."""
        soort, key = _SOORT.get(topic, (None, ""))
        if record_type != soort:  # another contract on this topic: counted, never shown
            self._onleesbaar[topic] += 1
            return False
        ident = f"{topic}/{record[key]}"
        if ident in self._gezien:
            return False
        self._gezien.add(ident)
        self._gelezen += 1
        if record_type == "statusbericht":
            self._status(record)
        elif record_type == "deadletter":
            bron = record.get("bron") or {}
            self._redenen[topic, record["reden"], record["component"], bron.get("topic") or "-"] += 1
        else:
            self._audit.appendleft(_audit_regel(record))
        return True

    def onleesbaar(self, topic: str) -> None:
        self._onleesbaar[topic] += 1

    def _status(self, r: dict[str, Any]) -> None:
        day, status = self.dag(r["at"]), r["status"]
        if status in UITKOMSTEN:
            self._per_dag[day, status] += 1
        if status == "ROUTED":
            for code in {d["gemeentecode"] for d in r.get("doelen") or ()}:
                self._per_gemeente[code, day, status] += 1
        elif status in GEMEENTE_UITKOMSTEN and r.get("gemeentecode"):
            self._per_gemeente[r["gemeentecode"], day, status] += 1

    def momentopname(self) -> Momentopname:
        per_dag: dict[date, dict[str, int]] = {}
        for (day, status), n in self._per_dag.items():
            per_dag.setdefault(day, {})[status] = n
        per_gemeente: dict[str, dict[date, dict[str, int]]] = {}
        for (code, day, status), n in self._per_gemeente.items():
            per_gemeente.setdefault(code, {}).setdefault(day, {})[status] = n
        return Momentopname(per_dag, per_gemeente, dict(self._redenen), tuple(self._audit),
                            dict(self._onleesbaar), self._gelezen)


def _audit_regel(r: dict[str, Any]) -> AuditRegel:
    return AuditRegel(at=r["at"], component=r["component"], actie=r["actie"], resultaat=r["resultaat"],
                      reden=r.get("reden"), gemeentecode=r.get("gemeentecode"), topic=r.get("topic"),
                      event_id=None if r.get("event_id") is None else str(r["event_id"]),
                      aantallen=tuple(sorted((str(k), int(v)) for k, v in (r.get("aantallen") or {}).items())))


# -- the view model ---------------------------------------------------------------------------
def dagreeks(per_dag: dict[date, dict[str, int]], tot: date, dagen: int,
             uitkomsten: tuple[str, ...]) -> list[dict[str, Any]]:
    """The last ``dagen`` days up to ``tot``, every day present (zeros too): a steady time axis."""
    out = []
    for i in range(dagen - 1, -1, -1):
        day = tot - timedelta(days=i)
        counts = per_dag.get(day, {})
        out.append({"dag": day.isoformat(), "aantallen": {u: counts.get(u, 0) for u in uitkomsten}})
    return out


def leeftijd(seconden: int | None) -> str:
    """An open event's age for people: ``-``, ``45m``, ``3u05m``, ``2d04u``."""
    if seconden is None:
        return "-"
    s = max(0, int(seconden))
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}u{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}u"


def gemeente_rijen(status_rows: list[dict[str, Any]], gemeente: str | None = None) -> list[dict[str, Any]]:
    """``herstelbus status`` rows with the gemeente's name and the oldest open event's age as text."""
    rows = []
    for r in status_rows:
        if gemeente and r["gemeentecode"] != gemeente:
            continue
        gm = gemeenten.get(r["gemeentecode"])
        rows.append({**r, "naam": gm.naam if gm else "", "oudste_open": leeftijd(r.get("oudste_open_s"))})
    return rows


TELLINGEN = ("routed", "ontvangen", "verwerkt", "geweigerd", "overdue")


def totalen(rijen: list[dict[str, Any]]) -> dict[str, int]:
    return {k: sum(r[k] for r in rijen) for k in TELLINGEN}


def reden_rijen(redenen: dict[tuple[str, str, str, str], int], topic: str) -> list[dict[str, Any]]:
    """One topic's reason codes, the most frequent first."""
    rows = [{"reden": reden, "component": component, "bron_topic": bron, "aantal": n}
            for (t, reden, component, bron), n in redenen.items() if t == topic]
    return sorted(rows, key=lambda r: (-r["aantal"], r["reden"], r["component"], r["bron_topic"]))


def audit_rijen(audit: tuple[AuditRegel, ...], gemeente: str | None, limiet: int) -> list[dict[str, Any]]:
    rows = []
    for a in audit:
        if gemeente and a.gemeentecode != gemeente:
            continue
        rows.append({"at": a.at.isoformat(timespec="seconds"), "component": a.component, "actie": a.actie,
                     "resultaat": a.resultaat, "reden": a.reden, "gemeentecode": a.gemeentecode, "topic": a.topic,
                     "event_id": a.event_id, "aantallen": dict(a.aantallen)})
        if len(rows) == limiet:
            break
    return rows


def view(status_rows: list[dict[str, Any]], snap: Momentopname, *, gemeente: str | None, vandaag: date,
         dagen: int = 14, audit_limiet: int = 25) -> dict[str, Any]:
    """Everything the page and ``/api/overzicht`` show, JSON-ready. With a gemeente: its own rows,
    audit entries and chart (routed to it, its acks and overdue notices); dead letters and
    unroutable events name no gemeente, so they stay as they are."""
    rijen = gemeente_rijen(status_rows, gemeente)
    if gemeente:
        grafiek = dagreeks(snap.per_dag_gemeente.get(gemeente, {}), vandaag, dagen, GEMEENTE_UITKOMSTEN)
        uitkomsten = GEMEENTE_UITKOMSTEN
    else:
        grafiek = dagreeks(snap.per_dag, vandaag, dagen, UITKOMSTEN)
        uitkomsten = UITKOMSTEN
    return {
        "gemeente": gemeente,
        "gemeenten": rijen,
        "totalen": totalen(rijen),
        "deadletter": reden_rijen(snap.redenen, DEADLETTER),
        "unroutable": reden_rijen(snap.redenen, UNROUTABLE),
        "audit": audit_rijen(snap.audit, gemeente, audit_limiet),
        "grafiek": {"uitkomsten": list(uitkomsten), "dagen": grafiek},
        "onleesbaar": snap.onleesbaar,
        "gelezen": snap.gelezen,
    }
