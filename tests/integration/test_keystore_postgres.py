"""The key store on PostgreSQL: the repository tests of tests/unit/keystore/test_store.py again, on
a throwaway PostgreSQL cluster, plus the least-privilege roles of postgres-grants.sql (the router
can write keys but not read one; the API can read but not write keys, and can serve and confirm
forget notices but neither add nor delete one).

The server: see tests/integration/postgres.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from herstelbus.core.privacy import KeyRowState
from herstelbus.keystore import policy
from herstelbus.keystore.errors import KeystoreUnavailable
from herstelbus.keystore.store import ExchangeWriter, GemeenteAccess, KeyAdmin, KeyStore
from tests.integration.postgres import admin_sql, db_url, pg_admin_url  # noqa: F401 (fixtures)
from tests.unit.keystore.conftest import access, admin, store, world, writer  # noqa: F401 (fixtures)
from tests.unit.keystore.kit import GM_A, GM_B, World
from tests.unit.keystore.test_forget_notices import (  # noqa: F401 (collected here again, on PostgreSQL)
    test_a_gemeente_gets_only_its_own_pending_notices_oldest_first,
    test_confirming_marks_only_the_gemeentes_own_pending_notices_and_audits_each_once,
)
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


@pytest.fixture
def role_urls(db_url: str, store: KeyStore) -> dict[str, str]:
    """The roles of postgres-grants.sql, granted on this test's database (tables made by `store`)."""
    for role in ROLES:
        admin_sql(db_url, f"DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    sql = "\n".join(line for line in GRANTS.read_text().splitlines() if not line.lstrip().startswith("--"))
    admin_sql(db_url, *[stmt for stmt in sql.split(";") if stmt.strip()])
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


def test_the_api_role_serves_and_confirms_forget_notices_but_cannot_add_or_delete_them(
        world: World, role_urls: dict[str, str], store: KeyStore) -> None:
    subject = world.subject()
    ExchangeWriter(store).put_wrapped_keys([world.row(GM_A, subject), world.row(GM_B, subject)])
    erasure = KeyAdmin(store).erase(subject, "test")
    api = KeyStore.open(role_urls["herstelbus_api"])
    try:
        access_ = GemeenteAccess(api)
        assert [(n.subject, n.audit_id) for n in access_.forget_notices(GM_A)] == [(subject, erasure.audit_id)]
        assert access_.confirm_forget_notices(GM_A, [subject]) == 1
        assert access_.confirm_forget_notices(GM_A, [subject]) == 0
        assert access_.forget_notices(GM_A) == [] and len(access_.forget_notices(GM_B)) == 1
        (confirmed,) = [a for a in KeyAdmin(store).audit_records(subject) if a.action == "forget_notice_confirmed"]
        assert (confirmed.actor, confirmed.gemeentecode) == (f"gemeente:{GM_A}", GM_A)
        for forbidden in (
            "DELETE FROM forget_notices",
            "UPDATE forget_notices SET gemeentecode = 'GM0014'",
            "UPDATE forget_notices SET sent_at = NULL, audit_id = 'x'",
            f"INSERT INTO forget_notices (subject, gemeentecode, audit_id, created_at) "
            f"VALUES ('{subject}', 'GM0014', 'x', now())",
            "SELECT action FROM audit_log",
            "DELETE FROM audit_log",
            "UPDATE audit_log SET actor = 'x'",
        ):
            with pytest.raises(KeystoreUnavailable, match="InsufficientPrivilege"):
                api.run(lambda conn, sql=forbidden: conn.execute(text(sql)))
    finally:
        api.close()
