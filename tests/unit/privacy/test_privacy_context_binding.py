"""Property 3: a sealed bundle only opens in its own record, gemeente and record type / schema.

Besides moving real sealed bundles around (which also changes the data key), the deterministic entry
point seals two contexts under the *same* data key and nonce, so the failures below come from the
AAD alone. With one bundle per event, "another field" means another record type: a bundle of one
schema put into the ``verzegeld`` field of a record of another (other bundle fingerprint).
"""

from __future__ import annotations

import dataclasses

import pytest

from herstelbus.core.contracts.catalogue import get_catalogue
from herstelbus.core.contracts.evolution import samples
from herstelbus.core.privacy import ContextMismatch, PiiLayout, PrivacyError, Tampered, open_event, seal_event
from herstelbus.core.privacy import _hazmat as hz
from herstelbus.core.privacy.epochs import _epoch_from_parts
from herstelbus.core.privacy.keys import hpke_public
from herstelbus.core.privacy.seal import _seal
from privacy_fixtures import NOW, OVERDRACHT_PII_PATHS, OVERDRACHT_SCHEMA

GM = "GM0363"
SEALED = "verzegeld"
ERKENNING = get_catalogue().current("erkenning").schema
# The same bundle under another source schema version (a compatible clear field added).
OVERDRACHT_V2 = {
    **OVERDRACHT_SCHEMA,
    "fields": [*OVERDRACHT_SCHEMA["fields"], {"name": "kanaal", "type": ["null", "string"], "default": None}],
}


def _open(world, sealed, eid, subj, gm=GM, layout=None, key=None):
    return open_event(
        sealed.record if hasattr(sealed, "record") else sealed,
        layout=layout or world.layout,
        keyring=world.keyring(gm),
        event_id=eid,
        subject=subj,
        key=key or sealed.wrapped_key,
    )


def test_move_bundle_to_another_record(world) -> None:
    (ra, ea, sa), (rb, eb, sb) = world.record(0), world.record(1)
    A = seal_event(ra, layout=world.layout, epoch=world.epochs[GM], event_id=ea, subject=sa)
    B = seal_event(rb, layout=world.layout, epoch=world.epochs[GM], event_id=eb, subject=sb)
    forged = dict(B.record, verzegeld=A.record[SEALED])
    with pytest.raises(Tampered) as exc:
        _open(world, forged, eb, sb, key=B.wrapped_key)
    assert exc.value.path == SEALED


