"""The sql sink on a SQLite file: rows with the jsonl line's values, idempotent across restarts, gaps."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, select

from herstelbus.connectors.gemeente.jsonl import regel
from herstelbus.connectors.gemeente.sinks import SinkFout, open_sink
from herstelbus.connectors.gemeente.sqlsink import SqlSink, herstel_events

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
    first = geopend(volgnummer=1)
    bsn = first.data["persoon"]["bsn"]
    sink = open_sink(f"sql:{url}", GM)
    assert sink.schrijf([first]).gaten == ()
    sink.close()
    sink = open_sink(f"sql:{url}", GM)
    (gat,) = sink.schrijf([geopend(bsn=bsn, volgnummer=3)]).gaten
    assert (gat.subject, gat.verwacht, gat.gekregen, gat.soort) == (first.subject, 2, 3, "gat")
    (te_laat,) = sink.schrijf([geopend(bsn=bsn, volgnummer=2)]).gaten
    assert te_laat.soort == "te_laat"
    sink.close()


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
