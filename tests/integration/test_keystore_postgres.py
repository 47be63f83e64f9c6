"""The key store on PostgreSQL: the repository tests of tests/unit/keystore/test_store.py again, on
a throwaway PostgreSQL cluster, plus the least-privilege roles of postgres-grants.sql (the router
can write keys but not read one; the API can read but not write).

The server: ``HERSTELBUS_TEST_POSTGRES_URL`` (an admin URL, e.g. postgresql+psycopg://postgres@host/postgres)
when set; else a cluster started here from the local PostgreSQL binaries (initdb, pg_ctl) on a free
port and stopped at the end; else the tests are skipped with the reason.
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

from herstelbus.core.privacy import KeyRowState
from herstelbus.keystore import policy
from herstelbus.keystore.errors import KeystoreUnavailable
from herstelbus.keystore.store import ExchangeWriter, GemeenteAccess, KeyAdmin, KeyStore
from tests.conftest import free_port
from tests.unit.keystore.conftest import access, admin, store, world, writer  # noqa: F401 (fixtures)
from tests.unit.keystore.kit import GM_A, World
from tests.unit.keystore.test_store import (  # noqa: F401 (collected here again, on PostgreSQL)
    test_announcements_are_stored_once_and_served_per_gemeente,
    test_erasing_a_subject_never_seen_still_blocks_it,
    test_erasure_deletes_keys_everywhere_and_leaves_a_tombstone,
    test_key_directory_registration_and_rotation,
    test_large_batches_span_several_in_lists,
    test_no_personal_data_in_any_row,
    test_release_writes_the_release_log_per_subject,
    test_the_exchange_never_reads_a_wrapped_key,
    test_tokens_authenticate_their_gemeente_until_replaced,
    test_wrapped_keys_round_trip_for_their_own_gemeente,
    test_writes_are_idempotent_and_conflicts_are_typed,
)

GRANTS = Path(__file__).resolve().parents[2] / "services" / "keystore" / "postgres-grants.sql"
ROLES = ("herstelbus_router", "herstelbus_api")


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


def _admin(url: str, *statements: str) -> None:
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
    name = f"keystore_{uuid.uuid4().hex[:12]}"
    _admin(pg_admin_url, f"CREATE DATABASE {name}")
    url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    yield url
    _admin(pg_admin_url, f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def role_urls(db_url: str, store: KeyStore) -> dict[str, str]:
    """The roles of postgres-grants.sql, granted on this test's database (tables made by `store`)."""
    for role in ROLES:
        _admin(db_url, f"DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    sql = "\n".join(line for line in GRANTS.read_text().splitlines() if not line.lstrip().startswith("--"))
    _admin(db_url, *[stmt for stmt in sql.split(";") if stmt.strip()])
    return {role: make_url(db_url).set(username=role).render_as_string(hide_password=False) for role in ROLES}


def test_the_router_role_can_write_keys_but_never_read_one(world: World, role_urls: dict[str, str],
                                                           store: KeyStore) -> None:
    router = KeyStore.open(role_urls["herstelbus_router"])
    try:
        row = world.row(GM_A, world.subject())
        writer_ = ExchangeWriter(router)
        assert writer_.put_wrapped_keys([row]).inserted == 1
        assert writer_.put_wrapped_keys([row]).unchanged == 1  # idempotency by digest needs no read
        assert writer_.put_announcement(world.epoch(GM_A).announcement) is True
        with pytest.raises(KeystoreUnavailable, match="InsufficientPrivilege"):
            GemeenteAccess(router).release(GM_A, [row.ref], "brede-ondersteuning", policy.trace_from(None))
        with pytest.raises(KeystoreUnavailable, match="InsufficientPrivilege"):
            router.run(lambda conn: conn.execute(text("SELECT wrapped FROM wrapped_keys")).all())
        with pytest.raises(KeystoreUnavailable, match="InsufficientPrivilege"):
            KeyAdmin(router).erase(row.subject, "router")
    finally:
        router.close()


def test_the_api_role_releases_keys_but_cannot_write_them(world: World, role_urls: dict[str, str],
                                                         store: KeyStore) -> None:
    row = world.row(GM_A, world.subject())
    ExchangeWriter(store).put_wrapped_keys([row])
    token = KeyAdmin(store).issue_token(GM_A, "test")
    api = KeyStore.open(role_urls["herstelbus_api"])
    try:
        access_ = GemeenteAccess(api)
        assert access_.authenticate(token) == GM_A
        assert access_.release(GM_A, [row.ref], "brede-ondersteuning", policy.trace_from(None)) == [row]
        assert len(KeyAdmin(store).release_log(row.subject)) == 1
        with pytest.raises(KeystoreUnavailable, match="InsufficientPrivilege"):
            ExchangeWriter(api).put_wrapped_keys([world.row(GM_A, row.subject)])
        KeyAdmin(store).erase(row.subject, "test")
        assert access_.release(GM_A, [row.ref], "x", policy.trace_from(None)) == [KeyRowState.ERASED]
    finally:
        api.close()
