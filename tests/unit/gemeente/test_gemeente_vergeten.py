"""Forget notices (vergeetverzoeken) at the gemeente: each sink's ``vergeet`` (jsonl rewrites its
file atomically without the subject's lines, sql deletes this gemeente's rows, webhook passes one
signed notice per subject on), and the consume loop that pulls notices, applies them and confirms
only what the sink applied. The key store is a stand-in here; the real one is in
tests/integration/test_keystore_http.py and tests/integration/test_vergeetverzoeken.py."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import create_engine, select

from herstelbus.connectors.gemeente.jsonl import JsonlSink
from herstelbus.connectors.gemeente.sdk import Batch
from herstelbus.connectors.gemeente.sinks import SinkFout, open_sink
from herstelbus.connectors.gemeente.sleutelkluis import SleutelkluisFout, Vergeetverzoek
from herstelbus.connectors.gemeente.sqlsink import SqlSink, herstel_events
from herstelbus.connectors.gemeente.verwerking import consume
from herstelbus.connectors.gemeente.webhook import (
    SIGNATURE_HEADER, TIMESTAMP_HEADER, Backoff, WebhookSink, verify_signature,
)

from .kit import GM, geopend

OTHER_GM = "GM0599"


def _two_people():
    """Two events of one person (``gone``) and one of another (``kept``)."""
    gone = geopend(volgnummer=1)
    d, bsn = gone.data["dossiernummer"], gone.data["persoon"]["bsn"]
    return [gone, geopend("erkenning", bsn, dossiernummer=d, volgnummer=2)], [geopend()]


def _lines(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


# ---- jsonl ----------------------------------------------------------------------------------------


def test_jsonl_rewrites_the_file_without_the_subjects_lines_and_keeps_appending(tmp_path) -> None:
    gone, kept = _two_people()
    sink = JsonlSink(tmp_path, GM)
    sink.schrijf([gone[0], kept[0], gone[1]])
    path = tmp_path / f"{GM}.jsonl"
    os.chmod(path, 0o640)
    before = path.stat().st_ino

    assert sink.vergeet([gone[0].subject]) == 2
    assert [o["event_id"] for o in _lines(path)] == [kept[0].event_id]
    assert path.stat().st_ino != before and path.stat().st_mode & 0o777 == 0o640  # replaced, same mode
    assert not list(tmp_path.glob(".*.tmp"))
    assert gone[0].data["persoon"]["bsn"] not in path.read_text()

    later = geopend()
    assert sink.schrijf([later]).nieuw == (later.event_id,)  # appends go to the new file
    sink.close()
    assert [o["event_id"] for o in _lines(path)] == [kept[0].event_id, later.event_id]
    reopened = JsonlSink(tmp_path, GM)  # a restart reads the rewritten file
    assert reopened.schrijf([kept[0], later]).nieuw == ()
    reopened.close()


def test_jsonl_a_subject_it_never_had_removes_nothing_and_does_not_rewrite(tmp_path) -> None:
    gone, kept = _two_people()
    sink = JsonlSink(tmp_path, GM)
    sink.schrijf(kept)
    path = tmp_path / f"{GM}.jsonl"
    inode, text = path.stat().st_ino, path.read_text()
    assert sink.vergeet([gone[0].subject]) == 0 and sink.vergeet([]) == 0
    assert path.stat().st_ino == inode and path.read_text() == text
    sink.close()


def test_jsonl_a_failed_replace_leaves_the_file_whole_and_raises_without_data(tmp_path, monkeypatch) -> None:
    gone, kept = _two_people()
    sink = JsonlSink(tmp_path, GM)
    sink.schrijf([*gone, *kept])
    path = tmp_path / f"{GM}.jsonl"
    text = path.read_text()

    def broken(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(SinkFout, match="forget notices not applied") as exc:
        sink.vergeet([gone[0].subject])
    assert gone[0].subject not in str(exc.value) and gone[0].data["persoon"]["bsn"] not in str(exc.value)
    assert path.read_text() == text and not list(tmp_path.glob(".*.tmp"))
    monkeypatch.undo()
    assert sink.vergeet([gone[0].subject]) == 2  # the next round applies it
    sink.close()


def test_jsonl_a_temp_file_left_by_a_crash_is_removed_at_start(tmp_path) -> None:
    (tmp_path / f".{GM}.jsonl.vergeet.tmp").write_text("half")
    JsonlSink(tmp_path, GM).close()
    assert not (tmp_path / f".{GM}.jsonl.vergeet.tmp").exists()


# ---- sql ------------------------------------------------------------------------------------------


def check_sql_vergeet(url: str) -> None:
    """Shared with the PostgreSQL variant (tests/integration/test_vergeetverzoeken.py)."""
    gone, kept = _two_people()
    sink, other = open_sink(f"sql:{url}", GM), SqlSink(url, OTHER_GM)
    sink.schrijf([*gone, *kept])
    elsewhere = dataclasses.replace(gone[0], gemeentecode=OTHER_GM)  # the same person, routed to another gemeente
    other.schrijf([elsewhere])

    assert sink.vergeet([gone[0].subject, gone[0].subject]) == 2
    assert sink.vergeet([gone[0].subject]) == 0  # repeated: nothing left, still applied
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(herstel_events.c.gemeentecode, herstel_events.c.event_id)
                                .where(herstel_events.c.event_id.in_([e.event_id for e in (*gone, *kept)]))).all()
    finally:
        engine.dispose()
    assert sorted(rows) == sorted([(GM, kept[0].event_id), (OTHER_GM, elsewhere.event_id)])
    other.close()
    sink.close()


def test_sql_deletes_only_this_gemeentes_rows_of_the_subjects(tmp_path) -> None:
    check_sql_vergeet(f"sqlite:///{tmp_path / 'events.db'}")


def test_sql_a_failed_delete_removes_nothing_and_raises_without_data(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    gone, _ = _two_people()
    sink = SqlSink(url, GM)
    sink.schrijf(gone)
    with sink.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TRIGGER nee BEFORE DELETE ON herstel_events BEGIN SELECT RAISE(ABORT, 'nee'); END")
    with pytest.raises(SinkFout, match="forget notices not applied") as exc:
        sink.vergeet([gone[0].subject])
    assert gone[0].subject not in str(exc.value)
    with sink.engine.connect() as conn:
        assert len(conn.execute(select(herstel_events.c.event_id)).all()) == 2
    sink.close()


# ---- webhook --------------------------------------------------------------------------------------

SECRET, TOKEN = "v" * 40, "token-456"


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, statuses: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.statuses, self.seen, self.bad = statuses, [], []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/herstel/events"


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def log_message(self, *_: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        if not verify_signature(SECRET.encode(), self.headers[TIMESTAMP_HEADER] or "", body,
                                self.headers[SIGNATURE_HEADER] or ""):
            self.server.bad.append("signature")
        if self.headers["Authorization"] != f"Bearer {TOKEN}" or self.headers["Content-Type"] != "application/json":
            self.server.bad.append("headers")
        self.server.seen.append((status, self.headers["Idempotency-Key"], json.loads(body)))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def receiver(request) -> Iterator[_Receiver]:
    server = _Receiver(list(getattr(request, "param", [])))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("receiver", [[503]], indirect=True)
def test_webhook_sends_one_signed_notice_per_subject_retrying_until_a_2xx(receiver) -> None:
    a, b = geopend().subject, geopend().subject
    sink = WebhookSink(receiver.url, GM, secret=SECRET, token=TOKEN, backoff=Backoff(base_s=0.01, cap_s=0.02))
    assert sink.vergeet([a, b, a], audit_ids={a: "audit-a", b: "audit-b"}) == 2
    assert receiver.bad == []
    assert [(s, k, body) for s, k, body in receiver.seen] == [
        (503, f"vergeetverzoek:{a}", {"type": "vergeetverzoek", "subject": a, "audit_id": "audit-a"}),
        (200, f"vergeetverzoek:{a}", {"type": "vergeetverzoek", "subject": a, "audit_id": "audit-a"}),
        (200, f"vergeetverzoek:{b}", {"type": "vergeetverzoek", "subject": b, "audit_id": "audit-b"}),
    ]


@pytest.mark.parametrize("receiver", [[200, 400]], indirect=True)
def test_webhook_a_refused_notice_raises_so_none_is_confirmed(receiver) -> None:
    a, b = geopend().subject, geopend().subject
    sink = WebhookSink(receiver.url, GM, secret=SECRET, token=TOKEN)
    with pytest.raises(SinkFout, match=r"HTTP 400 for forget notice for p1:"):
        sink.vergeet([a, b])
    assert len(receiver.seen) == 2


# ---- the consume loop -------------------------------------------------------------------------------


class _Kluis:
    """The key store's two forget-notice calls, with its rule: only pending notices are confirmed."""

    def __init__(self, subjects: list[str], fail_fetch: bool = False) -> None:
        self.pending = {s: f"audit-{i}" for i, s in enumerate(subjects)}
        self.fail_fetch, self.fetches, self.confirmed = fail_fetch, 0, []

    def vergeetverzoeken(self) -> list[Vergeetverzoek]:
        self.fetches += 1
        if self.fail_fetch:
            raise SleutelkluisFout("key store answered HTTP 404 on GET /v1/gemeenten/GM0363/vergeetverzoeken")
        return [Vergeetverzoek(s, a, "2026-01-01T00:00:00+00:00") for s, a in self.pending.items()]

    def bevestig_vergeten(self, subjects: list[str]) -> int:
        done = [s for s in subjects if self.pending.pop(s, None)]
        self.confirmed += done
        return len(done)


