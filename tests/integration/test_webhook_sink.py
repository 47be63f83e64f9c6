"""The webhook sink against a real local HTTP server that fails, rate-limits, then recovers.

The receiver does what the README asks of one: verify every signature and timestamp, deduplicate
by CloudEvent id. "Exactly once in effect": distinct ids stored == events sent, however often the
sink had to try, and a redelivered batch changes nothing.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from herstelbus.connectors.gemeente.jsonl import regel
from herstelbus.connectors.gemeente.sinks import SinkFout, open_sink
from herstelbus.connectors.gemeente.webhook import (
    CONTENT_TYPE, SIGNATURE_HEADER, TIMESTAMP_HEADER, Backoff, WebhookSink, verify_signature,
)
from tests.conftest import free_port
from tests.unit.gemeente.kit import GM, geopend

SECRET, TOKEN = "w" * 40, "token-123"


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        super().__init__(("127.0.0.1", free_port()), Handler)
        self.script = script  # responses for the first requests, then 200
        self.lock = threading.Lock()
        self.requests = 0
        self.stored: dict[str, dict] = {}  # dedupe by CloudEvent id
        self.deliveries: Counter[str] = Counter()
        self.bad: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/herstel/events"


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        s = self.server
        with s.lock:
            s.requests += 1
            status, headers = s.script.pop(0) if s.script else (200, {})
        if status == 0:  # hang past the client's timeout, then drop the connection
            time.sleep(1.0)
            return
        with s.lock:
            if not verify_signature(SECRET.encode(), self.headers[TIMESTAMP_HEADER] or "", body,
                                    self.headers[SIGNATURE_HEADER] or ""):
                s.bad.append("signature")
            if self.headers["Authorization"] != f"Bearer {TOKEN}" or self.headers["Content-Type"] != CONTENT_TYPE:
                s.bad.append("headers")
            if status == 200:
                ce = json.loads(body)
                if self.headers["Idempotency-Key"] != ce["id"]:
                    s.bad.append("idempotency-key")
                s.deliveries[ce["id"]] += 1
                s.stored.setdefault(ce["id"], ce)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def receiver(request, monkeypatch) -> Iterator[Receiver]:
    monkeypatch.setenv("HERSTELBUS_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("HERSTELBUS_WEBHOOK_TOKEN", TOKEN)
    server = Receiver(list(getattr(request, "param", [])))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


FLAKY = [(500, {}), (503, {}), (502, {}), (429, {"Retry-After": "1"}), (500, {})]


@pytest.mark.parametrize("receiver", [FLAKY], indirect=True)
def test_every_event_arrives_exactly_once_in_effect_through_failures_and_rate_limits(receiver) -> None:
    events = [geopend() for _ in range(5)] + [geopend("pauzeknop"), geopend("erkenning")]
    waits: list[float] = []
    sink = WebhookSink(receiver.url, GM, backoff=Backoff(base_s=0.05, cap_s=0.2), max_wait_s=20,
                       sleep=lambda s: (waits.append(s), time.sleep(s)))
    verslag = sink.schrijf(events)
    assert verslag.nieuw == tuple(e.event_id for e in events)
    assert 1.0 in waits and max(w for w in waits if w != 1.0) <= 0.2  # Retry-After honoured, backoff capped
    sink.schrijf(events[:3])  # redelivery after a crash before the offset commit
    sink.close()
    assert receiver.bad == [] and receiver.requests == len(FLAKY) + len(events) + 3
    assert set(receiver.stored) == {e.event_id for e in events}  # distinct ids == sent
    assert sum(receiver.deliveries.values()) == len(events) + 3
    for e in events:
        ce = receiver.stored[e.event_id]
        assert (ce["subject"], ce["sequence"], ce["data"]) == (e.subject, f"{e.sequence:010d}", json.loads(
            json.dumps(regel(e))))


@pytest.mark.parametrize("receiver", [[(410, {})]], indirect=True)
def test_410_gone_stops_at_once_with_a_clear_error(receiver) -> None:
    e = geopend()
    sink = open_sink(f"webhook:{receiver.url}?k=geheim", GM)
    started = time.monotonic()
    with pytest.raises(SinkFout, match="410 Gone.*subscriber is gone") as exc:
        sink.schrijf([e, geopend()])
    assert time.monotonic() - started < 2 and receiver.requests == 1  # not retried, second event not sent
    assert "geheim" not in str(exc.value) and e.subject not in str(exc.value)


@pytest.mark.parametrize("receiver", [[(400, {})]], indirect=True)
def test_other_4xx_names_the_status(receiver) -> None:
    with pytest.raises(SinkFout, match="HTTP 400"):
        open_sink(f"webhook:{receiver.url}", GM).schrijf([geopend()])
    assert receiver.requests == 1


@pytest.mark.parametrize("receiver", [[(503, {})] * 100], indirect=True)
def test_retries_stop_at_the_total_wait_bound(receiver) -> None:
    sink = WebhookSink(receiver.url, GM, backoff=Backoff(base_s=0.1, cap_s=0.4), max_wait_s=1.5)
    started = time.monotonic()
    with pytest.raises(SinkFout, match=r"not delivered after \d+ attempts within 1.5s \(last: HTTP 503\)"):
        sink.schrijf([geopend()])
    assert time.monotonic() - started < 3 and receiver.requests > 2


@pytest.mark.parametrize("receiver", [[(0, {})]], indirect=True)
def test_a_timeout_is_retried(receiver) -> None:
    e = geopend()
    sink = WebhookSink(receiver.url, GM, timeout_s=0.3, backoff=Backoff(base_s=0.05, cap_s=0.1), max_wait_s=5)
    assert sink.schrijf([e]).nieuw == (e.event_id,)
    assert receiver.requests == 2 and set(receiver.stored) == {e.event_id} and receiver.bad == []


def test_connection_refused_is_retried_then_reported(monkeypatch) -> None:
    monkeypatch.setenv("HERSTELBUS_WEBHOOK_SECRET", SECRET)
    sink = WebhookSink(f"http://127.0.0.1:{free_port()}/x", GM, backoff=Backoff(base_s=0.05, cap_s=0.1),
                       max_wait_s=0.5)
    with pytest.raises(SinkFout, match="last: connection"):
        sink.schrijf([geopend()])
