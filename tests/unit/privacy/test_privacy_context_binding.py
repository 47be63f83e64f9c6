"""Property 3: a sealed field only opens in its own record, field, gemeente and schema.

Besides moving real sealed fields around (which also changes the data key), the deterministic entry
point seals two contexts under the *same* data key, so the failures below come from the AAD alone.
"""

from __future__ import annotations

import dataclasses

import pytest

from herstelbus.core.privacy import ContextMismatch, PiiLayout, PrivacyError, Tampered, open_event, seal_event
from herstelbus.core.privacy import _hazmat as hz
from herstelbus.core.privacy.epochs import _epoch_from_parts
from herstelbus.core.privacy.seal import _seal
from privacy_fixtures import NOW, OVERDRACHT_PII_PATHS, OVERDRACHT_SCHEMA

GM = "GM0363"


def _open(world, sealed, eid, subj, gm=GM, layout=None, key=None):
    return open_event(
        sealed.record if hasattr(sealed, "record") else sealed,
        layout=layout or world.layout,
        keyring=world.keyring(gm),
        event_id=eid,
        subject=subj,
        key=key or sealed.wrapped_key,
    )


def test_move_field_to_another_record(world) -> None:
    (ra, ea, sa), (rb, eb, sb) = world.record(0), world.record(1)
    A = seal_event(ra, layout=world.layout, epoch=world.epochs[GM], event_id=ea, subject=sa)
    B = seal_event(rb, layout=world.layout, epoch=world.epochs[GM], event_id=eb, subject=sb)
    forged = dict(B.record, persoon=A.record["persoon"])
    with pytest.raises(Tampered) as exc:
        _open(world, forged, eb, sb, key=B.wrapped_key)
    assert exc.value.path == "persoon"


def test_move_field_to_another_field(world) -> None:
    rec, eid, subj = world.record(0)
    S = seal_event(rec, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
    swapped = dict(S.record, telefoon=S.record["email"], email=S.record["telefoon"])
    with pytest.raises(Tampered):
        _open(world, swapped, eid, subj, key=S.wrapped_key)


def test_move_field_to_another_gemeente(world) -> None:
    rec, eid, subj = world.record(0)
    for_a = seal_event(rec, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
    for_b = seal_event(rec, layout=world.layout, epoch=world.epochs["GM0599"], event_id=eid, subject=subj)
    forged = dict(for_b.record, persoon=for_a.record["persoon"])
    with pytest.raises(Tampered):
        _open(world, forged, eid, subj, gm="GM0599", key=for_b.wrapped_key)


def _same_key_world(world, gm_b: str = GM):
    """Two epochs sharing one KEK and id, for two gemeenten (never happens for real), and an RNG
    that hands out the same DEK every time: only the AAD can tell contexts apart."""
    kek, kek_id = b"\x11" * 32, "kek-samekeytest0001"
    epochs = {}
    for reg in world.directory:
        if reg.gemeentecode in {GM, gm_b}:
            wrapped = hz.hpke_wrap(kek, reg.public_key, hz.kek_info(reg.gemeentecode, kek_id, reg.key_id))
            epochs[reg.gemeentecode] = _epoch_from_parts(
                reg.gemeentecode, kek, kek_id, reg.key_id, wrapped, world.signing_key, NOW, NOW.replace(hour=13)
            )
    fixed = lambda n: (b"\x22" * 32 + b"\x33" * 12)[:n]  # noqa: E731
    return epochs, fixed


@pytest.mark.parametrize("what", ["event_id", "subject", "field", "gemeente", "schema"])
def test_aad_alone_binds_each_context_element(world, what) -> None:
    epochs, rng = _same_key_world(world, "GM0599")
    rec, eid, subj = world.record(0)
    _, eid2, subj2 = world.record(1)
    A = _seal(rec, world.layout, epochs[GM], eid, subj, rng)
    if what == "event_id":
        B = _seal(rec, world.layout, epochs[GM], eid2, subj, rng)
    elif what == "subject":
        B = _seal(rec, world.layout, epochs[GM], eid, subj2, rng)
    elif what == "gemeente":
        B = _seal(rec, world.layout, epochs["GM0599"], eid, subj, rng)
    elif what == "schema":
        other = PiiLayout(OVERDRACHT_SCHEMA, OVERDRACHT_PII_PATHS, fingerprint_bytes=b"\x00" * 8)
        B = _seal(rec, other, epochs[GM], eid, subj, rng)
    else:
        B = A
    # Same DEK and nonces in both: the ciphertext bodies differ only through the AAD tag.
    if what == "field":
        # email is field index 1, telefoon 3: give email's nonce to a blob at telefoon's place.
        forged = dict(A.record, telefoon=A.record["email"])
        bad = "telefoon"
    else:
        forged = dict(B.record, persoon=A.record["persoon"])
        bad = "persoon"
    # The row must open B's DEK; in the gemeente/schema cases open with B's own context.
    eid_b = eid2 if what == "event_id" else eid
    subj_b = subj2 if what == "subject" else subj
    gm_b = "GM0599" if what == "gemeente" else GM
    ring = world.keyring(gm_b)
    ring.add(epochs[gm_b].announcement)
    layout_b = other if what == "schema" else world.layout
    # Sanity: B itself opens.
    assert open_event(B.record, layout=layout_b, keyring=ring, event_id=eid_b, subject=subj_b, key=B.wrapped_key) == rec
    with pytest.raises(Tampered) as exc:
        open_event(forged, layout=layout_b, keyring=ring, event_id=eid_b, subject=subj_b, key=B.wrapped_key)
    assert exc.value.path == bad


def test_wrapped_key_row_bound_to_its_context(world) -> None:
    (ra, ea, sa), (rb, eb, sb) = world.record(0), world.record(1)
    A = seal_event(ra, layout=world.layout, epoch=world.epochs[GM], event_id=ea, subject=sa)
    B = seal_event(rb, layout=world.layout, epoch=world.epochs[GM], event_id=eb, subject=sb)
    # A's row offered for B: refused as the wrong row.
    with pytest.raises(ContextMismatch):
        _open(world, B, eb, sb, key=A.wrapped_key)
    # A's wrapped bytes relabelled as B's row: the DEK wrap's AAD catches it.
    relabelled = dataclasses.replace(A.wrapped_key, subject=sb, event_id=eb)
    with pytest.raises(Tampered):
        _open(world, B, eb, sb, key=relabelled)
    # A flipped bit in the wrapped DEK.
    w = bytearray(B.wrapped_key.wrapped)
    w[-1] ^= 1
    with pytest.raises(Tampered):
        _open(world, B, eb, sb, key=dataclasses.replace(B.wrapped_key, wrapped=bytes(w)))


def test_bit_flip_anywhere_in_a_sealed_field(world) -> None:
    rec, eid, subj = world.record(0)
    S = seal_event(rec, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
    blob = S.record["persoon"]
    for i in range(len(blob)):
        b = bytearray(blob)
        b[i] ^= 0x01
        with pytest.raises(PrivacyError) as exc:
            _open(world, dict(S.record, persoon=bytes(b)), eid, subj, key=S.wrapped_key)
        assert exc.value.reason in {"tampered", "key_id_mismatch", "bad_version", "truncated", "bad_key_id"}