class _Consumer:
    """``batches`` of the SDK: ``events`` in one batch, then ``idle`` empty polls (ook_leeg)."""

    gemeentecode = GM

    def __init__(self, events: list, idle: int = 0, add_notice: tuple[_Kluis, str] | None = None) -> None:
        self.events, self.idle, self.add_notice, self.committed = events, idle, add_notice, 0

    def batches(self, *, until_caught_up: bool = False, ook_leeg: bool = False) -> Iterator[Batch]:
        assert ook_leeg  # with forget notices the loop must also run while the topic is quiet
        if self.events:
            yield Batch(self.events, {"tp": 1})
        for _ in range(self.idle):
            if self.add_notice:  # an erasure while running
                kluis, subject = self.add_notice
                kluis.pending[subject] = "audit-late"
                self.add_notice = None
            yield Batch([], {})

    def commit(self, batch: Batch) -> None:
        self.committed += 1


class _FailingSink(JsonlSink):
    def vergeet(self, subjects, *, audit_ids=None) -> int:
        raise SinkFout(f"jsonl sink {self.path}: forget notices not applied (OSError)")


def test_the_loop_applies_pending_notices_at_start_and_confirms_them(tmp_path) -> None:
    gone, kept = _two_people()
    sink = JsonlSink(tmp_path, GM)
    sink.schrijf([*gone, *kept])
    nobody = geopend().subject  # erased, but this gemeente holds nothing of it: still applied and confirmed
    kluis = _Kluis([gone[0].subject, nobody])
    summary = consume(_Consumer([]), sink, None, once=True, vergeetbron=kluis, vergeet_interval_s=3600)
    sink.close()
    assert sorted(kluis.confirmed) == sorted([gone[0].subject, nobody]) and kluis.pending == {}
    assert [o["event_id"] for o in _lines(tmp_path / f"{GM}.jsonl")] == [kept[0].event_id]
    assert (summary.vergeten, summary.vergeten_verwijderd, summary.vergeet_fout) == (2, 2, False)
    assert summary.regel().endswith(", forget notices 2 (2 removed)")
    assert kluis.fetches == 2  # at start (less than a page: no second fetch) and once more before the end


