"""`herstelbus keys serve` as a real process on a free port, and a small HTTP caller for tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from herstelbus.processes import stop
from tests.conftest import free_port


def call(method: str, url: str, token: str | None = None, **kw: Any) -> tuple[int, dict, Any]:
    async def go() -> tuple[int, dict, Any]:
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with aiohttp.ClientSession() as session:
            async with session.request(method, url, headers=headers, **kw) as resp:
                body = await resp.json() if resp.content_type == "application/json" else await resp.text()
                return resp.status, dict(resp.headers), body

    return asyncio.run(go())


@contextmanager
def running_keystore(env: dict[str, str], log: Path) -> Iterator[str]:
    """Start the key store HTTP API with ``env``; yield its base URL once /v1/health answers."""
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "herstelbus", "keys", "serve", "--port", str(port)],
                                env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if call("GET", f"{base}/v1/health")[0] == 200:
                    break
            except aiohttp.ClientConnectionError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "keys serve did not answer in 30 s"
            time.sleep(0.1)
        yield base
    finally:
        stop(proc, timeout_s=10)