def test_move_bundle_to_another_gemeente(world) -> None:
    rec, eid, subj = world.record(0)
    for_a = seal_event(rec, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
    for_b = seal_event(rec, layout=world.layout, epoch=world.epochs["GM0599"], event_id=eid, subject=subj)
    forged = dict(for_b.record, verzegeld=for_a.record[SEALED])
    with pytest.raises(Tampered):
        _open(world, forged, eid, subj, gm="GM0599", key=for_b.wrapped_key)


def test_move_bundle_into_a_record_of_another_type(world) -> None:
    """An overdracht's bundle in an erkenning record of the same person and event id."""
    rec, eid, subj = world.record(0)
    erk_layout = PiiLayout(ERKENNING)
    erk = samples(ERKENNING)[0]
    A = seal_event(rec, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
    B = seal_event(erk, layout=erk_layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
    forged = dict(B.record, verzegeld=A.record[SEALED])
    with pytest.raises(Tampered):
        _open(world, forged, eid, subj, layout=erk_layout, key=B.wrapped_key)
    # A routed record names its source schema: opening it with another type's layout is refused
    # before any decryption.
    routed = dict(A.record, bron_schema=world.layout.fingerprint_hex)
    with pytest.raises(ContextMismatch) as exc:
        _open(world, routed, eid, subj, layout=erk_layout, key=A.wrapped_key)
    assert exc.value.reason == "schema_mismatch"


def _same_key_world(world, gm_b: str = GM):
    """Two epochs sharing one KEK and id, for two gemeenten (never happens for real), and an RNG
    that hands out the same DEK and nonces every time: only the AAD can tell contexts apart."""
    kek = b"\x11" * 32
    epochs = {}
    for reg in world.directory:
        if reg.gemeentecode in {GM, gm_b}:
            kek_id = reg.suite.kek_prefix + "samekeytest0001"
            wrapped = hz.hpke_wrap(kek, hpke_public(reg.public_key), hz.kek_info(reg.gemeentecode, kek_id, reg.key_id),
                                   reg.suite)
            epochs[reg.gemeentecode] = _epoch_from_parts(
                reg.gemeentecode, kek, kek_id, reg.key_id, wrapped, world.signing_key, NOW, NOW.replace(hour=13)
            )
    fixed = lambda n: (b"\x22" * 32 + b"\x33" * 12 + b"\x44" * 12)[:n]  # noqa: E731
    return epochs, fixed


@pytest.mark.parametrize("what", ["event_id", "subject", "gemeente", "record_type", "bundle_schema", "source_schema"])
def test_aad_alone_binds_each_context_element(world, what) -> None:
    epochs, rng = _same_key_world(world, "GM0599")
    rec, eid, subj = world.record(0)
    _, eid2, subj2 = world.record(1)
    A = _seal(rec, world.layout, epochs[GM], eid, subj, rng)
    layout_b, rec_b, eid_b, subj_b, gm_b = world.layout, rec, eid, subj, GM
    if what == "event_id":
        eid_b = eid2
    elif what == "subject":
        subj_b = subj2
    elif what == "gemeente":
        gm_b = "GM0599"
    elif what == "record_type":  # other bundle schema fingerprint (and source fingerprint)
        layout_b, rec_b = PiiLayout(ERKENNING), samples(ERKENNING)[0]
    elif what == "bundle_schema":  # same source fingerprint (pii tags are not in it), other bundle
        layout_b = PiiLayout(OVERDRACHT_SCHEMA, OVERDRACHT_PII_PATHS[:-1])
        assert layout_b.fingerprint == world.layout.fingerprint
    else:  # same bundle schema, other source schema version
        layout_b, rec_b = PiiLayout(OVERDRACHT_V2, OVERDRACHT_PII_PATHS), dict(rec, kanaal=None)
        assert layout_b.bundle_fingerprint == world.layout.bundle_fingerprint
    B = _seal(rec_b, layout_b, epochs[gm_b], eid_b, subj_b, rng)
    # Same DEK, nonce and key id in both: the ciphertexts differ only through the AAD in the tag.
    head = len(hz.sealed_header(epochs[GM].kek_id)) + hz.NONCE_LEN
    assert A.record[SEALED][:head] == B.record[SEALED][:head]
    ring = world.keyring(gm_b)
    ring.add(epochs[gm_b].announcement)
    # Sanity: B itself opens.
    assert open_event(B.record, layout=layout_b, keyring=ring, event_id=eid_b, subject=subj_b, key=B.wrapped_key) == rec_b
    forged = dict(B.record, verzegeld=A.record[SEALED])
    with pytest.raises(Tampered) as exc:
        open_event(forged, layout=layout_b, keyring=ring, event_id=eid_b, subject=subj_b, key=B.wrapped_key)
    assert exc.value.path == SEALED


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


def test_bit_flip_anywhere_in_the_sealed_bundle(world) -> None:
    rec, eid, subj = world.record(0)
    S = seal_event(rec, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
    blob = S.record[SEALED]
    for i in range(len(blob)):
        b = bytearray(blob)
        b[i] ^= 0x01
        with pytest.raises(PrivacyError) as exc:
            _open(world, dict(S.record, verzegeld=bytes(b)), eid, subj, key=S.wrapped_key)
        assert exc.value.reason in {"tampered", "key_id_mismatch", "bad_version", "truncated", "bad_key_id"}
