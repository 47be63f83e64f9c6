"""The acks state store: one row per (event_id, gemeentecode) routed, SQLAlchemy Core.

SQLite in the data dir by default, PostgreSQL via ``HERSTELBUS_ACKS_URL``. Times are epoch
milliseconds (portable, no time-zone loss in SQLite). Every write is idempotent: a ROUTED receipt
seen again leaves its rows as they are, and saving a Doel overwrites it with the same values.
No personal data: ids, codes, positions and times only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger, Boolean, Column, Engine, Integer, MetaData, String, Table, Text, create_engine, insert, select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from herstelbus.core.acks import EINDSTATUS, ROUTED, Doel
from herstelbus.core.routing.refs import KafkaRef

from .settings import AcksSettings

metadata = MetaData()
doelen = Table(
    "acks_doelen", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("gemeentecode", String(6), primary_key=True),
    Column("event_type", String(16), nullable=False),
    Column("urgent", Boolean, nullable=False, default=False),
    Column("routed_at_ms", BigInteger, nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("ack_ids", Text, nullable=False, default=""),  # comma-separated: a handful per row
    Column("gemeld", Text, nullable=False, default=""),  # deadlines notified as OVERDUE
    Column("changed_at_ms", BigInteger, nullable=True),
    Column("bron_topic", String(249)), Column("bron_partition", Integer), Column("bron_offset", BigInteger),
    Column("doel_topic", String(249)), Column("doel_partition", Integer), Column("doel_offset", BigInteger),
)


def _ms(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp() * 1000)


def _at(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, timezone.utc)


def _set(text: str) -> frozenset[str]:
    return frozenset(filter(None, text.split(",")))


def _ref(topic: str | None, partition: int | None, offset: int | None) -> KafkaRef | None:
    return None if topic is None else KafkaRef(topic, partition, offset)


def _row(d: Doel) -> dict[str, Any]:
    b, t = d.bron, d.doel
    return {
        "event_id": d.event_id, "gemeentecode": d.gemeentecode, "event_type": d.event_type, "urgent": d.urgent,
        "routed_at_ms": _ms(d.routed_at), "state": d.state, "ack_ids": ",".join(sorted(d.ack_ids)),
        "gemeld": ",".join(sorted(d.gemeld)), "changed_at_ms": _ms(d.changed_at),
        "bron_topic": b and b.topic, "bron_partition": b and b.partition, "bron_offset": b and b.offset,
        "doel_topic": t and t.topic, "doel_partition": t and t.partition, "doel_offset": t and t.offset,
    }


def _doel(r: Any) -> Doel:
    return Doel(event_id=r.event_id, gemeentecode=r.gemeentecode, event_type=r.event_type, urgent=r.urgent,
                routed_at=_at(r.routed_at_ms), state=r.state, ack_ids=_set(r.ack_ids), gemeld=_set(r.gemeld),
                changed_at=_at(r.changed_at_ms), bron=_ref(r.bron_topic, r.bron_partition, r.bron_offset),
                doel=_ref(r.doel_topic, r.doel_partition, r.doel_offset))


@dataclass(frozen=True)
class Telling:
    gemeentecode: str
    routed: int = 0
    ontvangen: int = 0
    verwerkt: int = 0
    geweigerd: int = 0
    overdue: int = 0
    oudste_open: datetime | None = None  # routed_at of the oldest event not acknowledged at all


class AcksStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> AcksStore:
        u = make_url(url)
        if u.get_backend_name() == "sqlite":
            if u.database in (None, "", ":memory:"):
                engine = create_engine(u, poolclass=StaticPool, connect_args={"check_same_thread": False})
            else:
                Path(u.database).parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(u, connect_args={"timeout": 30})
        else:
            engine = create_engine(u, pool_pre_ping=True)
        metadata.create_all(engine, checkfirst=True)
        return cls(engine)

    @classmethod
    def from_settings(cls, settings: AcksSettings | None = None) -> AcksStore:
        return cls.open((settings or AcksSettings()).database_url())

    def put_routed(self, items: Iterable[Doel]) -> int:
        """Insert the rows that are missing; existing rows keep their state. Returns how many were new."""
        rows = [_row(d) for d in items]
        if not rows:
            return 0
        with self.engine.begin() as conn:
            have = {(r.event_id, r.gemeentecode) for r in conn.execute(
                select(doelen.c.event_id, doelen.c.gemeentecode).where(
                    doelen.c.event_id.in_({r["event_id"] for r in rows})))}
            new = [r for r in rows if (r["event_id"], r["gemeentecode"]) not in have]
            if new:
                try:
                    conn.execute(insert(doelen), new)
                except IntegrityError:  # another writer was first: its rows stand
                    return 0
        return len(new)

    def get(self, event_id: str, gemeentecode: str) -> Doel | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(doelen).where(doelen.c.event_id == str(event_id),
                                                  doelen.c.gemeentecode == gemeentecode)).first()
        return None if r is None else _doel(r)

    def save(self, d: Doel) -> None:
        """State, ack ids and notices of an existing row."""
        row = _row(d)
        with self.engine.begin() as conn:
            conn.execute(update(doelen).where(doelen.c.event_id == d.event_id,
                                              doelen.c.gemeentecode == d.gemeentecode).values(
                state=row["state"], ack_ids=row["ack_ids"], gemeld=row["gemeld"], changed_at_ms=row["changed_at_ms"]))

    def open_doelen(self) -> list[Doel]:
        """Rows that can still miss a deadline: not VERWERKT or GEWEIGERD yet."""
        with self.engine.connect() as conn:
            return [_doel(r) for r in conn.execute(select(doelen).where(doelen.c.state.not_in(EINDSTATUS)))]

    def tellingen(self, gemeentecode: str | None = None) -> list[Telling]:
        q = select(doelen.c.gemeentecode, doelen.c.state, doelen.c.gemeld, doelen.c.routed_at_ms)
        if gemeentecode:
            q = q.where(doelen.c.gemeentecode == gemeentecode)
        per: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for code, state, gemeld, routed_ms in conn.execute(q):
                t = per.setdefault(code, {"routed": 0, "ontvangen": 0, "verwerkt": 0, "geweigerd": 0, "overdue": 0,
                                          "oudste": None})
                t["routed"] += 1
                if state != ROUTED:
                    t[state.lower()] += 1
                elif t["oudste"] is None or routed_ms < t["oudste"]:
                    t["oudste"] = routed_ms
                t["overdue"] += bool(gemeld)
        return [Telling(code, v["routed"], v["ontvangen"], v["verwerkt"], v["geweigerd"], v["overdue"],
                        _at(v["oudste"])) for code, v in sorted(per.items())]
