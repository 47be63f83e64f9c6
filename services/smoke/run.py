"""Drive the smoke path from outside, as a user would: produce, let the worker relay, read back."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import IO

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from herstelbus.errors import HerstelbusError
from herstelbus.processes import stop
from herstelbus.settings import Settings
from herstelbus.smoke.app import HOP_HEADER


class SmokeFailed(HerstelbusError):
    pass


@dataclass
class SmokeResult:
    source: str
    sink: str
    sent: list[tuple[bytes, bytes, dict[str, bytes]]]
    received: list[tuple[bytes | None, bytes, dict[str, bytes]]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every record arrived once, in order, with its headers kept and the relay's hop added."""
        if len(self.received) != len(self.sent):
            return False
        return all(
            (rk, rv) == (sk, sv) and all(rh.get(h) == v for h, v in sh.items()) and HOP_HEADER in rh
            for (sk, sv, sh), (rk, rv, rh) in zip(self.sent, self.received)
        )


def create_topics(bootstrap: str, *names: str, partitions: int = 1) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="herstelbus-smoke")
    try:
        admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        admin.close()


def start_worker(app_id: str, source: str, sink: str, output: IO[bytes]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "herstelbus", "smoke", "worker",
           "--app-id", app_id, "--source", source, "--sink", sink]
    # Output to a file, not a pipe: an unread pipe that fills up would stall the worker.
    return subprocess.Popen(cmd, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def read_back(bootstrap: str, topic: str, expected: int, timeout_s: float,
              worker: subprocess.Popen | None = None) -> list:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=1000,
                             client_id="herstelbus-smoke-reader")
    received: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(received) < expected and time.monotonic() < deadline:
            if worker is not None and worker.poll() is not None:
                break  # the relay died: waiting longer cannot bring the records
            for msg in consumer:
                received.append((msg.key, msg.value, dict(msg.headers)))
                if len(received) >= expected:
                    break
    finally:
        consumer.close()
    return received


def run_smoke(settings: Settings, count: int = 10, timeout_s: float = 90.0) -> SmokeResult:
    """Create two fresh topics, relay ``count`` records through a faust worker process, read back."""
    run_id = uuid.uuid4().hex[:8]
    source, sink = f"herstel.smoke.{run_id}.in", f"herstel.smoke.{run_id}.out"
    bootstrap = settings.bootstrap
    create_topics(bootstrap, source, sink)
    started = time.monotonic()
    with tempfile.TemporaryFile() as output:  # the worker's output, shown only if the path fails
        worker = start_worker(f"herstelbus-smoke-{run_id}", source, sink, output)
        try:
            sent = [(f"k{i}".encode(), f"bericht {i}".encode(), {"ce_id": f"{run_id}-{i}".encode()})
                    for i in range(count)]
            producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
            for key, value, headers in sent:
                producer.send(source, key=key, value=value, headers=list(headers.items()))
            producer.flush()
            producer.close()
            received = read_back(bootstrap, sink, count, timeout_s, worker)
        finally:
            stop(worker)
        result = SmokeResult(source, sink, sent, received, time.monotonic() - started)
        if not result.ok:
            output.seek(0)
            tail = output.read().decode(errors="replace").strip().splitlines()[-20:]
            raise SmokeFailed(
                f"smoke path: {len(received)} of {count} records came back, not all intact and in "
                "order; worker output:\n" + "\n".join(tail)
            )
    return result
