"""The key store's decisions, tested as pure functions (no database, no HTTP)."""

from __future__ import annotations

import datetime as dt

import pytest

from herstelbus.core.privacy import KeyRef, KeyRowState, WrappedKey
from herstelbus.keystore import policy
from herstelbus.keystore.errors import InvalidRequest, KeyConflict, SubjectErasedWrite
from tests.unit.keystore.kit import BSN, GM_A, GM_B

S1, S2 = "p1:" + "a" * 32, "p1:" + "b" * 32
REF = {"subject": S1, "event_id": "3f1c2b9a-1d2e-4f00-9a7b-123456789012", "key_id": "kek-abcdefghijklmnop"}


def test_a_gemeente_reads_only_under_its_own_code() -> None:
    assert policy.authorise(GM_A, GM_A) is policy.Access.GRANTED
    assert policy.authorise(GM_A, GM_B) is policy.Access.FORBIDDEN
    assert policy.authorise(None, GM_A) is policy.Access.UNAUTHENTICATED


def test_bearer_tokens_are_random_and_stored_as_digests() -> None:
    a, b = policy.new_token(), policy.new_token()
    assert a != b and a.startswith("hbk_") and len(a) > 40
    assert policy.token_digest(a) == policy.token_digest(a) != policy.token_digest(b)
    assert a not in policy.token_digest(a)
    assert policy.bearer_token(f"Bearer {a}") == a
    assert policy.bearer_token(f"bearer  {a} ") == a
    for header in (None, "", a, f"Basic {a}", "Bearer ", "Bearer something-else"):
        assert policy.bearer_token(header) is None


def test_writes_are_idempotent_and_never_overwrite() -> None:
    assert policy.decide_write("row", None, b"x") is True
    assert policy.decide_write("row", b"x", b"x") is False
    with pytest.raises(KeyConflict, match="row: already stored with different content"):
        policy.decide_write("row", b"x", b"y")


def test_keys_for_an_erased_subject_are_refused() -> None:
    rows = [WrappedKey(GM_A, S1, "e1", "kek-a", b"w"), WrappedKey(GM_A, S2, "e2", "kek-a", b"w")]
    policy.refuse_erased(rows, {"p1:" + "c" * 32})
    with pytest.raises(SubjectErasedWrite, match=f"subject {S2} was erased"):
        policy.refuse_erased(rows, {S2})


def test_lookup_answers_row_erased_or_missing_and_the_tombstone_wins() -> None:
    r1, r2, r3 = (KeyRef(GM_A, S1, "e1", "kek-a"), KeyRef(GM_A, S2, "e2", "kek-a"), KeyRef(GM_A, S1, "e9", "kek-a"))
    out = policy.resolve([r1, r2, r3], {r1: b"w1", r2: b"w2"}, erased={S2})
    assert out[0] == WrappedKey(GM_A, S1, "e1", "kek-a", b"w1")
    assert out[1] is KeyRowState.ERASED  # a row left by a write racing the erasure is never released
    assert out[2] is KeyRowState.MISSING
    assert [policy.state_name(x) for x in out] == ["released", "erased", "missing"]


def test_refs_are_validated_and_always_bound_to_the_callers_gemeente() -> None:
    refs = policy.parse_refs(GM_A, [REF, REF])
    assert refs == [KeyRef(GM_A, **REF)] * 2
    bad = [
        [], {}, None, [dict(REF, gemeentecode=GM_B)], [dict(REF, subject=BSN)], [dict(REF, event_id="a b")],
        [dict(REF, key_id="KEK!")], [{"subject": S1}], [REF] * (policy.MAX_BATCH + 1), ["x"],
    ]
    for items in bad:
        with pytest.raises(InvalidRequest) as err:
            policy.parse_refs(GM_A, items)
        assert BSN not in str(err.value)


def test_purpose_is_an_identifier_or_uri_never_free_text_or_a_bsn() -> None:
    for ok in ("brede-ondersteuning", "https://gemeente.example/verwerkingen/herstel-kot#1", "urn:nl:vwa:42"):
        assert policy.check_purpose(ok) == ok
    for bad in (None, "", "met spaties", f"zaak-{BSN}", f"urn:{BSN}", "1abc", "x" * 300):
        with pytest.raises(InvalidRequest) as err:
            policy.check_purpose(bad)
        assert BSN not in str(err.value)


def test_gemeentecode_must_be_in_the_reference_list() -> None:
    assert policy.check_gemeente(GM_A) == GM_A
    for bad in ("GM9999", "gm0363", "0363", None):
        with pytest.raises(InvalidRequest):
            policy.check_gemeente(bad)


def test_trace_context_is_taken_from_traceparent_or_started() -> None:
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    t = policy.trace_from(tp)
    assert (t.trace_id, t.parent_span_id) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    assert len(t.span_id) == 16 and t.span_id != t.parent_span_id
    for junk in (None, "", "01-" + tp[3:], "00-" + "0" * 32 + "-00f067aa0ba902b7-01", "garbage"):
        fresh = policy.trace_from(junk)
        assert len(fresh.trace_id) == 32 and fresh.parent_span_id is None and fresh.trace_id != "0" * 32


def test_release_log_has_one_entry_per_released_subject_with_its_event_ids() -> None:
    t0 = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)
    trace = policy.Trace("a" * 32, "b" * 16, None)
    results = [
        WrappedKey(GM_A, S1, "e1", "kek-a", b"w"), KeyRowState.ERASED, WrappedKey(GM_A, S2, "e2", "kek-a", b"w"),
        WrappedKey(GM_A, S1, "e3", "kek-a", b"w"), WrappedKey(GM_A, S1, "e1", "kek-a", b"w"), KeyRowState.MISSING,
    ]
    entries = policy.release_entries(GM_A, results, "brede-ondersteuning", trace, t0, t0)
    assert [(e.data_subject_id, e.event_ids) for e in entries] == [(S1, ("e1", "e3")), (S2, ("e2",))]
    e = entries[0]
    assert (e.receiver, e.processing_activity_id, e.trace_id, e.name, e.status_code) == (
        GM_A, "brede-ondersteuning", "a" * 32, policy.RELEASE_OPERATION, "OK")
    assert e.data_subject_id_type == policy.SUBJECT_ID_TYPE
    assert policy.release_entries(GM_A, [KeyRowState.ERASED], "x", trace, t0, t0) == []


def test_forget_notices_go_to_each_gemeente_that_held_keys_once() -> None:
    assert policy.forget_targets([GM_B, GM_A, GM_B]) == (GM_A, GM_B)
    assert policy.forget_targets([]) == ()
