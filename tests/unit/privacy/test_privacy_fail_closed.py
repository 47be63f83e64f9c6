"""Fail closed: anything that is not a well-formed sealed bundle under the right key is an error,
never passed through; a record that cannot be fully sealed is never produced; layouts refuse paths
they could not seal."""

from __future__ import annotations

import pytest

from herstelbus.core.privacy import (
    ContextMismatch,
    InvalidIdentifier,
    MalformedSealedField,
    PiiLayout,
    RecordInvalid,
    Tampered,
    key_ref,
    new_key_epoch,
    open_event,
    seal_event,
    schema_fingerprint,
)
from privacy_fixtures import NOW, OVERDRACHT_PII_PATHS, OVERDRACHT_SCHEMA

GM = "GM0363"
SEALED = "verzegeld"


def _sealed(world, i=0):
    rec, eid, subj = world.record(i)
    return rec, eid, subj, seal_event(rec, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj)


@pytest.mark.parametrize(
    "value, reason",
    [
        (None, "not_sealed"),
        ("0612345678", "not_sealed"),
        (b"", "bad_version"),
        (b"\x02" + b"\x00" * 40, "bad_version"),
        (b"\x01\x05kek-a", "truncated"),
        (bytearray(b"\x01"), "not_sealed"),
    ],
)
def test_unsealed_or_malformed_bundle_refused(world, value, reason) -> None:
    rec, eid, subj, S = _sealed(world)
    with pytest.raises(MalformedSealedField) as exc:
        open_event(dict(S.record, verzegeld=value), layout=world.layout, keyring=world.keyring(GM), event_id=eid, subject=subj, key=S.wrapped_key)
    assert exc.value.reason == reason and exc.value.path == SEALED


def test_missing_bundle_refused(world) -> None:
    rec, eid, subj, S = _sealed(world)
    stripped = {k: v for k, v in S.record.items() if k != SEALED}
    with pytest.raises(MalformedSealedField):
        open_event(stripped, layout=world.layout, keyring=world.keyring(GM), event_id=eid, subject=subj, key=S.wrapped_key)
    with pytest.raises(MalformedSealedField):
        key_ref(stripped, layout=world.layout, gemeentecode=GM, event_id=eid, subject=subj)


def test_plaintext_personal_data_beside_the_bundle_refused(world) -> None:
    rec, eid, subj, S = _sealed(world)
    with pytest.raises(MalformedSealedField) as exc:
        open_event(dict(S.record, email=rec["email"]), layout=world.layout, keyring=world.keyring(GM), event_id=eid, subject=subj, key=S.wrapped_key)
    assert exc.value.reason == "plaintext_in_record" and exc.value.path == "email"


def test_layout_of_another_source_schema_refused(world) -> None:
    rec, eid, subj, S = _sealed(world)
    with pytest.raises(ContextMismatch) as exc:
        open_event(dict(S.record, bron_schema="00" * 8), layout=world.layout, keyring=world.keyring(GM), event_id=eid, subject=subj, key=S.wrapped_key)
    assert exc.value.reason == "schema_mismatch"


