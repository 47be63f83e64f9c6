"""UHT's transactional outbox: UHT systems insert an event in the same database transaction as the
change it reports (:func:`add`); the relay (``herstelbus uht outbox``) publishes unsent rows to
the ingest topics in id order and marks each one sent, with its topic/partition/offset, only after
the broker acknowledged it (acks=all).

Delivery is at least once: a crash between the broker's ack and the mark sends the row again on
restart. That is safe because the router drops an event_id it already routed (receipt DUPLICATE).
Run one relay per outbox; two would both send every row (still deduplicated, but twice the load).

A row that breaks the contract is marked with its reason code and field path, never published,
and never blocks the rows after it. Database: ``HERSTELBUS_OUTBOX_URL`` (SQLAlchemy URL), default
SQLite ``<data dir>/outbox.sqlite``; PostgreSQL by ``postgresql+psycopg://...``.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from herstelbus.core import contracts
from herstelbus.core.contracts.jsonlines import TYPE_KEY, loads
from herstelbus.errors import HerstelbusError
from herstelbus.keystore.tables import UtcDateTime  # the same UTC-in, UTC-out column on SQLite and PostgreSQL
from herstelbus.logs import get_logger
from herstelbus.settings import Settings, get_settings

from .bestand import TYPE_NIET_VAN_UHT, UHT_TYPES
from .publish import new_producer, send

log = get_logger(__name__)
SQLITE_FILE = "outbox.sqlite"
BATCH = 500  # rows per send-and-mark round: bounds what a crash re-sends

_PENDING_SQL = "sent_at IS NULL AND error_reason IS NULL"
metadata = MetaData()
outbox = Table(
    "uht_outbox",
    metadata,
    # BIGINT on PostgreSQL; SQLite only autoincrements an INTEGER PRIMARY KEY.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_type", String(32), nullable=False),
    Column("payload", Text, nullable=False),  # the contract's JSON form; persoonsgegevens, so UHT's own DB
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    Column("kafka_topic", String(249)),
    Column("kafka_partition", Integer),
    Column("kafka_offset", BigInteger),
    Column("error_reason", String(64)),  # set: invalid, never published
    Column("error_path", String(200)),
    # The relay's one query: unsent, not invalid, by id.
    Index("ix_uht_outbox_pending", "id", postgresql_where=text(_PENDING_SQL), sqlite_where=text(_PENDING_SQL)),
)
PENDING = (outbox.c.sent_at.is_(None)) & (outbox.c.error_reason.is_(None))


class OutboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HERSTELBUS_", frozen=True, extra="ignore")

    outbox_url: SecretStr = Field(default=SecretStr(""), description="SQLAlchemy URL; empty: SQLite in the data dir.")

    def database_url(self, base: Settings | None = None) -> str:
        url = self.outbox_url.get_secret_value()
        return url or f"sqlite:///{((base or get_settings()).data_dir / SQLITE_FILE).resolve()}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL: UHT's writers and the relay work at the same time; busy_timeout: they wait, not fail.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def open_engine(url: str | None = None) -> Engine:
    """Connect (``HERSTELBUS_OUTBOX_URL`` when no URL is given) and create the table if missing."""
    try:
        u = make_url(url or OutboxSettings().database_url())
    except ArgumentError:
        raise HerstelbusError("HERSTELBUS_OUTBOX_URL is not a database URL") from None
    if u.get_backend_name() == "sqlite":
        if u.database not in (None, "", ":memory:"):
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(u, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    elif u.get_backend_name() == "postgresql":
        try:
            engine = create_engine(u, pool_pre_ping=True)
        except (ImportError, NoSuchModuleError):
            raise HerstelbusError("the outbox on PostgreSQL needs psycopg: "
                                  "pip install 'herstelbus[postgres]'") from None
    else:
        raise HerstelbusError(f"unsupported outbox database {u.get_backend_name()!r}: use sqlite or postgresql")
    metadata.create_all(engine, checkfirst=True)
    return engine


def add(conn: Connection, record_type: str, json_event: dict[str, Any] | str,
        now: datetime | None = None) -> int:
    """Put one event (contract JSON form, with or without its ``type`` key) in the outbox, inside
    the caller's transaction; returns the row id. Validation happens in the relay, so a bad event
    never rolls back UHT's own change: it is marked invalid there and reported."""
    payload = json_event if isinstance(json_event, str) else json.dumps(json_event, ensure_ascii=False)
    row = {"event_type": record_type, "payload": payload, "created_at": now or datetime.now(timezone.utc)}
    return conn.execute(insert(outbox).values(**row)).inserted_primary_key[0]


