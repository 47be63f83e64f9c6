"""``herstelbus dev up|down``: the whole exchange on one machine, for the demo and for trying it out.

The pinned broker, every topic, the exchange's secrets and a key pair per gemeente (all under
``<data dir>/dev``, private keys 0600), the key store API, the router and the acknowledgement relay
as background processes. The gemeenten' private keys are here only because this is a
single-machine demo: in reality each gemeente generates its own and only its public key reaches the
exchange. :meth:`DevStack.gemeente_env` is what a gemeente connector needs against this stack.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from herstelbus.core.gemeenten import gemeenten_on
from herstelbus.core.privacy import (
    ExchangeSigningKey, GemeenteKey, PseudonymSecret, generate_gemeente_key, generate_signing_key, load_signing_key,
    private_key_to_pem, public_key_to_pem,
)
from herstelbus.devkafka import LocalBroker
from herstelbus.errors import HerstelbusError
from herstelbus.settings import Settings
from herstelbus.topics import provision, wanted_topics

KEYSTORE_PORT = 8470
DASHBOARD_PORT = 8480
SERVICES = ("keystore", "keyrelay", "router", "acks", "dashboard")  # started in this order, stopped in the reverse
# The faust workers under `herstelbus supervise`: restarted when they end themselves with 70.
_WORKER = ["supervise", "--", sys.executable, "-m", "herstelbus"]
ARGV = {"keystore": ["keys", "serve", "--port", str(KEYSTORE_PORT)], "keyrelay": ["keys", "relay"],
        "router": [*_WORKER, "router"],
        "acks": [*_WORKER, "acks"], "dashboard": ["dashboard", "--port", str(DASHBOARD_PORT)]}
# Logged once serving (the dashboard: uvicorn's own line, through herstelbus' log chain).
READY = {"keystore": "keystore_serving", "keyrelay": "audit_relay_started", "router": "Worker ready",
         "acks": "Worker ready", "dashboard": "Application startup complete"}
DASHBOARD_URL = f"http://127.0.0.1:{DASHBOARD_PORT}/"
# Each worker its own metrics port (/metrics, /healthz): they read the same variable.
SERVICE_ENV = {"router": {"HERSTELBUS_METRICS_PORT": "9464"}, "acks": {"HERSTELBUS_METRICS_PORT": "9465"}}
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0  # after SIGTERM; then SIGKILL


class DevStackError(HerstelbusError):
    pass


@dataclass(frozen=True)
class DevStack:
    settings: Settings

    @property
    def home(self) -> Path:
        return (self.settings.data_dir / "dev").resolve()

    @property
    def gemeente_key_dir(self) -> Path:
        """Every gemeente's private key, ``GMxxxx.pem``: a connector's ``--key-dir`` (it takes its own)."""
        return self.home / "gemeenten"

    def env(self) -> dict[str, str]:
        """What every process of the dev stack (and the demo) needs to find the rest."""
        return {
            "HERSTELBUS_BOOTSTRAP_SERVERS": self.settings.bootstrap,
            "HERSTELBUS_DATA_DIR": str(self.settings.data_dir.resolve()),
            "HERSTELBUS_KEYSTORE_URL": f"sqlite:///{self.home / 'keystore.sqlite'}",
            "HERSTELBUS_PSEUDONYM_KEY_FILE": str(self.home / "pseudonym.key"),
            "HERSTELBUS_SIGNING_KEY_FILE": str(self.home / "signing.pem"),
            "HERSTELBUS_OPS_PUBLIC_KEY_FILE": str(self.home / "ops.pub.pem"),
            "HERSTELBUS_EXCHANGE_VERIFY_KEY_FILE": str(self.home / "signing.pub.pem"),
            "HERSTELBUS_LOG_FORMAT": "json",
        }

    def gemeente_env(self, gemeentecode: str) -> dict[str, str]:
        """What ``herstelbus gemeente consume`` needs against this stack: the broker, the exchange's
        verify key, the key store API and a new bearer token for ``gemeentecode`` (earlier ones revoked)."""
        from herstelbus.keystore.store import KeyAdmin, KeyStore

        store = KeyStore.open(self.env()["HERSTELBUS_KEYSTORE_URL"])
        try:
            token = KeyAdmin(store).issue_token(gemeentecode, "herstelbus dev", replace=True)
        finally:
            store.close()
        env = self.env()
        return {k: env[k] for k in ("HERSTELBUS_BOOTSTRAP_SERVERS", "HERSTELBUS_EXCHANGE_VERIFY_KEY_FILE",
                                    "HERSTELBUS_LOG_FORMAT")} | {
            "HERSTELBUS_KEYSTORE_API": f"http://127.0.0.1:{KEYSTORE_PORT}", "HERSTELBUS_GEMEENTE_TOKEN": token}

    # -- up ---------------------------------------------------------------------------------------
    def up(self, on: date | None = None) -> list[str]:
        """Start what is not running; returns what it did, one line each."""
        done = []
        broker = LocalBroker(self.settings).up()
        done.append(f"kafka: {'already running' if broker.already_running else 'started'} on {broker.bootstrap}")
        report = provision(self.settings.bootstrap, wanted_topics(self.settings.topic_policy(), on or date.today()),
                           self.settings.replication_factor)
        done.append(f"topics: {len(report.created)} created, {len(report.existing)} existed")
        done.append(self._secrets(on or date.today()))
        for name in SERVICES:
            done.append(f"{name}: {self._start(name)}")
        return done

    def _secrets(self, on: date) -> str:
        from herstelbus.keystore.store import KeyAdmin, KeyStore

        home = self.home
        (home / "gemeenten").mkdir(parents=True, exist_ok=True)
        if not (home / "pseudonym.key").exists():
            _write_private(home / "pseudonym.key", PseudonymSecret.generate().export_base64().encode())
            _write_private(home / "signing.pem", private_key_to_pem(generate_signing_key()))
            ops = generate_gemeente_key()
            _write_private(home / "ops.pem", private_key_to_pem(ops))
            (home / "ops.pub.pem").write_bytes(public_key_to_pem(ops.public_key()))
        signing = load_signing_key((home / "signing.pem").read_bytes())
        if signing.mldsa65 is None:  # a dev home from before the hybrid suite: add ML-DSA-65, keep Ed25519
            signing = ExchangeSigningKey(signing.ed25519, generate_signing_key().mldsa65)
            _write_private(home / "signing.pem", private_key_to_pem(signing))
        # The exchange's verify keys, public: what a gemeente consumer checks key epochs against.
        (home / "signing.pub.pem").write_bytes(public_key_to_pem(signing.public_key()))
        store = KeyStore.open(self.env()["HERSTELBUS_KEYSTORE_URL"])
        try:
            admin = KeyAdmin(store)
            known = {k.gemeentecode for k in admin.gemeente_keys()}
            valid_from = datetime.now(timezone.utc) - timedelta(days=30)  # past the rotation overlap
            made = 0
            for gemeente in gemeenten_on(on):
                if gemeente.code in known:
                    continue
                key = generate_gemeente_key()
                _write_private(home / "gemeenten" / f"{gemeente.code}.pem", private_key_to_pem(key))
                admin.register_gemeente_key(GemeenteKey(gemeente.code, key.public_key(), valid_from), "herstelbus dev up")
                made += 1
            return f"keys: {made} gemeente key pairs made, {len(known)} existed (in {home / 'gemeenten'})"
        finally:
            store.close()

    def _start(self, name: str) -> str:
        pid_file = self.home / f"{name}.pid"
        if _running(pid_file):
            return "already running"
        argv = [sys.executable, "-m", "herstelbus", *ARGV[name]]
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        log_path = self.home / "logs" / f"{name}.log"
        ready_before = _count(log_path, READY[name])
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(argv, env={**os.environ, **self.env(), **SERVICE_ENV.get(name, {})},
                                    stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        pid_file.write_text(json.dumps({"pid": proc.pid, "argv": argv}))
        # Ready before `up` returns: whoever runs next (the demo) sees a working exchange, and a
        # service that dies at start is reported here with its log, not later as a silence.
        deadline = time.monotonic() + READY_TIMEOUT_S
        while _count(log_path, READY[name]) <= ready_before:
            if proc.poll() is not None:
                pid_file.unlink(missing_ok=True)
                raise DevStackError(f"{name} exited at start (code {proc.returncode}); see {log_path}")
            if time.monotonic() > deadline:
                raise DevStackError(f"{name} not ready after {READY_TIMEOUT_S:.0f}s; see {log_path}")
            time.sleep(0.2)
        return f"started (pid {proc.pid}, log {log_path})"

    # -- down -------------------------------------------------------------------------------------
    def down(self) -> list[str]:
        done = []
        stopping = []
        for name in reversed(SERVICES):  # none needs another to stop: all are told at once
            pid = _running(self.home / f"{name}.pid")
            if pid:
                os.kill(pid, signal.SIGTERM)  # the faust workers drain: their offsets are committed
                stopping.append((name, pid))
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for name, pid in stopping:
            killed = _wait_gone(pid, deadline)
            done.append(f"{name}: stopped" + (f" (killed after {STOP_TIMEOUT_S:.0f}s)" if killed else ""))
        for name in SERVICES:
            (self.home / f"{name}.pid").unlink(missing_ok=True)
        stopped = LocalBroker(self.settings).down()
        done.append("kafka: stopped" if stopped else "kafka: was not started by herstelbus")
        return done


def _count(path: Path, text: str) -> int:
    return path.read_text(errors="replace").count(text) if path.exists() else 0


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _running(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive and is a herstelbus process (pid reuse)."""
    try:
        pid = json.loads(pid_file.read_text())["pid"]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, KeyError):
        return None
    return pid if b"herstelbus" in cmdline else None


def _gone(pid: int) -> bool:
    """``pid`` has exited. When this process started it (``herstelbus demo`` runs `up` and `down`)
    it stays a zombie until reaped: reaped here, else every stop would wait for the deadline."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:  # not our child: its parent (or init) reaps it
        pass
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] == "Z"
    except (OSError, IndexError):
        return True


def _wait_gone(pid: int, deadline: float) -> bool:
    """Wait until ``pid`` is gone, SIGKILL it at ``deadline`` (monotonic); whether it had to be killed."""
    while not _gone(pid):
        if time.monotonic() >= deadline:
            with suppress(ProcessLookupError):  # exited just now
                os.kill(pid, signal.SIGKILL)
            while not _gone(pid):
                time.sleep(0.1)
            return True
        time.sleep(0.2)
    return False


__all__ = ["DevStack", "DevStackError"]