def test_nulls_are_sealed_too(world) -> None:
    rec, eid, subj = world.record(1)  # odd: no toeslagpartner
    assert rec["toeslagpartner"] is None
    S = seal_event(rec, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
    assert not set(OVERDRACHT_PII_PATHS) & set(S.record)  # presence is not revealed by the record's shape
    assert open_event(S.record, layout=world.layout, keyring=world.keyring(GM), event_id=eid, subject=subj, key=S.wrapped_key) == rec


def test_row_of_another_epoch_refused(world) -> None:
    rec, eid, subj, S = _sealed(world)
    reg = next(k for k in world.directory if k.gemeentecode == GM)
    later = new_key_epoch(reg, world.signing_key, NOW)
    S2 = seal_event(rec, layout=world.layout, epoch=later, event_id=eid, subject=subj)
    assert key_ref(S2.record, layout=world.layout, gemeentecode=GM, event_id=eid, subject=subj).key_id == later.kek_id
    with pytest.raises(Tampered) as exc:
        open_event(S2.record, layout=world.layout, keyring=world.keyring(GM), event_id=eid, subject=subj, key=S.wrapped_key)
    assert exc.value.reason == "key_id_mismatch"


def test_seal_refuses_bad_input_without_partial_output(world) -> None:
    rec, eid, subj = world.record(0)
    ep = world.epochs[GM]
    with pytest.raises(RecordInvalid) as exc:
        seal_event({k: v for k, v in rec.items() if k != "adres"}, layout=world.layout, epoch=ep, event_id=eid, subject=subj)
    assert exc.value.reason == "missing_field" and exc.value.path == "adres"
    with pytest.raises(RecordInvalid) as exc:
        seal_event(dict(rec, persoon={k: v for k, v in rec["persoon"].items() if k != "bsn"}), layout=world.layout, epoch=ep, event_id=eid, subject=subj)
    assert exc.value.path == "persoon"
    with pytest.raises(InvalidIdentifier):
        seal_event(rec, layout=world.layout, epoch=ep, event_id=eid, subject=rec["persoon"]["bsn"])
    with pytest.raises(InvalidIdentifier):
        seal_event(rec, layout=world.layout, epoch=ep, event_id="", subject=subj)


def test_layout_refuses_what_it_cannot_seal() -> None:
    with pytest.raises(InvalidIdentifier):
        PiiLayout(OVERDRACHT_SCHEMA, ["nonexistent"])
    with pytest.raises(InvalidIdentifier):
        PiiLayout(OVERDRACHT_SCHEMA, ["telefoon.deeper"])
    # The bundle holds whole top-level fields: a nested path is refused, not half-sealed.
    for nested in (["persoon.bsn"], [("toeslagpartner", "bsn")]):
        with pytest.raises(InvalidIdentifier):
            PiiLayout(OVERDRACHT_SCHEMA, nested)
    with pytest.raises(InvalidIdentifier):
        PiiLayout({**OVERDRACHT_SCHEMA, "fields": [*OVERDRACHT_SCHEMA["fields"], {"name": SEALED, "type": "bytes"}]})
    with pytest.raises(InvalidIdentifier):
        PiiLayout(OVERDRACHT_SCHEMA, [])
    arr = {"type": "record", "name": "R", "fields": [{"name": "xs", "type": {"type": "array", "items": {"type": "record", "name": "I", "fields": [{"name": "bsn", "type": "string"}]}}}]}
    with pytest.raises(InvalidIdentifier):
        PiiLayout(arr, ["xs.bsn"])
    assert PiiLayout(arr, ["xs"]).paths == ("xs",)


def test_fingerprint_is_single_object_header_bytes() -> None:
    fp = schema_fingerprint(OVERDRACHT_SCHEMA)
    assert len(fp) == 8
    assert PiiLayout(OVERDRACHT_SCHEMA, ["telefoon"]).fingerprint == fp


def test_authentic_bundle_with_trailing_bytes_refused(world) -> None:
    """A sealer bug (bytes after the bundle value) is refused even though the tag verifies."""
    rec, eid, subj = world.record(0)
    sloppy = PiiLayout(OVERDRACHT_SCHEMA, OVERDRACHT_PII_PATHS)
    sloppy._encode = lambda r, _enc=sloppy._encode: _enc(r) + b"\x00"
    S = seal_event(rec, layout=sloppy, epoch=world.epochs[GM], event_id=eid, subject=subj)
    with pytest.raises(MalformedSealedField) as exc:
        open_event(S.record, layout=world.layout, keyring=world.keyring(GM), event_id=eid, subject=subj, key=S.wrapped_key)
    assert exc.value.reason == "trailing_bytes" and exc.value.path == SEALED
