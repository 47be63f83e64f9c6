"""The sql sink on a SQLite file: rows with the jsonl line's values, idempotent across restarts, gaps per
dossier across restarts, an old per-subject table refused."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, select, text

from herstelbus.connectors.gemeente.jsonl import regel
from herstelbus.connectors.gemeente.sinks import SinkFout, open_sink
from herstelbus.connectors.gemeente.volgorde import Gat
from herstelbus.connectors.gemeente.sqlsink import SqlSink, herstel_events
from herstelbus.connectors.gemeente.volgorde import reekssleutel

from .kit import GM, geopend


def _rows(url: str) -> list[dict]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(herstel_events).order_by(herstel_events.c.sequence))]
    finally:
        engine.dispose()


def check_idempotent_and_durable(url: str) -> None:
    """Shared with the PostgreSQL variant (tests/integration/test_sql_sink_postgres.py)."""
    events = [geopend(), geopend("pauzeknop")]
    sink = open_sink(f"sql:{url}", GM)
    assert sink.schrijf(events[:1]).nieuw == (events[0].event_id,)
    sink.close()
    sink = open_sink(f"sql:{url}", GM)  # a restart: only the database remembers
    verslag = sink.schrijf([*events, events[1]])
    assert verslag.nieuw == (events[1].event_id,)
    assert verslag.dubbel == (events[0].event_id, events[1].event_id)
    assert sink.schrijf(events).nieuw == ()
    sink.close()
    rows = {r["event_id"]: r for r in _rows(url)}
    assert set(rows) == {e.event_id for e in events}
    for e in events:
        want = regel(e)
        row = rows[e.event_id]
        assert {k: row[k] for k in want if k != "data"} == {k: v for k, v in want.items() if k != "data"}
        assert json.loads(row["data"]) == want["data"] and row["received_at"] is not None


def check_gaps_across_restarts(url: str) -> None:
    """Shared with the PostgreSQL variant: volgnummer per dossier, its two persons interleaved, the
    last one per dossier persisted (``reeks``), so a new sink on the same database continues it."""
    ouder = geopend(volgnummer=1)
    d, bsn_ouder = ouder.data["dossiernummer"], ouder.data["persoon"]["bsn"]
    partner = geopend("pauzeknop", dossiernummer=d, volgnummer=2)
    assert partner.subject != ouder.subject
    sink = open_sink(f"sql:{url}", GM)
    assert sink.schrijf([ouder, partner]).gaten == ()  # two persons, one series: 1, 2
    sink.close()
    sink = open_sink(f"sql:{url}", GM)  # a restart: the database holds the dossier's last volgnummer
    assert sink.schrijf([geopend("erkenning", bsn_ouder, dossiernummer=d, volgnummer=3)]).gaten == ()
    assert sink.schrijf([geopend("overdracht", volgnummer=9)]).gaten == ()  # another dossier: its baseline
    vijf = geopend("pauzeknop", partner.data["persoon"]["bsn"], dossiernummer=d, volgnummer=5)
    (gat,) = sink.schrijf([vijf]).gaten
    assert gat == Gat(vijf.event_id, partner.subject, 4, 5, "gat")
    sink.close()
    sink = open_sink(f"sql:{url}", GM)
    vier = geopend("pauzeknop", bsn_ouder, dossiernummer=d, volgnummer=4)
    (te_laat,) = sink.schrijf([vier]).gaten
    assert te_laat == Gat(vier.event_id, ouder.subject, 6, 4, "te_laat")
    sink.close()
    rows = [r for r in _rows(url) if json.loads(r["data"])["dossiernummer"] == d]
    assert [r["sequence"] for r in rows] == [1, 2, 3, 4, 5]
    assert {r["reeks"] for r in rows} == {reekssleutel(GM, d)} and d not in rows[0]["reeks"]


def test_idempotent_by_event_id_within_and_across_restarts(tmp_path) -> None:
    check_idempotent_and_durable(f"sqlite:///{tmp_path / 'db' / 'events.db'}")


def test_sequence_gap_is_reported_across_restarts(tmp_path) -> None:
    check_gaps_across_restarts(f"sqlite:///{tmp_path / 'events.db'}")


def test_a_failed_transaction_stores_nothing_and_raises_without_data(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    sink = SqlSink(url, GM)
    e = geopend()
    with sink.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TRIGGER nee BEFORE INSERT ON herstel_events BEGIN SELECT RAISE(ABORT, 'nee'); END")
    with pytest.raises(SinkFout) as exc:
        sink.schrijf([e])
    assert e.data["persoon"]["bsn"] not in str(exc.value) and e.subject not in str(exc.value)
    assert _rows(url) == []
    sink.close()


@pytest.mark.parametrize("spec", ["sql:nope", "sql:mysql://h/db", "sql:sqlite://", "sql:sqlite:///:memory:"])
def test_bad_urls_are_clear_errors(spec: str) -> None:
    with pytest.raises(SinkFout, match="sql sink"):
        open_sink(spec, GM)


_OLD_TABLE = """CREATE TABLE herstel_events (gemeentecode VARCHAR(6) NOT NULL, event_id VARCHAR(36) NOT NULL,
    type VARCHAR(32) NOT NULL, subject VARCHAR(128) NOT NULL, routing_reason VARCHAR(32) NOT NULL,
    sequence BIGINT NOT NULL, data TEXT NOT NULL, received_at DATETIME NOT NULL,
    PRIMARY KEY (gemeentecode, event_id))"""


def test_an_old_per_subject_table_is_refused_clearly_and_the_documented_migration_works(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    e = geopend(volgnummer=1)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(_OLD_TABLE))
        conn.execute(text("INSERT INTO herstel_events VALUES (:g, :id, 'overdracht', :s, 'WOONGEMEENTE', 1, :data, "
                          "'2026-01-01 00:00:00')"),
                     {"g": GM, "id": e.event_id, "s": e.subject, "data": json.dumps(regel(e)["data"])})
    with pytest.raises(SinkFout, match="no column reeks.*migrate") as exc:
        SqlSink(url, GM)
    assert e.data["dossiernummer"] not in str(exc.value)
    with engine.begin() as conn:  # the sqlsink docstring's migration, step 1
        conn.execute(text("ALTER TABLE herstel_events ADD COLUMN reeks VARCHAR(32)"))
    with pytest.raises(SinkFout, match="rows without reeks"):
        SqlSink(url, GM)  # half done: still refused
    with engine.begin() as conn:  # step 2
        for g, event_id, data in conn.execute(text("SELECT gemeentecode, event_id, data FROM herstel_events")).all():
            conn.execute(text("UPDATE herstel_events SET reeks = :r WHERE gemeentecode = :g AND event_id = :id"),
                         {"r": reekssleutel(g, json.loads(data)["dossiernummer"]), "g": g, "id": event_id})
    engine.dispose()
    sink = SqlSink(url, GM)
    (gat,) = sink.schrijf([geopend(dossiernummer=e.data["dossiernummer"], volgnummer=3)]).gaten
    assert (gat.verwacht, gat.gekregen) == (2, 3)
    sink.close()
