"""Property 2: only the addressed gemeente can read; the exchange cannot open its own output.

The exchange holds gemeente *public* keys, its Ed25519 signing key, the current SealingEpoch and the
key-store rows it wrote. Opening needs an OpeningKeyring, which needs an X25519 *private* key; the
SealingEpoch has no unwrap/open method. We also try every piece of exchange material as a key.
"""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from herstelbus.core.privacy import (
    InvalidKeyMaterial,
    KeyUnavailable,
    OpeningKeyring,
    SealingEpoch,
    Tampered,
    generate_gemeente_key,
    open_event,
    seal_event,
)
from herstelbus.core.privacy import _hazmat as hz
from herstelbus.core.privacy.keys import hpke_private

GM = "GM0363"


def _raws(key) -> list[bytes]:
    """Every raw byte string of a key, of each part of a hybrid or exchange key."""
    if hasattr(key, "mlkem"):  # a hybrid key: ML-KEM-768 and X25519 parts
        return _raws(key.mlkem) + _raws(key.x25519)
    if hasattr(key, "ed25519"):  # the exchange's signing or verify keys
        return [b for part in (key.ed25519, key.mldsa65) if part is not None for b in _raws(part)]
    try:
        return [key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())]
    except (AttributeError, ValueError, TypeError):
        pass
    try:
        return [key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)]
    except (AttributeError, ValueError, TypeError):
        return [key.public_bytes_raw() if hasattr(key, "public_bytes_raw") else key.private_bytes_raw()]


def test_gemeente_opens(world) -> None:
    rec, eid, subj = world.record()
    sealed = seal_event(rec, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
    assert open_event(sealed.record, layout=world.layout, keyring=world.keyring(GM), event_id=eid, subject=subj, key=sealed.wrapped_key) == rec


def test_exchange_material_cannot_open(world) -> None:
    rec, eid, subj = world.record()
    epoch = world.epochs[GM]
    sealed = seal_event(rec, layout=world.layout, epoch=epoch, event_id=eid, subject=subj)
    public_keys = [k.public_key for k in world.directory]

    # No API on the exchange's epoch that unwraps or opens anything.
    assert not [n for n in dir(SealingEpoch) if any(w in n.lower() for w in ("open", "unwrap", "decrypt"))]

    # A keyring cannot be built from public keys or the signing key.
    for k in [*public_keys, world.signing_key]:
        with pytest.raises(InvalidKeyMaterial):
            OpeningKeyring(GM, [k], [world.signing_key.public_key()])

    # A keyring with any private key other than the gemeente's (the exchange has none; generate one)
    # accepts the genuine announcement but cannot unwrap the KEK.
    imposter = OpeningKeyring(GM, [generate_gemeente_key()], [world.signing_key.public_key()])
    imposter.add(epoch.announcement)
    with pytest.raises(KeyUnavailable):
        open_event(sealed.record, layout=world.layout, keyring=imposter, event_id=eid, subject=subj, key=sealed.wrapped_key)

    # Brute attempt: every 32-byte value the exchange holds, as KEK and as DEK, on the wrapped key and
    # on the sealed bundle. Nothing decrypts.
    material = [b for k in [*public_keys, world.signing_key, world.signing_key.public_key()] for b in _raws(k)]
    material += [hz.kek_info(GM, epoch.kek_id, epoch.recipient_key_id)[:32].ljust(32, b"\0")]
    wrapped = sealed.wrapped_key.wrapped
    for key in material:
        aead = AESGCM(key[:32])
        with pytest.raises(InvalidTag):
            aead.decrypt(wrapped[1:13], wrapped[13:], hz.dek_aad(GM, subj, eid, epoch.kek_id))
        kid, nonce, ct = hz.parse_sealed(sealed.record["verzegeld"])
        with pytest.raises(InvalidTag):
            aead.decrypt(nonce, ct, None)

    # And the HPKE-wrapped KEK does not open with a key of the exchange's own making.
    with pytest.raises(Tampered):
        hz.hpke_unwrap(epoch.announcement.wrapped_kek, hpke_private(generate_gemeente_key(world.suite)),
                       hz.kek_info(GM, epoch.kek_id, epoch.recipient_key_id), epoch.announcement.suite)


def test_other_gemeente_cannot_open(world) -> None:
    rec, eid, subj = world.record()
    sealed = seal_event(rec, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
    other = world.keyring("GM0599")
    # its own key store rows would never include this one; even handed the row, it fails closed
    with pytest.raises(Exception) as exc:
        open_event(sealed.record, layout=world.layout, keyring=other, event_id=eid, subject=subj, key=sealed.wrapped_key)
    assert type(exc.value).__name__ in {"ContextMismatch", "UnknownKeyEpoch"}


def test_sealed_record_holds_no_plaintext(world) -> None:
    from privacy_fixtures import all_strings

    blobs = []
    for i in range(20):
        rec, eid, subj = world.record(i)
        sealed = seal_event(rec, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
        # One sealed unit; no personal-data field is left in the record, in any form.
        assert set(sealed.record) == (set(rec) - set(world.layout.paths)) | {"verzegeld"}
        blob = sealed.record["verzegeld"]
        assert isinstance(blob, bytes)
        clear = repr({k: v for k, v in sealed.record.items() if k != "verzegeld"})
        for path in world.layout.paths:
            for s in all_strings(rec[path]):
                if len(s) >= 4 and not (s.startswith("GM") and s[2:].isdigit()):
                    assert s.encode() not in blob and s not in clear
        # the caller's record is never modified in place
        assert rec == world.record(i)[0]
        blobs.append(blob)
    assert len(set(blobs)) == len(blobs)
