"""Property 4: key epochs are introduced only by the exchange's signature; unsigned, forged or
tampered announcements are rejected with a typed error before anything is decrypted."""

from __future__ import annotations

import dataclasses

import pytest

from herstelbus.core.privacy import (
    ContextMismatch,
    GemeenteKey,
    KeyEpoch,
    MalformedAnnouncement,
    OpeningKeyring,
    SignatureInvalid,
    SignatureMissing,
    UnknownKeyEpoch,
    generate_signing_key,
    new_key_epoch,
    open_event,
    seal_event,
)
from herstelbus.core.privacy import _hazmat, epochs, seal
from herstelbus.core.privacy.epochs import sign_announcement
from herstelbus.core.privacy.keys import key_id_for
from privacy_fixtures import NOW

GM = "GM0363"


@pytest.fixture
def spy(monkeypatch):
    """Counts every decryption primitive the opening side could reach."""
    calls = {"hpke": 0, "aes": 0}
    real_unwrap, real_aes = _hazmat.hpke_unwrap, seal.AESGCM

    def unwrap(*a, **k):
        calls["hpke"] += 1
        return real_unwrap(*a, **k)

    def aes(*a, **k):
        calls["aes"] += 1
        return real_aes(*a, **k)

    monkeypatch.setattr(_hazmat, "hpke_unwrap", unwrap)
    monkeypatch.setattr(seal, "AESGCM", aes)
    return calls


def _ring(world):
    return OpeningKeyring(GM, [world.gemeente_keys[GM]], [world.signing_key.public_key()])


def _assert_never_decrypted(world, ring, epoch, spy):
    rec, eid, subj = world.record()
    sealed = seal_event(rec, layout=world.layout, epoch=epoch, event_id=eid, subject=subj)
    spy["aes"] = 0  # sealing itself constructs one; count opening only
    with pytest.raises(UnknownKeyEpoch):
        open_event(sealed.record, layout=world.layout, keyring=ring, event_id=eid, subject=subj, key=sealed.wrapped_key)
    assert spy == {"hpke": 0, "aes": 0}


def test_unsigned_announcement_rejected(world, spy) -> None:
    ring = _ring(world)
    ann = world.epochs[GM].announcement
    unsigned = dataclasses.replace(ann, signature=None)
    with pytest.raises(SignatureMissing):
        ring.add(unsigned)
    with pytest.raises(SignatureMissing):
        ring.add(ann.body())  # the wire form without its signature
    _assert_never_decrypted(world, ring, world.epochs[GM], spy)


def test_forged_announcement_rejected(world, spy) -> None:
    ring = _ring(world)
    ann = world.epochs[GM].announcement
    mallory = generate_signing_key()
    # Mallory signs with her own key but claims the exchange's key id.
    forged = dataclasses.replace(ann, signature=mallory.ed25519.sign(_hazmat.LABEL_EPOCH_SIG + ann.body()))
    with pytest.raises(SignatureInvalid):
        ring.add(forged)
    # Mallory runs her own "exchange": a real epoch wrapped to the gemeente's public key, signed by her.
    reg = GemeenteKey(GM, world.gemeente_keys[GM].public_key(), NOW.replace(year=2025))
    rogue = new_key_epoch(reg, mallory, NOW)
    with pytest.raises(SignatureInvalid) as exc:
        ring.add(rogue.announcement.to_bytes())
    assert exc.value.reason == "unknown_signer"
    _assert_never_decrypted(world, ring, rogue, spy)


@pytest.mark.parametrize("field", ["wrapped_kek", "not_after", "recipient_key_id", "kek_id", "signature"])
def test_tampered_announcement_rejected(world, spy, field) -> None:
    ring = _ring(world)
    ann = world.epochs[GM].announcement
    if field == "wrapped_kek":
        w = bytearray(ann.wrapped_kek)
        w[0] ^= 1
        bad = dataclasses.replace(ann, wrapped_kek=bytes(w))
    elif field == "not_after":
        bad = dataclasses.replace(ann, not_after=ann.not_after.replace(year=2030))
    elif field == "recipient_key_id":  # another key of the same suite (another suite: malformed)
        bad = dataclasses.replace(ann, recipient_key_id=f"{ann.suite.name}-aaaaaaaaaaaaaaaa")
    elif field == "kek_id":
        bad = dataclasses.replace(ann, kek_id=ann.suite.kek_prefix + "aaaaaaaaaaaaaaaa")
    else:
        s = bytearray(ann.signature)
        s[10] ^= 1
        bad = dataclasses.replace(ann, signature=bytes(s))
    with pytest.raises(SignatureInvalid):
        ring.add(bad.to_bytes())
    assert spy["hpke"] == 0
    assert ring.known_epochs == frozenset()


def test_every_single_byte_flip_of_the_wire_form_is_rejected(world) -> None:
    ring = _ring(world)
    wire = world.epochs[GM].announcement.to_bytes()
    for i in range(len(wire)):
        b = bytearray(wire)
        b[i] ^= 0x04
        with pytest.raises((SignatureInvalid, MalformedAnnouncement)):
            ring.add(bytes(b))
    assert ring.known_epochs == frozenset()


@pytest.mark.parametrize("cut", [0, 1, 10, -1, -64])
def test_truncated_or_padded_announcement_malformed(world, cut) -> None:
    wire = world.epochs[GM].announcement.to_bytes()
    data = wire[:cut] if cut else b""
    with pytest.raises((MalformedAnnouncement, SignatureMissing)):
        _ring(world).add(data)
    with pytest.raises(MalformedAnnouncement):
        _ring(world).add(wire + b"\x00")


def test_genuine_announcement_round_trips_and_opens(world, spy) -> None:
    ring = _ring(world)
    ann = KeyEpoch.from_bytes(world.epochs[GM].announcement.to_bytes())
    assert ann == world.epochs[GM].announcement
    ring.add(ann)
    ring.add(ann)  # idempotent
    rec, eid, subj = world.record()
    sealed = seal_event(rec, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
    assert open_event(sealed.record, layout=world.layout, keyring=ring, event_id=eid, subject=subj, key=sealed.wrapped_key) == rec


def test_announcement_for_another_gemeente_or_conflicting_id(world) -> None:
    ring = _ring(world)
    with pytest.raises(ContextMismatch):
        ring.add(world.epochs["GM0599"].announcement)
    ann = world.epochs[GM].announcement
    ring.add(ann)
    clash = sign_announcement(dataclasses.replace(ann, not_after=ann.not_after.replace(year=2031), signature=None), world.signing_key)
    with pytest.raises(ContextMismatch):
        ring.add(clash)


def test_signer_key_id_is_the_exchange_key(world) -> None:
    ann = world.epochs[GM].announcement
    assert ann.signer_key_id == key_id_for(world.signing_key.ed25519.public_key())
    if ann.suite.pq_signature:
        assert ann.pq_signer_key_id == key_id_for(world.signing_key.mldsa65.public_key())
    else:
        assert ann.pq_signer_key_id is None and ann.pq_signature is None
    assert epochs.SIGNATURE_LEN == len(world.epochs[GM].announcement.signature)
