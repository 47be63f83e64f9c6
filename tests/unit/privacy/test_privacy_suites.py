"""Crypto agility (issue 12): the hybrid suite's own guarantees — both signatures required, no
downgrade to the classical suite, migration by rotation with old records still opening — and ops
sealing in both suites. The shared properties run in both suites through the ``world`` fixture."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from herstelbus.core.privacy import (
    HYBRID_SUITE,
    X25519_SUITE,
    GemeenteKey,
    KeyEpoch,
    KeyUnavailable,
    MalformedAnnouncement,
    OpeningKeyring,
    SignatureInvalid,
    SignatureMissing,
    Tampered,
    choose_wrapping_key,
    generate_gemeente_key,
    generate_signing_key,
    needs_new_epoch,
    new_key_epoch,
    open_event,
    seal_event,
)
from herstelbus.core.privacy import _hazmat as hz
from herstelbus.core.privacy.epochs import PQ_SIGNATURE_LEN, SIGNATURE_LEN
from herstelbus.core.privacy.keys import ExchangeVerifyKey
from herstelbus.core.privacy.ops import open_for_ops, seal_for_ops
from privacy_fixtures import NOW

GM = "GM0363"


only_hybrid = pytest.mark.parametrize("suite", [HYBRID_SUITE], ids=["mlkem768x25519"], indirect=True)


@pytest.fixture
def hybrid(world):
    assert world.suite is HYBRID_SUITE
    return world


def _ring(world, *verify_keys) -> OpeningKeyring:
    return OpeningKeyring(GM, [world.gemeente_keys[GM]], list(verify_keys) or [world.signing_key.public_key()])


def test_wire_sizes(world) -> None:
    ann = world.epochs[GM].announcement
    suite = world.suite
    assert len(ann.wrapped_kek) == suite.wrapped_kek_len == (1168 if suite is HYBRID_SUITE else 80)
    assert len(ann.signatures()) == SIGNATURE_LEN + (PQ_SIGNATURE_LEN if suite.pq_signature else 0)
    assert ann.to_bytes()[0] == suite.announcement_version
    assert ann.kek_id.startswith(suite.kek_prefix) and ann.recipient_key_id.startswith(suite.name + "-")


@only_hybrid
def test_the_ml_dsa_signature_is_required(hybrid) -> None:
    ann = hybrid.epochs[GM].announcement
    ring = _ring(hybrid)
    with pytest.raises(MalformedAnnouncement):  # stripped to the classical signature: a downgrade
        ring.add(dataclasses.replace(ann, pq_signature=None))  # (as an object too: its wire form is checked)
    with pytest.raises(MalformedAnnouncement):
        ring.add(ann.body() + ann.signature)
    with pytest.raises(SignatureMissing):
        ring.add(ann.body())
    mallory = generate_signing_key()
    forged = dataclasses.replace(ann, pq_signature=mallory.mldsa65.sign(hz.LABEL_EPOCH_PQ_SIG + ann.body()))
    with pytest.raises(SignatureInvalid):  # her ML-DSA signature under the exchange's key id
        ring.add(forged.to_bytes())
    flipped = bytearray(ann.pq_signature)
    flipped[100] ^= 1
    with pytest.raises(SignatureInvalid):
        ring.add(dataclasses.replace(ann, pq_signature=bytes(flipped)).to_bytes())
    # the Ed25519 signature alone is not trusted either: a keyring that knows only the Ed25519 key
    with pytest.raises(SignatureInvalid) as exc:
        _ring(hybrid, ExchangeVerifyKey(hybrid.signing_key.ed25519.public_key())).add(ann.to_bytes())
    assert exc.value.reason == "unknown_signer"
    assert ring.known_epochs == frozenset()
    ring.add(ann.to_bytes())
    assert ring.known_epochs == {ann.kek_id}


@only_hybrid
def test_the_ml_dsa_signature_covers_the_version_2_label(hybrid) -> None:
    """An ML-DSA signature over the Ed25519 message (another label) does not verify: each signature
    is bound to its own use."""
    ann = hybrid.epochs[GM].announcement
    wrong = hybrid.signing_key.mldsa65.sign(hz.LABEL_EPOCH_SIG + ann.body())
    with pytest.raises(SignatureInvalid):
        _ring(hybrid).add(dataclasses.replace(ann, pq_signature=wrong).to_bytes())


@only_hybrid
def test_no_suite_confusion_on_the_wire(hybrid) -> None:
    wire = bytearray(hybrid.epochs[GM].announcement.to_bytes())
    wire[0] = X25519_SUITE.announcement_version  # a hybrid announcement passed off as version 1
    with pytest.raises(MalformedAnnouncement):
        KeyEpoch.from_bytes(bytes(wire))
    ann = hybrid.epochs[GM].announcement
    for bad in (dataclasses.replace(ann, kek_id="kek-aaaaaaaaaaaaaaaa"),  # a classical KEK id
                dataclasses.replace(ann, recipient_key_id="x25519-aaaaaaaaaaaaaaaa")):
        with pytest.raises(MalformedAnnouncement):
            _ring(hybrid).add(bad.to_bytes())


def test_an_exchange_without_ml_dsa_cannot_start_a_hybrid_epoch() -> None:
    key = generate_gemeente_key(HYBRID_SUITE)
    reg = GemeenteKey(GM, key.public_key(), NOW - dt.timedelta(days=30))
    with pytest.raises(KeyUnavailable) as exc:
        new_key_epoch(reg, generate_signing_key(pq=False), NOW)
    assert exc.value.reason == "no_pq_signing_key"
    classical = GemeenteKey(GM, generate_gemeente_key(X25519_SUITE).public_key(), NOW - dt.timedelta(days=30))
    assert new_key_epoch(classical, generate_signing_key(pq=False), NOW).announcement.suite is X25519_SUITE


def test_migration_from_x25519_to_hybrid_by_rotation(world) -> None:
    """Register a hybrid key beside the classical one: after the overlap new epochs use it; records
    of the old epoch keep opening while the gemeente keeps its old private key."""
    signing = generate_signing_key()
    old_priv, new_priv = generate_gemeente_key(X25519_SUITE), generate_gemeente_key(HYBRID_SUITE)
    old = GemeenteKey(GM, old_priv.public_key(), NOW - dt.timedelta(days=400))
    new = GemeenteKey(GM, new_priv.public_key(), NOW - dt.timedelta(days=1))
    before = new_key_epoch(choose_wrapping_key([old, new], GM, NOW), signing, NOW)
    assert before.announcement.suite is X25519_SUITE  # the new key is still in its overlap
    later = NOW + dt.timedelta(days=7)
    chosen = choose_wrapping_key([old, new], GM, later)
    assert chosen.suite is HYBRID_SUITE and needs_new_epoch(before, chosen, later)
    after = new_key_epoch(chosen, signing, later)
    assert after.announcement.suite is HYBRID_SUITE

    ring = OpeningKeyring(GM, [old_priv, new_priv], [signing.public_key()])
    for epoch in (before, after):
        ring.add(epoch.announcement.to_bytes())
        rec, eid, subj = world.record(3)
        sealed = seal_event(rec, layout=world.layout, epoch=epoch, event_id=eid, subject=subj)
        assert open_event(sealed.record, layout=world.layout, keyring=ring, event_id=eid, subject=subj,
                          key=sealed.wrapped_key) == rec


@pytest.mark.parametrize("suite", [HYBRID_SUITE, X25519_SUITE], ids=lambda s: s.name)
def test_ops_sealing_in_both_suites(suite) -> None:
    ops = generate_gemeente_key(suite)
    sealed, key_id = seal_for_ops(b"original record", ops.public_key(), "ctx-1")
    assert key_id.startswith(suite.name + "-")
    assert open_for_ops(sealed, ops, "ctx-1") == b"original record"
    with pytest.raises(Tampered):
        open_for_ops(sealed, ops, "ctx-2")  # another dead letter
    with pytest.raises(Tampered):
        open_for_ops(sealed, generate_gemeente_key(suite), "ctx-1")  # another key
    other = X25519_SUITE if suite is HYBRID_SUITE else HYBRID_SUITE
    with pytest.raises(Tampered):
        open_for_ops(sealed, generate_gemeente_key(other), "ctx-1")  # a key of the other suite


def test_after_migration_new_classical_epochs_can_be_refused(world) -> None:
    """A gemeente on the hybrid suite sets a cutoff: classical epochs from then on are refused (a
    broken Ed25519 alone can no longer introduce one), older classical epochs keep opening."""
    signing = generate_signing_key()
    old_priv = generate_gemeente_key(X25519_SUITE)
    old = GemeenteKey(GM, old_priv.public_key(), NOW - dt.timedelta(days=400))
    before = new_key_epoch(old, signing, NOW - dt.timedelta(days=10))
    after = new_key_epoch(old, signing, NOW)
    ring = OpeningKeyring(GM, [old_priv], [signing.public_key()], classical_until=NOW - dt.timedelta(days=1))
    ring.add(before.announcement.to_bytes())
    with pytest.raises(SignatureInvalid) as exc:
        ring.add(after.announcement.to_bytes())
    assert exc.value.reason == "classical_after_cutoff"
    assert ring.known_epochs == {before.kek_id}