def _parse(event_type: str, payload: str) -> tuple[str, dict[str, Any]]:
    if event_type not in UHT_TYPES:
        raise contracts.InvalidEvent([contracts.ValidationError(TYPE_NIET_VAN_UHT, "event_type")])
    obj = loads(payload)
    if isinstance(obj, dict) and obj.get(TYPE_KEY, event_type) != event_type:
        raise contracts.InvalidEvent([contracts.ValidationError(contracts.errors.TYPE_ONGELDIG, TYPE_KEY)])
    if isinstance(obj, dict):
        obj = {TYPE_KEY: event_type, **{k: v for k, v in obj.items() if k != TYPE_KEY}}
    return contracts.parse_json_event(obj)


@dataclass
class RelayStats:
    sent: int = 0
    invalid: Counter = field(default_factory=Counter)  # reason -> rows

    def line(self) -> str:
        why = ", ".join(f"{r} {c}" for r, c in self.invalid.most_common())
        return f"outbox: {self.sent} sent, {sum(self.invalid.values())} invalid" + (f" ({why})" if why else "")


class Relay:
    """Outbox rows -> ingest topics. ``round()`` handles one batch; ``run()`` loops."""

    def __init__(self, engine: Engine, bootstrap: str, batch: int = BATCH) -> None:
        self.engine = engine
        self.batch = batch
        self.producer = new_producer(bootstrap)
        self.stats = RelayStats()

    def close(self) -> None:
        self.producer.close()

    def round(self) -> int:
        """Send and mark up to one batch of pending rows; returns how many rows it handled."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(outbox.c.id, outbox.c.event_type, outbox.c.payload)
                                .where(PENDING).order_by(outbox.c.id).limit(self.batch)).all()
        valid: list[tuple[int, tuple[str, dict[str, Any]]]] = []
        invalid: list[tuple[int, contracts.InvalidEvent]] = []
        for row in rows:
            try:
                valid.append((row.id, _parse(row.event_type, row.payload)))
            except contracts.InvalidEvent as exc:
                invalid.append((row.id, exc))
        if invalid:
            with self.engine.begin() as conn:
                for row_id, exc in invalid:
                    conn.execute(update(outbox).where(outbox.c.id == row_id)
                                 .values(error_reason=exc.reason, error_path=exc.path[:200]))
                    log.warning("outbox row invalid, not published", row=row_id, reason=exc.reason, path=exc.path)
                    self.stats.invalid[exc.reason] += 1
        if valid:
            futures = send(self.producer, (parsed for _, parsed in valid))
            acked, failed = [], 0
            for (row_id, (_, record)), future in zip(valid, futures):
                try:
                    meta = future.get()
                except Exception as exc:  # noqa: BLE001 - any send failure: row stays pending, retried
                    failed += 1
                    log.warning("outbox row not acknowledged", row=row_id, event_id=str(record["event_id"]),
                                error=type(exc).__name__)
                    continue
                acked.append((row_id, meta))
            sent_at = datetime.now(timezone.utc)
            with self.engine.begin() as conn:  # only now, after the broker's ack
                for row_id, meta in acked:
                    conn.execute(update(outbox).where(outbox.c.id == row_id).values(
                        sent_at=sent_at, kafka_topic=meta.topic, kafka_partition=meta.partition,
                        kafka_offset=meta.offset))
            self.stats.sent += len(acked)
            if failed:
                raise HerstelbusError(f"outbox: the broker did not acknowledge {failed} rows; "
                                      "they stay unsent and go out on the next run")
        return len(rows)

    def run(self, once: bool, stop: threading.Event, poll_s: float = 1.0) -> RelayStats:
        """``once``: until no pending rows remain. Otherwise until ``stop`` is set (SIGTERM/SIGINT)."""
        while not stop.is_set():
            handled = self.round()
            if once and handled == 0:
                break
            if not once and handled < self.batch:  # a full batch means more are waiting: no pause
                stop.wait(poll_s)
        return self.stats