def test_a_failing_sink_confirms_nothing_and_says_so(tmp_path, capsys) -> None:
    gone, kept = _two_people()
    sink = _FailingSink(tmp_path, GM)
    sink.schrijf([*gone, *kept])
    kluis = _Kluis([gone[0].subject])
    summary = consume(_Consumer([]), sink, None, once=True, vergeetbron=kluis, vergeet_interval_s=0)
    sink.close()
    assert kluis.confirmed == [] and list(kluis.pending) == [gone[0].subject]
    assert summary.vergeet_fout and "NOT applied" in summary.regel()
    assert len(_lines(tmp_path / f"{GM}.jsonl")) == 3
    logged = capsys.readouterr()
    out = logged.out + logged.err
    assert "vergeetverzoeken_niet_toegepast" in out and gone[0].subject in out
    assert gone[0].data["persoon"]["bsn"] not in out and gone[0].data["persoon"]["achternaam"] not in out


def test_a_key_store_without_notices_is_logged_and_nothing_is_applied(tmp_path) -> None:
    gone, _ = _two_people()
    sink = JsonlSink(tmp_path, GM)
    sink.schrijf(gone)
    kluis = _Kluis([gone[0].subject], fail_fetch=True)
    summary = consume(_Consumer([]), sink, None, once=True, vergeetbron=kluis)
    sink.close()
    assert summary.vergeet_fout and kluis.confirmed == [] and len(_lines(tmp_path / f"{GM}.jsonl")) == 2


def test_notices_are_fetched_at_most_every_interval_and_a_new_one_is_applied_while_running(tmp_path) -> None:
    gone, kept = _two_people()
    sink = JsonlSink(tmp_path, GM)
    kluis = _Kluis([])
    consumer = _Consumer([*gone, *kept], idle=5, add_notice=None)
    consume(consumer, sink, None, once=True, vergeetbron=kluis, vergeet_interval_s=3600)
    assert kluis.fetches == 2 and consumer.committed == 1  # at start and before the end only; the batch written

    late = _Kluis([])
    running = _Consumer([], idle=3, add_notice=(late, gone[0].subject))
    consume(running, sink, None, once=False, vergeetbron=late, vergeet_interval_s=0)
    sink.close()
    assert late.fetches == 4 and late.confirmed == [gone[0].subject]  # start + every quiet poll
    assert [o["event_id"] for o in _lines(tmp_path / f"{GM}.jsonl")] == [kept[0].event_id]


def test_without_a_vergeet_method_the_loop_refuses_to_start(tmp_path) -> None:
    class _Old:
        def schrijf(self, events):
            raise AssertionError

        def close(self) -> None:
            pass

    with pytest.raises(SinkFout, match="cannot apply forget notices"):
        consume(_Consumer([]), _Old(), None, once=True, vergeetbron=_Kluis([]))
