"""``sql:URL``: events as rows of ``herstel_events`` in SQLite or PostgreSQL (SQLAlchemy Core).

Columns: ``event_id``, ``type``, ``gemeentecode``, ``subject``, ``routing_reason``, ``sequence``,
``data`` (the jsonl sink's ``data``: the event in the contract's JSON form, as JSON text),
``reeks`` and ``received_at``. Key: (``gemeentecode``, ``event_id``) — a pause fanned out to two
gemeenten keeps its event_id, and they may share a database. Idempotent: each ``schrijf`` is one
transaction of ``INSERT ... ON CONFLICT DO NOTHING RETURNING event_id``, so the database itself
tells new from already stored, also with several writers. Durable: the commit has returned (SQLite
with ``synchronous=FULL``, PostgreSQL with its default ``synchronous_commit``).

Sequence state: volgnummer increases per dossier, so the last sequence per dossier is read at
start (``max(sequence)`` grouped by ``reeks``), as the jsonl sink does; ids stay in the database.
``reeks`` is ``resultaat.reekssleutel(gemeentecode, dossiernummer)``: an unkeyed digest, so as
personal as the dossiernummer in ``data`` beside it (guessable numbers reverse it); it is stored
so that no plaintext dossiernummer needs a column of its own, and it never leaves this table (a
``Gat`` names event id and pseudonym only). Do not export or share it as if it were a pseudonym.

Forget notices (``vergeet``): one transaction deletes this gemeente's rows of the erased subjects
(``DELETE ... WHERE gemeentecode = ... AND subject IN (...)``); other gemeenten' rows in a shared
database are not touched. Reclaiming the freed pages (VACUUM) is the database owner's routine.

Tables made before ``reeks`` existed (per-subject sequence state) are refused at start with a
clear ``SinkFout``. Migrate such a table once, offline (``data`` holds the dossiernummer)::

    ALTER TABLE herstel_events ADD COLUMN reeks VARCHAR(32);
    -- then, in Python, for every row: reeks = reekssleutel(gemeentecode, json.loads(data)["dossiernummer"])

or point ``--sink`` at a new database and reset the consumer group's offsets (only what the
topic still retains arrives again).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger, Column, DateTime, MetaData, String, Table, Text, create_engine, delete, event, func, inspect, select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from .jsonl import regel
from .resultaat import Geopend
from .sinks import Schrijfverslag, SinkFout
from .volgorde import Volgorde

metadata = MetaData()
herstel_events = Table(
    "herstel_events", metadata,
    Column("gemeentecode", String(6), primary_key=True),
    Column("event_id", String(36), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("subject", String(128), nullable=False),  # pseudonym
    Column("routing_reason", String(32), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("data", Text, nullable=False),  # personal data: the gemeente's own database only
    Column("reeks", String(32), nullable=False,  # the sequence series: the dossier (reekssleutel)
           comment="digest of gemeentecode+dossiernummer: personal data, reversible by guessing; never export"),
    Column("received_at", DateTime(timezone=True), nullable=False),
)
_INSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
_CHUNK = 500  # subjects per IN (...) list


def _sqlite_durable(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=FULL")  # a returned commit is on disk
    cur.execute("PRAGMA busy_timeout=30000")  # a second writer waits instead of failing
    cur.close()


def _engine(url: str) -> Engine:
    try:
        u = make_url(url)
    except ArgumentError:
        raise SinkFout("sql sink: not a database URL, e.g. sql:sqlite:///events.db") from None
    backend = u.get_backend_name()
    if backend not in _INSERT:
        raise SinkFout(f"sql sink: unsupported database {backend!r}; use sqlite or postgresql")
    try:
        if backend == "sqlite":
            if u.database in (None, "", ":memory:"):
                raise SinkFout("sql sink: an in-memory SQLite database is not durable; give a file")
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        # hide_parameters: a failing statement's message must never carry the event data
        engine = create_engine(u, hide_parameters=True, pool_pre_ping=backend == "postgresql")
    except (ImportError, NoSuchModuleError):
        raise SinkFout("sql sink on PostgreSQL needs psycopg: pip install 'herstelbus[postgres]' "
                       "and a postgresql+psycopg:// URL") from None
    except OSError as exc:
        raise SinkFout(f"sql sink: {exc.strerror or type(exc).__name__}") from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_durable)
    return engine


class SqlSink:
    def __init__(self, url: str, gemeentecode: str) -> None:
        self.gemeentecode = gemeentecode
        self.engine = _engine(url)
        self.where = self.engine.url.render_as_string(hide_password=True)
        self._insert = _INSERT[self.engine.dialect.name]
        t = herstel_events
        laatste: list[Any] = []
        try:
            with self.engine.begin() as conn:
                metadata.create_all(conn, checkfirst=True)
                present = {col["name"] for col in inspect(conn).get_columns(t.name)}
                missing = [c.name for c in t.columns if c.name not in present]
                if not missing:
                    laatste = conn.execute(select(t.c.reeks, func.max(t.c.sequence))
                                           .where(t.c.gemeentecode == gemeentecode).group_by(t.c.reeks)).all()
        except SQLAlchemyError as exc:
            self.engine.dispose()
            raise SinkFout(f"sql sink {self.where}: {type(exc).__name__}") from None
        if missing or any(reeks is None for reeks, _ in laatste):
            self.engine.dispose()
            what = (f"has no column {', '.join(missing)} (made by an older herstelbus: sequence state per subject)"
                    if missing else "has rows without reeks (an unfinished migration)")
            raise SinkFout(f"sql sink {self.where}: table {t.name} {what}; migrate it as the docstring of "
                           "herstelbus.connectors.gemeente.sqlsink says, or use a new database")
        self.volgorde = Volgorde(dict(laatste))

    def schrijf(self, events: Sequence[Geopend]) -> Schrijfverslag:
        if not events:
            return Schrijfverslag()
        now = datetime.now(timezone.utc)
        rows, seen = [], set()
        for e in events:
            if e.event_id not in seen:  # twice in one batch: one row, the second is dubbel
                seen.add(e.event_id)
                line = regel(e)
                rows.append({**line, "data": json.dumps(line["data"], ensure_ascii=False), "reeks": e.reeks,
                             "received_at": now})
        stmt = self._insert(herstel_events).on_conflict_do_nothing().returning(herstel_events.c.event_id)
        try:
            with self.engine.begin() as conn:
                stored = set(conn.scalars(stmt, rows).all())
        except SQLAlchemyError as exc:  # rolled back: nothing stored, nothing may be committed
            raise SinkFout(f"sql sink {self.where}: {type(exc).__name__}") from None
        nieuw, dubbel, gaten = [], [], []
        for e in events:
            if e.event_id in stored:
                stored.discard(e.event_id)
                nieuw.append(e.event_id)
                gat = self.volgorde.volg(e)
                if gat is not None:
                    gaten.append(gat)
            else:
                dubbel.append(e.event_id)
        return Schrijfverslag(tuple(nieuw), tuple(dubbel), tuple(gaten))

    def vergeet(self, subjects: Sequence[str], *, audit_ids: Mapping[str, str] | None = None) -> int:
        """Delete this gemeente's rows of these subjects, in one transaction (all or none). Returns
        the number of rows deleted (0: nothing held of them, still applied)."""
        weg = sorted(set(subjects))
        if not weg:
            return 0
        t = herstel_events
        try:
            with self.engine.begin() as conn:
                return sum(conn.execute(delete(t).where(t.c.gemeentecode == self.gemeentecode,
                                                        t.c.subject.in_(weg[i:i + _CHUNK]))).rowcount
                           for i in range(0, len(weg), _CHUNK))
        except SQLAlchemyError as exc:  # rolled back: nothing deleted, nothing may be confirmed
            raise SinkFout(f"sql sink {self.where}: forget notices not applied ({type(exc).__name__})") from None

    def close(self) -> None:
        self.engine.dispose()


__all__ = ["SqlSink", "herstel_events", "metadata"]
