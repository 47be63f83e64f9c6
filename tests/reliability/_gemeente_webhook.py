"""Scenario 5's webhook receiver: a real HTTP server that does what the README asks of one (check
signature, timestamp and bearer token, deduplicate by CloudEvent id) and misbehaves on a script.

Faults come one burst at a time, every ``gap`` requests: a burst is a list of answers for
consecutive requests (the sink retries the same event, so a burst of three 5xx is one event's
three failed attempts). Answers: an HTTP status (with headers, e.g. Retry-After), ``hang`` (no
answer until the client has timed out, nothing stored) or ``hang_stored`` (stored, then answered
after the client's timeout: the sink retries an event the receiver already has). Once
``gone_after`` distinct events are stored, every request gets 410 until ``gone_after`` is cleared.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from herstelbus.connectors.gemeente.webhook import CONTENT_TYPE, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from tests.conftest import free_port

SECRET, TOKEN = "reliability-webhook-secret-" + "s" * 16, "reliability-token"
Answer = tuple[Any, dict[str, str]]  # (status | "hang" | "hang_stored", headers)


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, bursts: list[list[Answer]], gap: int, hang_s: float, gone_after: int | None) -> None:
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.bursts, self.gap, self.hang_s, self.gone_after = list(bursts), gap, hang_s, gone_after
        self.lock = threading.Lock()
        self.pending: list[Answer] = []  # the rest of the current burst
        self.since_fault = 0
        self.requests = 0
        self.answers: Counter[str] = Counter()  # by kind: 200, 500, 429, hang, 410, ...
        self.stored: dict[str, dict] = {}  # the receiver's effect: one CloudEvent per id
        self.deliveries: Counter[str] = Counter()  # raw: bodies accepted per id, redeliveries included
        self.different_redeliveries = 0  # an id delivered again with other data: dedupe would hide it
        self.bad: Counter[str] = Counter()
        self.gone_for: list[str] = []  # event ids answered 410

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/herstel/events"

    def _next(self) -> Answer:
        with self.lock:
            self.requests += 1
            if self.gone_after is not None and len(self.stored) >= self.gone_after:
                return 410, {}
            if not self.pending and self.bursts and self.since_fault >= self.gap:
                self.pending, self.since_fault = list(self.bursts.pop(0)), 0
            if self.pending:
                return self.pending.pop(0)
            self.since_fault += 1
            return 200, {}

    def _store(self, ce: dict) -> None:
        with self.lock:
            self.deliveries[ce["id"]] += 1
            known = self.stored.setdefault(ce["id"], ce)
            if known["data"] != ce["data"] or known["subject"] != ce["subject"]:
                self.different_redeliveries += 1


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, *args: Any) -> None:  # quiet: bodies are personal data
        pass

    def do_POST(self) -> None:
        s = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if not verify_signature(SECRET.encode(), self.headers[TIMESTAMP_HEADER] or "", body,
                                self.headers[SIGNATURE_HEADER] or ""):
            s.bad["signature"] += 1
        if self.headers["Authorization"] != f"Bearer {TOKEN}" or self.headers["Content-Type"] != CONTENT_TYPE:
            s.bad["headers"] += 1
        ce = json.loads(body)
        if self.headers["Idempotency-Key"] != ce["id"]:
            s.bad["idempotency-key"] += 1
        status, headers = s._next()
        s.answers[str(status)] += 1
        if status in ("hang", "hang_stored"):
            if status == "hang_stored":
                s._store(ce)
            time.sleep(s.hang_s)  # past the client's timeout: it has given up and will retry
            status = 200 if status == "hang_stored" else None
            if status is None:
                return  # the connection closes without an answer
        elif status == 200:
            s._store(ce)
        elif status == 410:
            with s.lock:
                s.gone_for.append(ce["id"])
        try:
            self.send_response(status)
            for k, v in headers.items():  # "date+2": Retry-After as an HTTP date, two seconds from now
                self.send_header(k, formatdate(time.time() + 2, usegmt=True) if v == "date+2" else v)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:  # the client timed out and left
            pass


def start(bursts: list[list[Answer]], gap: int, hang_s: float, gone_after: int | None) -> Receiver:
    server = Receiver(bursts, gap, hang_s, gone_after)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop(server: Receiver) -> None:
    server.shutdown()
    server.server_close()
