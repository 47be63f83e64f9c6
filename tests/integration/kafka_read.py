"""Reading a topic from the start until a condition holds, for integration tests."""

from __future__ import annotations

import time
from collections.abc import Callable

from kafka import KafkaConsumer


def read_until(bootstrap: str, topic: str, until: Callable[[list], bool], timeout: float = 90) -> list:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=1000)
    seen: list = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(seen):
            seen.extend(consumer)
    finally:
        consumer.close()
    return seen


def wait_for_line(path, text: str, timeout: float = 120, alive: Callable[[], bool] = lambda: True) -> None:
    """Wait until a process's log file holds ``text`` (e.g. faust's "Worker ready")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in {path} after {timeout:.0f}s")


def bron_of(receipt: dict) -> tuple[str, int, int] | None:
    """The input position a router receipt is about; None for statuses that name none (the acks
    worker's relays and overdue notices share uht.status.v1)."""
    bron = receipt.get("bron")
    return (bron["topic"], bron["partition"], bron["offset"]) if bron else None
