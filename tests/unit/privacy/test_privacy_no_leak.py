"""No personal-data value in any exception str/repr/traceback, in WrappedKey rows, or in reprs of
the API's objects. Every failure path we can provoke is exercised with a record full of PII."""

from __future__ import annotations

import dataclasses
import traceback

import pytest

from herstelbus.core.privacy import (
    KeyRowState,
    OpeningKeyring,
    PrivacyError,
    generate_gemeente_key,
    open_event,
    pseudonymise,
    seal_event,
)
from privacy_fixtures import all_strings

GM = "GM0363"


def _pii_values(rec: dict) -> list[str]:
    vals = []
    for path in ("persoon", "adres", "telefoon", "email", "toeslagpartner"):
        # gemeentecodes are routing data, not personal data
        vals += [s for s in all_strings(rec[path]) if len(s) >= 4 and not (s.startswith("GM") and s[2:].isdigit())]
    return vals + [rec["persoon"]["bsn"]]


def _assert_clean(exc: BaseException, secrets: list[str]) -> None:
    text = "".join(traceback.format_exception(exc)) + str(exc) + repr(exc)
    for s in secrets:
        assert s not in text, f"{type(exc).__name__} leaks a value"


def _failures(world):
    """Yield (callable) that each raise a PrivacyError with PII around."""
    rec, eid, subj = world.record(0)
    L, ep = world.layout, world.epochs[GM]
    S = seal_event(rec, layout=L, epoch=ep, event_id=eid, subject=subj)
    ring = world.keyring(GM)
    bsn = rec["persoon"]["bsn"]

    def open_(record, key=S.wrapped_key, ring=ring, subject=subj):
        return open_event(record, layout=L, keyring=ring, event_id=eid, subject=subject, key=key)

    yield lambda: seal_event(rec, layout=L, epoch=ep, event_id=eid, subject=bsn)  # BSN as subject
    yield lambda: seal_event(dict(rec, telefoon=12345), layout=L, epoch=ep, event_id=eid, subject=subj)
    yield lambda: seal_event(dict(rec, persoon=dict(rec["persoon"], geboortedatum=rec["persoon"]["achternaam"])), layout=L, epoch=ep, event_id=eid, subject=subj)
    yield lambda: seal_event(dict(rec, persoon=dict(rec["persoon"], bsn=int(bsn))), layout=L, epoch=ep, event_id=eid, subject=subj)
    yield lambda: seal_event({k: v for k, v in rec.items() if k != "email"}, layout=L, epoch=ep, event_id=eid, subject=subj)
    yield lambda: seal_event(dict(rec, adres=rec["persoon"]), layout=L, epoch=ep, event_id=eid, subject=subj)
    yield lambda: open_(dict(S.record, persoon=rec["persoon"]))  # plaintext left beside the bundle
    yield lambda: open_(dict(S.record, verzegeld=rec["telefoon"]))  # plaintext instead of the bundle
    yield lambda: open_(dict(S.record, verzegeld=rec["telefoon"].encode()))
    yield lambda: open_(dict(S.record, verzegeld=S.record["verzegeld"][:-1]))
    yield lambda: open_(S.record, key=KeyRowState.ERASED)
    yield lambda: open_(S.record, key=KeyRowState.UNREACHABLE)
    yield lambda: open_(S.record, key=dataclasses.replace(S.wrapped_key, wrapped=b"\x01" * 61))
    yield lambda: open_(S.record, subject=pseudonymise("999990019", world.secret))
    yield lambda: open_(S.record, ring=OpeningKeyring(GM, [generate_gemeente_key()], [world.signing_key.public_key()]))
    yield lambda: pseudonymise(bsn[:-1] + str((int(bsn[-1]) + 1) % 10), world.secret)


def test_no_pii_in_any_error(world) -> None:
    rec = world.record(0)[0]
    secrets = _pii_values(rec)
    n = 0
    for fail in _failures(world):
        with pytest.raises(PrivacyError) as exc:
            fail()
        _assert_clean(exc.value, secrets)
        assert exc.value.__cause__ is None and exc.value.__suppress_context__ in (True, False)
        n += 1
    assert n >= 15


def test_wrapped_key_rows_and_reprs_hold_no_pii(world) -> None:
    for i in range(30):
        rec, eid, subj = world.record(i)
        s = seal_event(rec, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
        row = s.wrapped_key
        text = repr(row) + str(dataclasses.astuple(row)) + repr(s) + repr(world.epochs[GM]) + repr(world.keyring(GM)) + repr(world.layout)
        for v in _pii_values(rec):
            assert v not in text and v.encode() not in row.wrapped
        assert row.subject.startswith("p1:") and row.subject == subj
        assert rec["persoon"]["bsn"] not in row.subject


def test_error_reason_codes_are_stable_strings(world) -> None:
    for fail in _failures(world):
        with pytest.raises(PrivacyError) as exc:
            fail()
        assert exc.value.reason.replace("_", "").isalnum()
        assert str(exc.value).split(" ")[0] == exc.value.reason


def test_date_values_do_not_leak_either(world) -> None:
    rec, eid, subj = world.record(0)
    # fastavro's own message quotes this value; ours must not.
    bad = dict(rec, persoon=dict(rec["persoon"], geboortedatum="1985-13-45"))
    with pytest.raises(PrivacyError) as exc:
        seal_event(bad, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
    assert "1985" not in str(exc.value) + repr(exc.value)
