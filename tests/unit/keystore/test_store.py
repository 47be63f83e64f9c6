"""The key-store repository on a real database (a temp SQLite file here; the same tests run on
PostgreSQL in tests/integration/test_keystore_postgres.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid

import pytest
from sqlalchemy import event

from herstelbus.core.privacy import (
    GemeenteKey,
    KeyRef,
    KeyRowState,
    OpeningKeyring,
    choose_wrapping_key,
    generate_gemeente_key,
)
from herstelbus.keystore import policy
from herstelbus.keystore.errors import (
    InvalidRequest,
    KeyConflict,
    KeystoreConfigError,
    KeystoreUnavailable,
    SubjectErasedWrite,
)
from herstelbus.keystore.settings import KeystoreSettings
from herstelbus.keystore.store import ExchangeWriter, GemeenteAccess, KeyAdmin, KeyStore, WriteResult
from herstelbus.settings import Settings
from tests.unit.keystore.kit import GM_A, GM_B, NOW, OTHER_BSN, World, assert_no_personal_data, dump_database

TRACE = policy.Trace("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", None)
PURPOSE = "brede-ondersteuning"


def test_wrapped_keys_round_trip_for_their_own_gemeente(world: World, writer: ExchangeWriter,
                                                         access: GemeenteAccess) -> None:
    s = world.subject()
    rows = [world.row(GM_A, s), world.row(GM_A, s), world.row(GM_B, s)]
    assert writer.put_wrapped_keys(rows) == WriteResult(3, 0)
    got = access.release(GM_A, [r.ref for r in rows[:2]], PURPOSE, TRACE)
    assert got == rows[:2]
    # GM0599's row is not reachable under GM0363, even when the caller names it exactly.
    other = rows[2].ref
    assert access.release(GM_A, [KeyRef(GM_A, other.subject, other.event_id, other.key_id)], PURPOSE, TRACE) == [
        KeyRowState.MISSING]
    with pytest.raises(InvalidRequest):
        access.release(GM_A, [other], PURPOSE, TRACE)
    assert access.release(GM_B, [other], PURPOSE, TRACE) == [rows[2]]


def test_writes_are_idempotent_and_conflicts_are_typed(world: World, writer: ExchangeWriter,
                                                       access: GemeenteAccess) -> None:
    row = world.row(GM_A, world.subject())
    assert writer.put_wrapped_keys([row]).inserted == 1
    assert writer.put_wrapped_keys([row, row]).unchanged == 2
    forged = type(row)(row.gemeentecode, row.subject, row.event_id, row.key_id, b"\x01" * 61)
    with pytest.raises(KeyConflict):
        writer.put_wrapped_keys([forged])
    with pytest.raises(KeyConflict):  # also within one batch
        writer.put_wrapped_keys([world.row(GM_A, row.subject, "e-dup"),
                                 world.row(GM_A, row.subject, "e-dup")])
    assert access.release(GM_A, [row.ref], PURPOSE, TRACE) == [row]  # the first write stands


def test_the_exchange_never_reads_a_wrapped_key(world: World, store: KeyStore, writer: ExchangeWriter,
                                                access: GemeenteAccess) -> None:
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda conn, cur, stmt, params, ctx, many: statements.append(stmt))
    reads_wrapped = re.compile(r"SELECT\b[^;]*\bwrapped_keys\.wrapped\b", re.S)  # not wrapped_sha256
    row = world.row(GM_A, world.subject())
    writer.put_wrapped_keys([row])
    writer.put_wrapped_keys([row])
    writer.put_announcement(world.epoch(GM_A).announcement)
    writer.gemeente_keys(GM_A)
    assert statements and not any(reads_wrapped.search(s.split(" FROM ")[0]) for s in statements)
    assert not [name for name in dir(ExchangeWriter) if "release" in name or name.startswith("get")]
    access.release(GM_A, [row.ref], PURPOSE, TRACE)  # the check does see a read when there is one
    assert any(reads_wrapped.search(s.split(" FROM ")[0]) for s in statements)


def test_release_writes_the_release_log_per_subject(world: World, writer: ExchangeWriter,
                                                    access: GemeenteAccess, admin: KeyAdmin) -> None:
    s1, s2 = world.subject(), world.subject(OTHER_BSN)
    rows = [world.row(GM_A, s1), world.row(GM_A, s1), world.row(GM_A, s2)]
    writer.put_wrapped_keys(rows)
    missing = KeyRef(GM_A, s1, "never-routed", rows[0].key_id)
    access.release(GM_A, [r.ref for r in rows] + [missing], PURPOSE, TRACE)
    log = admin.release_log(s1)
    assert len(log) == 1
    entry = log[0]
    assert entry.event_ids == (rows[0].event_id, rows[1].event_id)
    assert (entry.receiver, entry.processing_activity_id, entry.trace_id) == (GM_A, PURPOSE, TRACE.trace_id)
    assert entry.start_time <= entry.end_time and entry.start_time.tzinfo is not None
    assert [e.event_ids for e in admin.release_log(s2)] == [(rows[2].event_id,)]
    access.release(GM_A, [missing], PURPOSE, TRACE)  # nothing released: nothing logged
    assert len(admin.release_log(s1)) == 1


def test_erasure_deletes_keys_everywhere_and_leaves_a_tombstone(world: World, writer: ExchangeWriter,
                                                                access: GemeenteAccess, admin: KeyAdmin) -> None:
    gone, kept = world.subject(), world.subject(OTHER_BSN)
    rows = [world.row(GM_A, gone), world.row(GM_B, gone), world.row(GM_B, gone)]
    other = world.row(GM_A, kept)
    writer.put_wrapped_keys([*rows, other])
    preview = admin.erasure_preview(gone)
    assert (preview.key_rows, preview.gemeenten, preview.erased_at) == (3, (GM_A, GM_B), None)

    result = admin.erase(gone, "cli:test")
    assert (result.deleted_rows, result.forget_notices) == (3, (GM_A, GM_B)) and result.audit_id
    assert access.release(GM_B, [rows[1].ref, rows[2].ref], PURPOSE, TRACE) == [KeyRowState.ERASED] * 2
    assert access.release(GM_A, [rows[0].ref, other.ref], PURPOSE, TRACE) == [KeyRowState.ERASED, other]
    assert access.release(GM_A, [KeyRef(GM_A, gone, "any-later-event", "kek-x")], PURPOSE, TRACE) == [
        KeyRowState.ERASED]

    (audit,) = admin.audit_records(gone)
    assert (audit.action, audit.actor, audit.audit_id) == ("subject_erased", "cli:test", result.audit_id)
    assert audit.detail == {"deleted_key_rows": 3, "forget_notices": [GM_A, GM_B]}
    assert [(n.subject, n.gemeentecode, n.audit_id) for n in admin.pending_forget_notices()] == [
        (gone, GM_A, result.audit_id), (gone, GM_B, result.audit_id)]

    with pytest.raises(SubjectErasedWrite):  # a replay of the ingest topic cannot undo the erasure
        writer.put_wrapped_keys([world.row(GM_A, gone)])
    again = admin.erase(gone, "cli:test")
    assert (again.deleted_rows, again.audit_id, again.erased_at) == (0, None, result.erased_at)
    assert len(admin.audit_records(gone)) == 1


def test_erasing_a_subject_never_seen_still_blocks_it(world: World, writer: ExchangeWriter, admin: KeyAdmin) -> None:
    s = world.subject()
    result = admin.erase(s, "cli:test")
    assert (result.deleted_rows, result.forget_notices) == (0, ())
    with pytest.raises(SubjectErasedWrite):
        writer.put_wrapped_keys([world.row(GM_A, s)])


def test_announcements_are_stored_once_and_served_per_gemeente(world: World, writer: ExchangeWriter,
                                                               access: GemeenteAccess) -> None:
    ann = world.epoch(GM_A).announcement
    assert writer.put_announcement(ann) is True
    assert writer.put_announcement(ann.to_bytes()) is False
    writer.put_announcement(world.epoch(GM_B).announcement)
    (got,) = access.announcements(GM_A)
    assert got.to_bytes() == ann.to_bytes()
    ring = OpeningKeyring(GM_A, [world.private_keys[GM_A]], [world.signing_key.public_key()])
    ring.add(got.to_bytes())  # the signature still verifies after the round trip
    assert access.announcements(GM_A, kek_ids=["kek-none"]) == []
    assert [e.kek_id for e in access.announcements(GM_A, kek_ids=[ann.kek_id])] == [ann.kek_id]
    assert access.announcements(GM_A, since=ann.not_after) == []
    assert len(access.announcements(GM_A, since=ann.not_before)) == 1
    unsigned = dataclasses.replace(ann, signature=None)
    with pytest.raises(InvalidRequest, match="unsigned"):
        writer.put_announcement(unsigned)
    with pytest.raises(InvalidRequest):
        writer.put_announcement(b"\x01junk")
    clash = dataclasses.replace(ann, not_after=ann.not_after + dt.timedelta(hours=1))
    with pytest.raises(KeyConflict):
        writer.put_announcement(clash)


def test_key_directory_registration_and_rotation(world: World, writer: ExchangeWriter, admin: KeyAdmin) -> None:
    old = world.directory[GM_A]
    assert admin.register_gemeente_key(old, "cli:test") is True
    assert admin.register_gemeente_key(old, "cli:test") is False
    with pytest.raises(KeyConflict):
        admin.register_gemeente_key(GemeenteKey(GM_A, old.public_key, old.valid_from + dt.timedelta(days=1)), "x")
    new = GemeenteKey(GM_A, generate_gemeente_key().public_key(), NOW)
    admin.register_gemeente_key(new, "cli:test")
    admin.register_gemeente_key(world.directory[GM_B], "cli:test")
    directory = writer.gemeente_keys()
    assert [k.key_id for k in writer.gemeente_keys(GM_A)] == [old.key_id, new.key_id]
    assert all(k.valid_from.tzinfo is not None for k in directory)
    # Overlap: the old key until the new one has settled, then the new one.
    assert choose_wrapping_key(directory, GM_A, NOW + dt.timedelta(days=1)).key_id == old.key_id
    assert choose_wrapping_key(directory, GM_A, NOW + dt.timedelta(days=8)).key_id == new.key_id
    assert [a.action for a in admin.audit_records()] == ["gemeente_key_registered"] * 3
    with pytest.raises(InvalidRequest):
        admin.register_gemeente_key(GemeenteKey("GM9999", new.public_key, NOW), "x")


def test_tokens_authenticate_their_gemeente_until_replaced(store: KeyStore, admin: KeyAdmin,
                                                          access: GemeenteAccess, db_url: str) -> None:
    first = admin.issue_token(GM_A, "cli:test")
    assert access.authenticate(first) == GM_A
    assert access.authenticate(first + "x") is None and access.authenticate(None) is None
    second = admin.issue_token(GM_A, "cli:test", replace=True)
    assert access.authenticate(first) is None and access.authenticate(second) == GM_A
    with pytest.raises(InvalidRequest):
        admin.issue_token("GM9999", "cli:test")
    as_text, _ = dump_database(db_url)
    assert first not in as_text and second not in as_text


def test_no_personal_data_in_any_row(world: World, writer: ExchangeWriter, access: GemeenteAccess,
                                     admin: KeyAdmin, db_url: str) -> None:
    s1, s2 = world.subject(), world.subject(OTHER_BSN)
    rows = [world.row(GM_A, s1), world.row(GM_B, s2)]
    writer.put_wrapped_keys(rows)
    writer.put_announcement(world.epoch(GM_A).announcement)
    admin.register_gemeente_key(world.directory[GM_A], "cli:test")
    admin.issue_token(GM_A, "cli:test")
    access.release(GM_A, [rows[0].ref], PURPOSE, TRACE)
    admin.erase(s2, "cli:test")
    assert_no_personal_data(db_url)


def test_default_database_is_a_sqlite_file_in_the_data_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("HERSTELBUS_KEYSTORE_URL", raising=False)
    url = KeystoreSettings().database_url(Settings(data_dir=tmp_path / "data"))
    assert url == f"sqlite:///{tmp_path / 'data' / 'keystore.sqlite'}"
    KeyStore.open(url).close()
    assert (tmp_path / "data" / "keystore.sqlite").is_file()
    monkeypatch.setenv("HERSTELBUS_KEYSTORE_URL", "postgresql+psycopg://u:secret@db/keystore")
    settings = KeystoreSettings()
    assert settings.database_url() == "postgresql+psycopg://u:secret@db/keystore"
    assert "secret" not in repr(settings)


def test_bad_urls_and_unreachable_databases_fail_with_one_clear_error(tmp_path) -> None:
    with pytest.raises(KeystoreConfigError):
        KeyStore.open("not a url")
    with pytest.raises(KeystoreConfigError, match="unsupported"):
        KeyStore.open("mysql://u@localhost/x")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(KeystoreUnavailable):
        KeyStore.open(f"sqlite:///{blocker}/keystore.sqlite")
    with pytest.raises(KeystoreUnavailable) as err:
        KeyStore.open("postgresql+psycopg://herstelbus:s3cret@127.0.0.1:1/keystore")
    assert "s3cret" not in str(err.value) and "***" in str(err.value)
    store = KeyStore.open(f"sqlite:///{tmp_path / 'ok.sqlite'}")
    store.close()
    (tmp_path / "ok.sqlite").unlink()
    (tmp_path / "ok.sqlite").mkdir()  # the file is gone and cannot come back
    assert GemeenteAccess(store).ping() is False


def test_large_batches_span_several_in_lists(world: World, writer: ExchangeWriter) -> None:
    s = world.subject()
    rows = [world.row(GM_A, s, str(uuid.uuid4())) for _ in range(1200)]
    assert writer.put_wrapped_keys(rows).inserted == 1200
    assert writer.put_wrapped_keys(rows).unchanged == 1200
