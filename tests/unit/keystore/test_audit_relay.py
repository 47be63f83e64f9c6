"""The key store's audit outbox: rows as herstel.audit.v1 records, marked only after the send."""

from __future__ import annotations

import datetime as dt

import pytest

from herstelbus.core import contracts
from herstelbus.keystore import policy
from herstelbus.keystore import tables as t
from herstelbus.keystore.relay import relay_once
from herstelbus.keystore.store import ExchangeWriter, KeyAdmin, KeyStore
from tests.unit.keystore.kit import GM_A, GM_B, NOW, World


def test_an_erasure_row_becomes_a_valid_audit_record_with_counts_only() -> None:
    subject = World().subject()
    message = policy.audit_message(
        audit_id="0b0c9a3e-6f7e-4a43-9c39-1f1a2f6b8d01", at=NOW, action="subject_erased", actor="cli:ops",
        subject=subject, gemeentecode=None,
        detail={"deleted_key_rows": 3, "forget_notices": [GM_A, GM_B], "key_id": "k1", "flag": True, "Bad Key": 1},
    )
    assert message["aantallen"] == {"deleted_key_rows": 3, "forget_notices": 2}
    assert (message["component"], message["actie"], message["resultaat"]) == ("sleutelkluis", "subject_erased", "GESLAAGD")
    assert message["subject"] == subject
    assert contracts.validate("audit", message) == []
    assert str(contracts.decode(contracts.encode("audit", message))[1]["audit_id"]) == message["audit_id"]


def _erase_two(world: World, writer: ExchangeWriter, admin: KeyAdmin) -> list[str]:
    writer.put_wrapped_keys([world.row(GM_A, world.subject()), world.row(GM_B, world.subject())])
    admin.issue_token(GM_A, "cli:ops")
    return [admin.erase(world.subject(), "cli:ops").audit_id]


def test_relay_sends_each_row_once_and_marks_it_after_the_send(world: World, writer: ExchangeWriter,
                                                              admin: KeyAdmin) -> None:
    erased = _erase_two(world, writer, admin)
    sent: list[dict] = []
    first = relay_once(admin, sent.extend, batch=1)  # batches of one: the loop goes on until all are sent
    assert (first.sent, first.refused) == (2, ())
    assert {m["actie"] for m in sent} == {"api_token_issued", "subject_erased"}
    assert erased[0] in {m["audit_id"] for m in sent}
    assert relay_once(admin, sent.extend).sent == 0 and len(sent) == 2
    assert admin.unrelayed_audit_records() == []


def test_a_failed_send_marks_nothing(world: World, writer: ExchangeWriter, admin: KeyAdmin) -> None:
    _erase_two(world, writer, admin)

    def broker_away(records) -> None:
        raise ConnectionError("broker away")

    with pytest.raises(ConnectionError):
        relay_once(admin, broker_away)
    assert len(admin.unrelayed_audit_records()) == 2


def test_a_row_the_contract_refuses_is_kept_and_the_others_go(world: World, writer: ExchangeWriter,
                                                              admin: KeyAdmin, store: KeyStore) -> None:
    _erase_two(world, writer, admin)
    store.run(lambda conn: conn.execute(t.audit_log.insert().values(
        audit_id="6d1c1f4e-1111-4c1e-9e8e-0a0b0c0d0e0f", at=NOW - dt.timedelta(days=1), action="subject_erased",
        actor="jan.jansen@example.org", subject=None, gemeentecode=None, detail={})))  # an e-mail is no actor
    sent: list[dict] = []
    result = relay_once(admin, sent.extend, batch=1)
    assert result.sent == 2 and result.refused == ("6d1c1f4e-1111-4c1e-9e8e-0a0b0c0d0e0f",)
    assert [r.audit_id for r in admin.unrelayed_audit_records()] == ["6d1c1f4e-1111-4c1e-9e8e-0a0b0c0d0e0f"]


def test_marking_twice_is_harmless(world: World, writer: ExchangeWriter, admin: KeyAdmin) -> None:
    ids = _erase_two(world, writer, admin)
    assert admin.mark_audit_relayed(ids) == 1
    assert admin.mark_audit_relayed(ids) == 0
