"""Forget notices (vergeetverzoeken) through the gemeente view of the key store: a gemeente reads
only its own pending notices, oldest first, and confirms only those; each confirmation is audited
once. A temp SQLite file here; the same tests run on PostgreSQL in
tests/integration/test_keystore_postgres.py."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import select

from herstelbus.core.bsn import is_valid_bsn
from herstelbus.keystore import tables as t
from herstelbus.keystore.store import ExchangeWriter, GemeenteAccess, KeyAdmin, KeyStore
from tests.unit.keystore.kit import GM_A, GM_B, NOW, World

GM_C = "GM0014"  # Groningen: received nothing
_BSNS = (b for b in (str(n) for n in range(999_980_000, 999_999_999)) if is_valid_bsn(b))


def _ticking(store: KeyStore) -> None:
    """One second further at every clock read: erasure order is created_at order."""
    ticks = itertools.count()
    store.clock = lambda: NOW + dt.timedelta(seconds=next(ticks))


def _erased(world: World, writer: ExchangeWriter, admin: KeyAdmin, *gemeenten: str) -> tuple[str, str]:
    """A fresh subject routed to ``gemeenten``, then erased: (subject, the erasure's audit id)."""
    subject = world.subject(next(_BSNS))
    writer.put_wrapped_keys([world.row(gm, subject) for gm in gemeenten])
    result = admin.erase(subject, "cli:test")
    assert result.forget_notices == tuple(sorted(gemeenten)) and result.audit_id
    return subject, result.audit_id


def test_a_gemeente_gets_only_its_own_pending_notices_oldest_first(
        world: World, store: KeyStore, writer: ExchangeWriter, access: GemeenteAccess, admin: KeyAdmin) -> None:
    _ticking(store)
    first, first_audit = _erased(world, writer, admin, GM_A)
    both, both_audit = _erased(world, writer, admin, GM_A, GM_B)
    only_b, _ = _erased(world, writer, admin, GM_B)

    mine = access.forget_notices(GM_A)
    assert [(n.subject, n.gemeentecode, n.audit_id) for n in mine] == [(first, GM_A, first_audit),
                                                                       (both, GM_A, both_audit)]
    assert mine[0].created_at < mine[1].created_at and mine[0].created_at.tzinfo is not None
    assert [n.subject for n in access.forget_notices(GM_B)] == [both, only_b]
    assert [n.subject for n in access.forget_notices(GM_A, limit=1)] == [first]
    assert access.forget_notices(GM_C) == []


def test_confirming_marks_only_the_gemeentes_own_pending_notices_and_audits_each_once(
        world: World, store: KeyStore, writer: ExchangeWriter, access: GemeenteAccess, admin: KeyAdmin) -> None:
    both, both_audit = _erased(world, writer, admin, GM_A, GM_B)
    only_a, only_a_audit = _erased(world, writer, admin, GM_A)
    never = world.subject(next(_BSNS))

    # Another gemeente cannot confirm GM0363's notice, nor one it was never owed.
    assert access.confirm_forget_notices(GM_B, [only_a, never]) == 0
    assert access.confirm_forget_notices(GM_C, [both, only_a]) == 0
    assert {n.subject for n in access.forget_notices(GM_A)} == {both, only_a}

    assert access.confirm_forget_notices(GM_A, [both, only_a, never, both]) == 2
    assert access.forget_notices(GM_A) == []
    assert [n.subject for n in access.forget_notices(GM_B)] == [both]  # GM0599's copy is still owed
    assert [(n.subject, n.gemeentecode) for n in admin.pending_forget_notices()] == [(both, GM_B)]

    for subject, erasure in ((both, both_audit), (only_a, only_a_audit)):
        confirmed = [a for a in admin.audit_records(subject) if a.action == "forget_notice_confirmed"]
        assert [(a.actor, a.subject, a.gemeentecode, a.detail) for a in confirmed] == [
            (f"gemeente:{GM_A}", subject, GM_A, {"erasure_audit_id": erasure})]
    f = t.forget_notices.c
    sent = store.run(lambda conn: conn.execute(select(f.subject, f.sent_at).where(f.gemeentecode == GM_A)).all())
    assert {s for s, at in sent if at is not None} >= {both, only_a}

    # Repeating is a no-op: nothing confirmed, no second audit record.
    before = len(admin.audit_records())
    assert access.confirm_forget_notices(GM_A, [both, only_a]) == 0
    assert access.confirm_forget_notices(GM_A, []) == 0
    assert len(admin.audit_records()) == before

    assert access.confirm_forget_notices(GM_B, [both]) == 1
    assert admin.pending_forget_notices() == []
