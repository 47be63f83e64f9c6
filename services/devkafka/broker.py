"""Start, stop and inspect the one local broker that herstelbus itself started (pid file)."""

from __future__ import annotations

import base64
import errno
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from herstelbus.devkafka.config import broker_overrides, deploy_dir, pinned_kafka_version, render_properties
from herstelbus.devkafka.errors import DevKafkaError
from herstelbus.devkafka.probe import ClusterInfo, cluster_info
from herstelbus.devkafka.tls import ensure_broker_tls
from herstelbus.devkafka.toolchain import ensure_jars, java_executable
from herstelbus.settings import Settings


@dataclass(frozen=True)
class BrokerInfo:
    bootstrap: str
    pid: int | None  # None: a broker answers, but herstelbus did not start it
    version: str  # the pinned jar version, or "unknown" for a broker we did not start
    listener: str
    cluster: ClusterInfo
    already_running: bool = False
    sasl_bootstrap: str | None = None  # the SASL_SSL listener (SCRAM-SHA-512), when this broker has one
    ca_file: Path | None = None  # the CA clients trust on that listener


class LocalBroker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.kafka_dir.resolve()
        self.data = self.home / "data"
        self.logs = self.home / "logs"
        self.pid_file = self.home / "broker.pid"
        self.properties = self.home / "server.properties"
        self.bootstrap = f"127.0.0.1:{settings.kafka_port}"
        self.sasl_bootstrap = f"127.0.0.1:{settings.sasl_port}"
        self.tls_dir = self.home / "tls"

    # -- lifecycle ---------------------------------------------------------------------------
    def up(self) -> BrokerInfo:
        """Start the broker and wait until it answers metadata requests; idempotent."""
        record = self._running_record()
        if record is not None:
            return self._wait_ready(record, already_running=True)
        for port in (self.settings.kafka_port, self.settings.controller_port, self.settings.sasl_port):
            _require_free_port(port)

        folder = deploy_dir(self.settings)
        version = pinned_kafka_version(folder / "pom.xml")
        java = java_executable()
        libs = ensure_jars(folder / "pom.xml", self.settings.cache_dir, version)
        classpath = f"{libs}/*"

        self.logs.mkdir(parents=True, exist_ok=True)
        tls = ensure_broker_tls(self.tls_dir)
        template = (folder / "server.properties").read_text()
        # The rendered file holds the keystore password: owner-only before anything is written.
        self.properties.touch(mode=0o600)
        os.chmod(self.properties, 0o600)
        self.properties.write_text(render_properties(template, broker_overrides(self.settings, self.data, tls)))
        if not (self.data / "meta.properties").is_file():
            self._format(java, classpath)

        jvm = [
            java, f"-Xms{self.settings.kafka_heap}", f"-Xmx{self.settings.kafka_heap}",
            "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={folder / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.logs}",
            "-cp", classpath, "kafka.Kafka", str(self.properties),
        ]
        with open(self.logs / "kafka.out", "ab") as out:
            # A session of its own: the broker outlives this CLI call and ignores its Ctrl-C.
            proc = subprocess.Popen(jvm, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=self.home)
        record = {"pid": proc.pid, "version": version, "port": self.settings.kafka_port,
                  "controller_port": self.settings.controller_port, "sasl_port": self.settings.sasl_port,
                  "ca_file": str(tls.ca_file), "properties": str(self.properties),
                  "started_at": time.time()}
        self.pid_file.write_text(json.dumps(record))
        try:
            return self._wait_ready(record, already_running=False, proc=proc)
        except DevKafkaError:
            self.down()
            raise

    def down(self, timeout_s: float = 60.0) -> bool:
        """Stop the broker this data dir's pid file names; True when one was stopped."""
        record = self._running_record()
        if record is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        pid = record["pid"]
        os.kill(pid, signal.SIGTERM)  # controlled shutdown: the log is flushed and closed cleanly
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> BrokerInfo | None:
        record = self._running_record()
        info = cluster_info(self.bootstrap)
        if info is None:
            return None
        return self._info(record, info, already_running=True)

    def log_tail(self, lines: int = 40) -> list[str]:
        for name in ("server.log", "kafka.out"):
            path = self.logs / name
            if path.is_file() and path.stat().st_size:
                with open(path, errors="replace") as fh:
                    return [line.rstrip("\n") for line in deque(fh, maxlen=lines)]
        return []

    def _failure_excerpt(self) -> str:
        """The log's ERROR/FATAL lines with their exception and "Caused by" lines, else its tail.

        A stack trace's last frames say little; the exception lines say why the broker died.
        """
        tail = self.log_tail(400)
        errors = [
            line for line in tail
            if " ERROR " in line or " FATAL " in line
            or (line and not line.startswith(("[", "\t", " ")) and ("Exception" in line or "Error" in line))
        ]
        return "\n".join(errors[-12:] or tail[-25:])

    # -- helpers ---------------------------------------------------------------------------
    def _format(self, java: str, classpath: str) -> None:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        cmd = [java, "-Xmx256m", f"-Dkafka.logs.dir={self.logs}", "-cp", classpath,
               "kafka.tools.StorageTool", "format", "--ignore-formatted",
               f"--cluster-id={cluster_id}", "-c", str(self.properties)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-10:])
            raise DevKafkaError(f"formatting KRaft storage in {self.data} failed:\n{tail}")

    def _running_record(self) -> dict | None:
        """The pid file's record if its process is alive and is our broker; clears a stale file."""
        try:
            record = json.loads(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if _is_our_broker(record.get("pid", 0), record.get("properties", "")):
            return record
        self.pid_file.unlink(missing_ok=True)
        return None

    def _wait_ready(self, record: dict, *, already_running: bool,
                    proc: subprocess.Popen | None = None) -> BrokerInfo:
        deadline = time.monotonic() + self.settings.kafka_start_timeout
        while time.monotonic() < deadline:
            code = proc.poll() if proc is not None else (None if _alive(record["pid"]) else -1)
            if code is not None:
                raise DevKafkaError(
                    f"the Kafka broker exited during start-up (code {code}); from its log:\n{self._failure_excerpt()}"
                )
            info = cluster_info(self.bootstrap, timeout_s=2.0)
            if info is not None and info.brokers:
                return self._info(record, info, already_running=already_running)
            time.sleep(0.5)
        tail = "\n".join(self.log_tail(25))
        raise DevKafkaError(
            f"the Kafka broker did not answer on {self.bootstrap} within "
            f"{self.settings.kafka_start_timeout:.0f}s; log tail:\n{tail}"
        )

    def _info(self, record: dict | None, info: ClusterInfo, *, already_running: bool) -> BrokerInfo:
        # Only a broker started with a SASL listener records its port (older pid files have none).
        sasl_port = (record or {}).get("sasl_port")
        sasl = f"127.0.0.1:{sasl_port}" if sasl_port else None
        return BrokerInfo(
            bootstrap=self.bootstrap,
            pid=record["pid"] if record else None,
            version=record["version"] if record else "unknown",
            listener=f"PLAINTEXT://{self.bootstrap}" + (f", SASL_SSL://{sasl}" if sasl else ""),
            cluster=info,
            already_running=already_running,
            sasl_bootstrap=sasl,
            ca_file=Path(record["ca_file"]) if sasl and record.get("ca_file") else None,
        )


def _require_free_port(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the JVM does: a port lingering in TIME_WAIT is free; a listening one is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise DevKafkaError(
                    f"port {port} on 127.0.0.1 is already in use by another process; stop it or set "
                    "HERSTELBUS_KAFKA_PORT / HERSTELBUS_KAFKA_CONTROLLER_PORT / HERSTELBUS_KAFKA_SASL_PORT"
                ) from None
            raise DevKafkaError(f"cannot bind 127.0.0.1:{port}: {exc.strerror}") from None


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not a running broker.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _is_our_broker(pid: int, properties: str) -> bool:
    """Only signal a process that is kafka.Kafka started on our properties file (pid reuse)."""
    if not _alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (not Linux): trust the pid file
    return b"kafka.Kafka" in cmdline and properties.encode() in cmdline
