"""A throwaway PostgreSQL for integration tests (key store, outbox, sql sink, acks state).

The server: ``HERSTELBUS_TEST_POSTGRES_URL`` (an admin URL, e.g. postgresql+psycopg://postgres@host/postgres)
when set; else a cluster started here from the local PostgreSQL binaries (initdb, pg_ctl) on a free
port and stopped at the end; else the tests are skipped with the reason. Use the fixtures by
importing them into a test module: ``from tests.integration.postgres import db_url, pg_admin_url``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import free_port


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def _as_postgres_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the `postgres` user when we are root."""
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="module")
def pg_admin_url() -> Iterator[str]:
    pytest.importorskip("psycopg", reason="install herstelbus[postgres] (psycopg) for the PostgreSQL tests")
    if os.environ.get("HERSTELBUS_TEST_POSTGRES_URL"):
        yield os.environ["HERSTELBUS_TEST_POSTGRES_URL"]
        return
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) and no HERSTELBUS_TEST_POSTGRES_URL")
    base = Path(tempfile.mkdtemp(prefix="herstelbus-pg-"))  # not under pytest's 0700 tmp: postgres must enter it
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    data, port = base / "data", free_port()
    run = lambda *cmd: subprocess.run(_as_postgres_user(list(cmd)), capture_output=True, text=True, timeout=120)  # noqa: E731
    try:
        init = run(initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        assert init.returncode == 0, init.stderr
        opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        start = run(pg_ctl, "-D", str(data), "-o", opts, "-l", str(base / "server.log"), "-w", "start")
        assert start.returncode == 0, start.stderr + (base / "server.log").read_text(errors="replace")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if data.exists():
            run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def admin_sql(url: str, *statements: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for stmt in statements:
                conn.execute(text(stmt))
    finally:
        engine.dispose()


@pytest.fixture
def db_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database per test, dropped afterwards."""
    name = f"herstelbus_{uuid.uuid4().hex[:12]}"
    admin_sql(pg_admin_url, f"CREATE DATABASE {name}")
    url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    yield url
    admin_sql(pg_admin_url, f"DROP DATABASE {name} WITH (FORCE)")
