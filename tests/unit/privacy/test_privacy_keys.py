"""Gemeente key pairs and key ids (the CLI's keygen/register will call these)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from herstelbus.core.privacy import (
    DEFAULT_SUITE,
    HYBRID_SUITE,
    X25519_SUITE,
    HybridPrivateKey,
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


@pytest.mark.parametrize("suite", [HYBRID_SUITE, X25519_SUITE], ids=lambda s: s.name)
def test_pem_round_trip_and_key_ids(suite) -> None:
    priv = generate_gemeente_key(suite)
    pem = private_key_to_pem(priv)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, one block per part
    assert pem.count(b"-----BEGIN PRIVATE KEY-----") == (2 if suite is HYBRID_SUITE else 1)
    enc = private_key_to_pem(priv, password=b"correct horse")
    assert enc.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    pub_pem = public_key_to_pem(priv.public_key())
    assert pub_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    kid = key_id_for(priv.public_key())
    assert kid.startswith(f"{suite.name}-") and len(kid) == len(suite.name) + 1 + 16
    for loaded in (load_gemeente_private_key(pem), load_gemeente_private_key(enc, b"correct horse")):
        assert key_id_for(loaded.public_key()) == kid
    assert key_id_for(load_gemeente_public_key(pub_pem)) == kid
    assert key_id_for(generate_gemeente_key(suite).public_key()) != kid


def test_the_default_suite_is_hybrid() -> None:
    assert DEFAULT_SUITE is HYBRID_SUITE
    assert isinstance(generate_gemeente_key(), HybridPrivateKey)
    assert key_id_for(generate_gemeente_key().public_key()).startswith("mlkem768x25519-")


@pytest.mark.parametrize("pq", [True, False])
def test_exchange_signing_keys_round_trip(pq: bool) -> None:
    sk = generate_signing_key(pq=pq)
    pem = private_key_to_pem(sk)
    assert pem.count(b"-----BEGIN PRIVATE KEY-----") == (2 if pq else 1)  # Ed25519, then ML-DSA-65
    loaded = load_signing_key(pem)
    assert key_id_for(loaded.ed25519.public_key()) == key_id_for(sk.ed25519.public_key())
    assert (loaded.mldsa65 is None) is (not pq)
    verify = load_verify_key(public_key_to_pem(sk.public_key()))
    assert [key_id_for(k).split("-")[0] for k in verify.keys()] == (["ed25519", "mldsa65"] if pq else ["ed25519"])
    # a bare Ed25519 PEM (an exchange key made before issue 12) still loads: classical epochs only
    bare = load_signing_key(private_key_to_pem(sk.ed25519))
    assert bare.mldsa65 is None


def test_hybrid_parts_in_the_wrong_order_or_mixed_are_refused() -> None:
    hybrid = generate_gemeente_key(HYBRID_SUITE)
    swapped = private_key_to_pem(hybrid.x25519) + private_key_to_pem(hybrid.mlkem)
    with pytest.raises(InvalidKeyMaterial):
        load_gemeente_private_key(swapped)
    with pytest.raises(InvalidKeyMaterial):  # a signing key part is no gemeente key part
        load_gemeente_private_key(private_key_to_pem(hybrid.mlkem) + private_key_to_pem(generate_signing_key().ed25519))
    with pytest.raises(InvalidKeyMaterial):
        load_gemeente_public_key(public_key_to_pem(hybrid.public_key().mlkem))  # half a hybrid key


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
