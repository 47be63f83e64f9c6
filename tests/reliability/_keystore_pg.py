"""A throwaway PostgreSQL cluster the reliability suite can stop and start again on the same data
and port (tests/integration/postgres.py's server cannot be restarted: it yields only a URL).

Without local server binaries (initdb, pg_ctl) the scenarios that need one skip with the reason:
a server behind HERSTELBUS_TEST_POSTGRES_URL is not ours to stop.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.postgres import _as_postgres_user, _pg_bin

NO_SERVER = ("no PostgreSQL server binaries (initdb, pg_ctl; apt-get install postgresql): this scenario stops "
             "and restarts the key store's database server, and a HERSTELBUS_TEST_POSTGRES_URL server is not ours "
             "to stop")


class PgCluster:
    def __init__(self) -> None:
        pytest.importorskip("psycopg", reason="install herstelbus[postgres] (psycopg) for the PostgreSQL scenarios")
        initdb, self._pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not (initdb and self._pg_ctl):
            pytest.skip(NO_SERVER)
        self.base = Path(tempfile.mkdtemp(prefix="herstelbus-rel-pg-"))  # postgres must be able to enter it
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
        self.data, self.port = self.base / "data", free_port()
        init = self._run(initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        assert init.returncode == 0, init.stderr
        self.start()

    def _run(self, *cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(_as_postgres_user(list(cmd)), capture_output=True, text=True, timeout=120)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        for _ in range(3):  # the port is ours, but a just-stopped server's socket may linger a moment
            started = self._run(self._pg_ctl, "-D", str(self.data), "-o", opts, "-l", str(self.base / "server.log"),
                                "-w", "start")
            if started.returncode == 0:
                return
            time.sleep(1)
        raise AssertionError(started.stderr + (self.base / "server.log").read_text(errors="replace")[-3000:])

    def stop(self, mode: str = "fast") -> None:
        """``fast``: clients disconnected, a clean shutdown; ``immediate``: as a crash (recovery at start)."""
        stopped = self._run(self._pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")
        assert stopped.returncode == 0, stopped.stderr

    def _pids(self) -> list[int]:
        """The server and every process it started (backends, checkpointer, ...)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # ended meanwhile
                continue
            if int(fields[1]) == postmaster:
                children.append(int(stat.parent.name))
        return [postmaster, *children]

    def freeze(self) -> None:
        """Unreachable without a refusal, as behind a network partition: every server process
        stopped (SIGSTOP), so connections and queries hang instead of failing."""
        for pid in self._pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._pids():
            os.kill(pid, signal.SIGCONT)

    def ensure_up(self) -> None:
        """After a scenario that may have ended mid-outage."""
        try:
            self.thaw()
        except (OSError, ValueError, IndexError):  # not running: no postmaster.pid
            pass
        if self._run(self._pg_ctl, "-D", str(self.data), "status").returncode != 0:
            self.start()

    def close(self) -> None:
        if self.data.exists():
            try:
                self.thaw()  # a stopped process would not stop
            except (OSError, ValueError, IndexError):
                pass
            self._run(self._pg_ctl, "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.base, ignore_errors=True)
