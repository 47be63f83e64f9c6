"""The connector's key-store client rides out a key store that is away (a restart, a deploy, its
database down) and gives up with one line only where it was told to. A real HTTP server."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from herstelbus.connectors.gemeente.backoff import Backoff
from herstelbus.connectors.gemeente.sleutelkluis import Sleutelkluis, SleutelkluisFout

FAST = Backoff(base_s=0.01, cap_s=0.02)
EPOCHS = {"epochs": [{"kek_id": "k1", "announcement": "YQ=="}]}


def _serve(script: list[tuple[int, dict]]):
    """Answers in the order of ``script`` (status, headers), then 200 with EPOCHS."""
    seen: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            status, headers = script.pop(0) if script else (200, {})
            seen.append(status)
            body = json.dumps(EPOCHS).encode() if status == 200 else b"{}"
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def test_503_and_429_are_waited_out_with_retry_after_honoured() -> None:
    server, seen = _serve([(503, {}), (429, {"Retry-After": "0"}), (502, {})])
    waits: list[float] = []
    try:
        kluis = Sleutelkluis(f"http://127.0.0.1:{server.server_port}", "t", "GM0363", backoff=FAST, sleep=waits.append)
        assert kluis.aankondigingen(["k1"]) == {"k1": b"a"}
    finally:
        server.shutdown()
    assert seen == [503, 429, 502, 200]
    assert waits[1] == 0.0 and len(waits) == 3  # Retry-After: 0 is taken as given


def test_a_bounded_wait_ends_in_one_line_without_the_token() -> None:
    server, _ = _serve([(503, {})] * 1000)
    try:
        kluis = Sleutelkluis(f"http://127.0.0.1:{server.server_port}", "geheim-token", "GM0363", backoff=FAST,
                             retry_for_s=0.3)
        with pytest.raises(SleutelkluisFout, match="key store away for 0s \\(HTTP 503\\)") as err:
            kluis.aankondigingen(["k1"])
    finally:
        server.shutdown()
    assert "geheim" not in str(err.value)


def test_a_key_store_that_comes_back_after_refusing_connections() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    attempts: list[float] = []
    holder: dict = {}

    def sleep(wait: float) -> None:  # the store comes up during the client's second wait
        attempts.append(wait)
        if len(attempts) == 2:
            class Handler(BaseHTTPRequestHandler):
                def do_GET(self) -> None:  # noqa: N802
                    body = json.dumps(EPOCHS).encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

                def log_message(self, *_: object) -> None:
                    pass
            holder["server"] = ThreadingHTTPServer(("127.0.0.1", port), Handler)
            threading.Thread(target=holder["server"].serve_forever, daemon=True).start()

    kluis = Sleutelkluis(f"http://127.0.0.1:{port}", "t", "GM0363", backoff=FAST, sleep=sleep)
    try:
        assert kluis.aankondigingen(["k1"]) == {"k1": b"a"}
    finally:
        holder["server"].shutdown()
    assert len(attempts) == 2


def test_a_500_is_no_outage_but_an_answer() -> None:
    server, seen = _serve([(500, {})])
    try:
        kluis = Sleutelkluis(f"http://127.0.0.1:{server.server_port}", "t", "GM0363", backoff=FAST)
        with pytest.raises(SleutelkluisFout, match="HTTP 500"):
            kluis.aankondigingen(["k1"])
    finally:
        server.shutdown()
    assert seen == [500]
