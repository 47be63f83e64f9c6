"""Gemeente key pairs and key ids (the CLI's keygen/register will call these)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from herstelbus.core.privacy import (
    InvalidKeyMaterial,
    generate_gemeente_key,
    generate_signing_key,
    key_id_for,
    load_gemeente_private_key,
    load_gemeente_public_key,
    load_signing_key,
    load_verify_key,
    private_key_to_pem,
    public_key_to_pem,
)


def test_pem_round_trip_and_key_ids() -> None:
    priv = generate_gemeente_key()
    pem = private_key_to_pem(priv)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    enc = private_key_to_pem(priv, password=b"correct horse")
    assert enc.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    pub_pem = public_key_to_pem(priv.public_key())
    assert pub_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    kid = key_id_for(priv.public_key())
    assert kid.startswith("x25519-") and len(kid) == len("x25519-") + 16
    for loaded in (load_gemeente_private_key(pem), load_gemeente_private_key(enc, b"correct horse")):
        assert key_id_for(loaded.public_key()) == kid
    assert key_id_for(load_gemeente_public_key(pub_pem)) == kid
    assert key_id_for(generate_gemeente_key().public_key()) != kid

    sk = generate_signing_key()
    assert key_id_for(load_signing_key(private_key_to_pem(sk)).public_key()) == key_id_for(sk.public_key())
    assert key_id_for(load_verify_key(public_key_to_pem(sk.public_key()))).startswith("ed25519-")


def test_key_id_is_fixed_function_of_raw_key() -> None:
    pub = x25519.X25519PublicKey.from_public_bytes(bytes(range(32)))
    assert key_id_for(pub) == key_id_for(x25519.X25519PublicKey.from_public_bytes(bytes(range(32))))


def test_wrong_types_and_garbage_refused() -> None:
    sk_pem = private_key_to_pem(generate_signing_key())
    with pytest.raises(InvalidKeyMaterial):
        load_gemeente_private_key(sk_pem)  # an Ed25519 key is not a gemeente key
    with pytest.raises(InvalidKeyMaterial):
        load_gemeente_private_key(b"not a key")
    with pytest.raises(InvalidKeyMaterial):
        load_gemeente_private_key(private_key_to_pem(generate_gemeente_key(), b"pw"), b"wrong")
    with pytest.raises(InvalidKeyMaterial):
        load_verify_key(public_key_to_pem(generate_gemeente_key().public_key()))
    with pytest.raises(InvalidKeyMaterial):
        key_id_for(object())  # type: ignore[arg-type]
