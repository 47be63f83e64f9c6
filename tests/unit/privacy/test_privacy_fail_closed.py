"""Fail closed: anything that is not a well-formed sealed field under the right key is an error,
never passed through; a record that cannot be fully sealed is never produced; layouts refuse paths
they could not seal."""

from __future__ import annotations

import pytest

from herstelbus.core.privacy import (
    InvalidIdentifier,
    MalformedSealedField,
    PiiLayout,
    RecordInvalid,
    Tampered,
    key_ref,
    open_event,
    seal_event,
    schema_fingerprint,
)
from privacy_fixtures import OVERDRACHT_SCHEMA

GM = "GM0363"


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
def test_unsealed_or_malformed_field_refused(world, value, reason) -> None:
    rec, eid, subj, S = _sealed(world)
    with pytest.raises(MalformedSealedField) as exc:
        open_event(dict(S.record, telefoon=value), layout=world.layout, keyring=world.keyring(GM), event_id=eid, subject=subj, key=S.wrapped_key)
    assert exc.value.reason == reason and exc.value.path == "telefoon"


def test_missing_sealed_field_refused(world) -> None:
    rec, eid, subj, S = _sealed(world)
    stripped = {k: v for k, v in S.record.items() if k != "email"}
    with pytest.raises(MalformedSealedField):
        open_event(stripped, layout=world.layout, keyring=world.keyring(GM), event_id=eid, subject=subj, key=S.wrapped_key)
    with pytest.raises(MalformedSealedField):
        key_ref(stripped, layout=world.layout, gemeentecode=GM, event_id=eid, subject=subj)


def test_nulls_are_sealed_too(world) -> None:
    rec, eid, subj = world.record(1)  # odd: no toeslagpartner
    assert rec["toeslagpartner"] is None
    S = seal_event(rec, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
    assert isinstance(S.record["toeslagpartner"], bytes)  # presence is not revealed
    assert open_event(S.record, layout=world.layout, keyring=world.keyring(GM), event_id=eid, subject=subj, key=S.wrapped_key) == rec


def test_mixed_key_ids_refused(world) -> None:
    rec, eid, subj, S = _sealed(world)
    other = seal_event(rec, layout=world.layout, epoch=world.epochs["GM0599"], event_id=eid, subject=subj)
    mixed = dict(S.record, email=other.record["email"])
    with pytest.raises(Tampered):
        key_ref(mixed, layout=world.layout, gemeentecode=GM, event_id=eid, subject=subj)
    with pytest.raises(Tampered) as exc:
        open_event(mixed, layout=world.layout, keyring=world.keyring(GM), event_id=eid, subject=subj, key=S.wrapped_key)
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


def test_nested_paths_and_null_ancestors(world) -> None:
    layout = PiiLayout(OVERDRACHT_SCHEMA, ["persoon.bsn", "persoon.achternaam", ("toeslagpartner", "bsn"), "adres", "adres.postcode", "telefoon", "email"])
    assert layout.paths == ("persoon.bsn", "persoon.achternaam", "toeslagpartner.bsn", "adres", "telefoon", "email")
    ring = world.keyring(GM)
    for i in (0, 1):  # with and without toeslagpartner
        rec, eid, subj = world.record(i)
        S = seal_event(rec, layout=layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
        assert isinstance(S.record["persoon"]["bsn"], bytes) and S.record["persoon"]["voornamen"] == rec["persoon"]["voornamen"]
        assert rec["persoon"]["bsn"] == world.record(i)[0]["persoon"]["bsn"]  # input untouched
        if rec["toeslagpartner"] is None:
            assert S.record["toeslagpartner"] is None
        assert open_event(S.record, layout=layout, keyring=ring, event_id=eid, subject=subj, key=S.wrapped_key) == rec


def test_layout_refuses_what_it_cannot_seal() -> None:
    with pytest.raises(InvalidIdentifier):
        PiiLayout(OVERDRACHT_SCHEMA, ["nonexistent"])
    with pytest.raises(InvalidIdentifier):
        PiiLayout(OVERDRACHT_SCHEMA, ["telefoon.deeper"])
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
