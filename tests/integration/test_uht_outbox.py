"""UHT's outbox relay on the real broker, SQLite and PostgreSQL: valid rows published once and
marked with their position, invalid rows marked and never published, a second run sends nothing,
and the polling relay stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from herstelbus.connectors.uht.outbox import add, open_engine, outbox
from herstelbus.core.contracts import parse_json_event
from tests.integration.postgres import db_url, pg_admin_url  # noqa: F401 - fixtures
from tests.integration.uht_kit import fresh_events, provision_topics, read_ingest

pytestmark = pytest.mark.kafka


@pytest.fixture(params=["sqlite", "postgresql"])
def outbox_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'outbox.sqlite'}"
    return request.getfixturevalue("db_url")


def _relay(kafka, url: str, *args: str, **popen) -> subprocess.CompletedProcess | subprocess.Popen:
    cmd = [sys.executable, "-m", "herstelbus", "uht", "outbox", *args]
    env = {**os.environ, **kafka.env, "HERSTELBUS_OUTBOX_URL": url}
    if popen:
        return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, text=True, **popen)
    return subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)


def _fill(url: str, events: list[dict]) -> dict[int, dict]:
    engine = open_engine(url)
    try:
        with engine.begin() as conn:  # UHT's own transaction
            ids = {add(conn, e["type"], {k: v for k, v in e.items() if k != "type"}): e for e in events}
            ids[add(conn, "overdracht", "{not json")] = {"event_id": None}
            ids[add(conn, "ontvangstbevestiging", json.dumps(events[0]))] = {"event_id": None}
        return ids
    finally:
        engine.dispose()


def _rows(url: str) -> dict[int, dict]:
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            return {r.id: r._asdict() for r in conn.execute(select(outbox))}
    finally:
        engine.dispose()


def _valid(event: dict) -> bool:
    try:
        parse_json_event(event)
    except Exception:
        return False
    return True


def test_once_publishes_valid_rows_marks_them_and_sends_nothing_twice(kafka, outbox_url) -> None:
    provision_topics(kafka.bootstrap)
    events = list({e["event_id"]: e for e in fresh_events(120, seed=41)}.values())
    assert not all(_valid(e) for e in events)  # an invalid BSN is among them
    filled = _fill(outbox_url, events)

    first = _relay(kafka, outbox_url, "--once")
    assert first.returncode == 0, first.stderr
    valid = {row_id: e for row_id, e in filled.items() if e["event_id"] and _valid(e)}
    assert first.stdout.startswith(f"outbox: {len(valid)} sent, {len(filled) - len(valid)} invalid")
    rows = _rows(outbox_url)
    by_id = read_ingest(kafka.bootstrap)
    for row_id, row in rows.items():
        if row_id in valid:
            (message,) = by_id[valid[row_id]["event_id"]]
            assert row["sent_at"] is not None and row["error_reason"] is None
            assert (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]) == \
                (message.topic, message.partition, message.offset)
        else:
            assert row["sent_at"] is None and row["error_reason"] in (
                "BSN_ONGELDIG", "JSON_ONGELDIG", "TYPE_NIET_VAN_UHT")
            assert not by_id.get(filled[row_id]["event_id"] or "")
    assert list(valid) == sorted(valid)  # sent in id order: offsets rise per partition
    offsets: dict = {}
    for row_id in sorted(valid):
        key = (rows[row_id]["kafka_topic"], rows[row_id]["kafka_partition"])
        assert rows[row_id]["kafka_offset"] > offsets.get(key, -1)
        offsets[key] = rows[row_id]["kafka_offset"]

    again = _relay(kafka, outbox_url, "--once")
    assert again.returncode == 0 and again.stdout.startswith("outbox: 0 sent, 0 invalid"), again.stderr
    assert _rows(outbox_url) == rows
    by_id = read_ingest(kafka.bootstrap)
    assert all(len(by_id[e["event_id"]]) == 1 for e in valid.values())


def test_polling_relay_picks_up_new_rows_and_stops_on_sigterm(kafka, tmp_path) -> None:
    provision_topics(kafka.bootstrap)
    url = f"sqlite:///{tmp_path / 'outbox.sqlite'}"
    open_engine(url).dispose()
    proc = _relay(kafka, url, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(2)  # the relay is polling an empty outbox
        events = [e for e in fresh_events(10, seed=42) if _valid(e)][:5]
        filled = _fill(url, events)
        deadline = time.monotonic() + 60
        while any(r["sent_at"] is None and r["error_reason"] is None for r in _rows(url).values()):
            assert time.monotonic() < deadline and proc.poll() is None, "relay did not send the new rows"
            time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.startswith(f"outbox: {len(events)} sent, {len(filled) - len(events)} invalid")
