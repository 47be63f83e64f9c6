"""Re-derive the checked-in hybrid-suite vectors exactly (vectors/key_epoch_hybrid_v2.json, FORMAT.md).

Suite ``mlkem768x25519``: HPKE KEM 0x647A (ML-KEM-768 + X25519), announcement version 2 signed with
Ed25519 and ML-DSA-65. Three checks: our implementation reproduces every deterministic byte; a
from-scratch reading with only standard primitives opens it, as another implementation would (HPKE
twice: through cryptography's ``Suite``, and once spelled out from RFC 9180 and the X-Wing combiner on
bare ML-KEM-768 / X25519 / SHA3-256 / HKDF, which pins the KEM id and the ``enc`` layout); and the
API opens it. Not re-derivable, so recorded and checked: the HPKE encapsulations (by decrypting) and
the ML-DSA-65 signature (hedged in cryptography; by verifying).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import struct
from pathlib import Path

import fastavro
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, MLKEM768X25519PrivateKey, Suite
from fastavro.schema import fingerprint, to_parsing_canonical_form

from herstelbus.core.privacy import (
    HYBRID_SUITE,
    ExchangeSigningKey,
    HybridPrivateKey,
    KeyEpoch,
    MalformedAnnouncement,
    OpeningKeyring,
    PiiLayout,
    PseudonymSecret,
    SignatureInvalid,
    WrappedKey,
    key_id_for,
    load_gemeente_private_key,
    load_gemeente_public_key,
    load_verify_key,
    open_event,
    private_key_to_pem,
    pseudonymise,
    public_key_to_pem,
)
from herstelbus.core.privacy import _hazmat as hz
from herstelbus.core.privacy.epochs import _epoch_from_parts
from herstelbus.core.privacy.ops import frame_record, open_for_ops, unframe_record
from herstelbus.core.privacy.seal import _seal
from vector_kit import from_json, open_by_hand
from vector_kit import lp as _lp

V = json.loads((Path(__file__).parent / "vectors" / "key_epoch_hybrid_v2.json").read_text())
KE, EV, OPS = V["key_epoch"], V["event"], V["ops_sealed"]
H = bytes.fromhex
UTC = dt.timezone.utc


def _raw(k) -> bytes:
    return k.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# ---- keys from the recorded seeds ------------------------------------------------------------------


def _components(seed_hex: str, x_hex: str) -> tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey]:
    return mlkem.MLKEM768PrivateKey.from_seed_bytes(H(seed_hex)), x25519.X25519PrivateKey.from_private_bytes(H(x_hex))


def _gemeente() -> HybridPrivateKey:
    return HybridPrivateKey(*_components(KE["gemeente_mlkem768_seed_hex"], KE["gemeente_x25519_private_key_hex"]))


def _ops() -> HybridPrivateKey:
    return HybridPrivateKey(*_components(OPS["ops_mlkem768_seed_hex"], OPS["ops_x25519_private_key_hex"]))


def _signing() -> ExchangeSigningKey:
    return ExchangeSigningKey(ed25519.Ed25519PrivateKey.from_private_bytes(H(KE["exchange_ed25519_private_key_hex"])),
                              mldsa.MLDSA65PrivateKey.from_seed_bytes(H(KE["exchange_mldsa65_seed_hex"])))


def _epoch():
    return _epoch_from_parts(KE["gemeentecode"], H(KE["kek_hex"]), KE["kek_id"], KE["recipient_key_id"],
                             H(KE["wrapped_kek_hex"]), _signing(), dt.datetime.fromtimestamp(KE["not_before"], UTC),
                             dt.datetime.fromtimestamp(KE["not_after"], UTC))


def _layout() -> PiiLayout:
    return PiiLayout(V["source_schema"])  # the fixture schema's own pii tags


# ---- an independent HPKE open: RFC 9180 base mode, KEM MLKEM768-X25519 (X-Wing), HKDF-SHA256, AES-256-GCM


def _hkdf_expand(prk: bytes, info: bytes, n: int) -> bytes:
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes((i,)), hashlib.sha256).digest()
        out, i = out + t, i + 1
    return out[:n]


def hpke_open_by_hand(wrapped: bytes, mlkem_priv, x25519_priv, info: bytes) -> bytes:
    suite_id = b"HPKE" + struct.pack(">HHH", 0x647A, 0x0001, 0x0002)

    def labeled_extract(salt: bytes, label: bytes, ikm: bytes) -> bytes:
        return hmac.new(salt or bytes(32), b"HPKE-v1" + suite_id + label + ikm, hashlib.sha256).digest()

    def labeled_expand(prk: bytes, label: bytes, ctx: bytes, n: int) -> bytes:
        return _hkdf_expand(prk, struct.pack(">H", n) + b"HPKE-v1" + suite_id + label + ctx, n)

    enc, ct = wrapped[:1120], wrapped[1120:]
    ct_m, ct_x = enc[:1088], enc[1088:]  # enc = ML-KEM-768 ciphertext || X25519 ephemeral public key
    ss_m = mlkem_priv.decapsulate(ct_m)
    ss_x = x25519_priv.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
    shared = hashlib.sha3_256(ss_m + ss_x + ct_x + _raw(x25519_priv.public_key()) + b"\\.//^\\").digest()
    ctx = b"\x00" + labeled_extract(b"", b"psk_id_hash", b"") + labeled_extract(b"", b"info_hash", info)
    secret = labeled_extract(shared, b"secret", b"")
    key, nonce = labeled_expand(secret, b"key", ctx, 32), labeled_expand(secret, b"base_nonce", ctx, 12)
    return AESGCM(key).decrypt(nonce, ct, b"")  # sequence number 0: the base nonce itself


def hpke_open_with_suite(wrapped: bytes, mlkem_priv, x25519_priv, info: bytes) -> bytes:
    suite = Suite(KEM.MLKEM768_X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
    return suite.decrypt(wrapped, MLKEM768X25519PrivateKey(mlkem_priv, x25519_priv), info=info)


# ---- keys and key ids ------------------------------------------------------------------------------


def test_suite_constants() -> None:
    s = V["suite"]
    assert (s["name"], s["announcement_version"], s["hpke_kem_id"], s["hpke_kdf_id"], s["hpke_aead_id"]) == (
        HYBRID_SUITE.name, HYBRID_SUITE.announcement_version, HYBRID_SUITE.kem_id, HYBRID_SUITE.kdf_id, HYBRID_SUITE.aead_id)
    assert (s["name"], s["announcement_version"], s["hpke_kem_id"]) == ("mlkem768x25519", 2, 0x647A)
    assert s["hpke_enc_len"] == KEM.MLKEM768_X25519.enc_length() == HYBRID_SUITE.enc_len == 1088 + 32
    assert s["wrapped_kek_len"] == HYBRID_SUITE.wrapped_kek_len == 1168


def test_key_id_vectors() -> None:
    for v in V["key_ids"]:
        raw = H(v["public_key_hex"])
        # Independently: SHA-256(L_KEY_ID || alg || 0x00 || raw)[0:10], base32 lowercase without padding.
        digest = hashlib.sha256(b"herstelbus/key-id/v1\x00" + v["algorithm"].encode() + b"\x00" + raw).digest()
        assert v["key_id"] == v["algorithm"] + "-" + base64.b32encode(digest[:10]).decode().lower()
    by_alg = {v["algorithm"]: v for v in V["key_ids"]}
    g, s = _gemeente(), _signing().public_key()
    assert by_alg["mlkem768x25519"]["public_key_hex"] == KE["gemeente_mlkem768_public_key_hex"] + KE["gemeente_x25519_public_key_hex"]
    assert len(H(by_alg["mlkem768x25519"]["public_key_hex"])) == 1184 + 32
    assert key_id_for(g.public_key()) == by_alg["mlkem768x25519"]["key_id"] == KE["recipient_key_id"]
    assert key_id_for(s.ed25519) == by_alg["ed25519"]["key_id"] == KE["signer_key_id"]
    assert key_id_for(s.mldsa65) == by_alg["mldsa65"]["key_id"] == KE["pq_signer_key_id"]
    assert _raw(s.ed25519).hex() == by_alg["ed25519"]["public_key_hex"] == KE["exchange_ed25519_public_key_hex"]
    assert s.mldsa65.public_bytes_raw().hex() == by_alg["mldsa65"]["public_key_hex"] == KE["exchange_mldsa65_public_key_hex"]
    assert len(s.mldsa65.public_bytes_raw()) == 1952
    assert key_id_for(_ops().public_key()) == OPS["ops_key_id"] and _ops().public_key().raw().hex() == OPS["ops_public_key_hex"]


def test_pem_vectors() -> None:
    """One PEM block per part: ML-KEM-768 then X25519 (gemeente), Ed25519 then ML-DSA-65 (exchange)."""
    g = _gemeente()
    assert private_key_to_pem(g).decode() == KE["gemeente_private_key_pem"]
    assert public_key_to_pem(g.public_key()).decode() == KE["gemeente_public_key_pem"]
    assert public_key_to_pem(_signing().public_key()).decode() == KE["exchange_verify_key_pem"]
    assert key_id_for(load_gemeente_private_key(KE["gemeente_private_key_pem"].encode()).public_key()) == KE["recipient_key_id"]
    assert key_id_for(load_gemeente_public_key(KE["gemeente_public_key_pem"].encode())) == KE["recipient_key_id"]
    vk = load_verify_key(KE["exchange_verify_key_pem"].encode())
    assert (key_id_for(vk.ed25519), key_id_for(vk.mldsa65)) == (KE["signer_key_id"], KE["pq_signer_key_id"])
    # Independently: each block is a standard PKCS#8 / SubjectPublicKeyInfo document.
    priv_blocks = KE["gemeente_private_key_pem"].split("-----END PRIVATE KEY-----\n")[:2]
    parts = [serialization.load_pem_private_key((b + "-----END PRIVATE KEY-----\n").encode(), None) for b in priv_blocks]
    assert isinstance(parts[0], mlkem.MLKEM768PrivateKey) and isinstance(parts[1], x25519.X25519PrivateKey)
    assert parts[0].private_bytes_raw().hex() == KE["gemeente_mlkem768_seed_hex"]
    assert parts[1].private_bytes_raw().hex() == KE["gemeente_x25519_private_key_hex"]


# ---- KEK wrap and announcement ---------------------------------------------------------------------


def test_kek_wrap_vector() -> None:
    info = hz.kek_info(KE["gemeentecode"], KE["kek_id"], KE["recipient_key_id"])
    assert info.hex() == KE["hpke_info_hex"]
    assert info == (b"herstelbus/kek/v1\x00" + _lp(KE["gemeentecode"].encode()) + _lp(KE["kek_id"].encode())
                    + _lp(KE["recipient_key_id"].encode()))
    assert KE["kek_id"].startswith("kek-mlkem768x25519-")
    wrapped = H(KE["wrapped_kek_hex"])
    assert len(wrapped) == 1120 + 32 + 16
    m, x = _components(KE["gemeente_mlkem768_seed_hex"], KE["gemeente_x25519_private_key_hex"])
    assert hpke_open_with_suite(wrapped, m, x, info).hex() == KE["kek_hex"]
    assert hpke_open_by_hand(wrapped, m, x, info).hex() == KE["kek_hex"]
    assert hz.hpke_unwrap(wrapped, _gemeente().hpke(), info, HYBRID_SUITE).hex() == KE["kek_hex"]


def test_announcement_rederived() -> None:
    """Deterministic given the recorded wrapped KEK: body, both signed messages, the Ed25519 signature;
    the wire bytes then follow with the recorded ML-DSA-65 signature."""
    ann = _epoch().announcement
    body = ann.body()
    assert body.hex() == KE["body_hex"]
    assert (b"herstelbus/key-epoch/v1\x00" + body).hex() == KE["signed_message_hex"]
    assert (b"herstelbus/key-epoch-mldsa/v2\x00" + body).hex() == KE["pq_signed_message_hex"]
    assert ann.signature.hex() == KE["signature_hex"]  # Ed25519 (RFC 8032) is deterministic
    # ML-DSA-65 is hedged: a fresh signature is not the recorded one, but verifies over the same message.
    _signing().public_key().mldsa65.verify(ann.pq_signature, H(KE["pq_signed_message_hex"]))
    wire = body + ann.signature + H(KE["pq_signature_hex"])
    assert wire.hex() == KE["announcement_hex"]
    assert KeyEpoch.from_bytes(wire) == dataclasses.replace(ann, pq_signature=H(KE["pq_signature_hex"]))
    assert KeyEpoch.from_bytes(wire).to_bytes() == wire


def test_announcement_read_independently() -> None:
    """What another implementation does: split the wire bytes per FORMAT.md, verify both signatures."""
    wire = H(KE["announcement_hex"])
    pos = 1

    def take() -> bytes:
        nonlocal pos
        (n,) = struct.unpack_from(">H", wire, pos)
        pos += 2 + n
        return wire[pos - n : pos]

    assert wire[0] == 0x02
    fields = [take().decode() for _ in range(5)]
    assert fields == [KE["gemeentecode"], KE["kek_id"], KE["recipient_key_id"], KE["signer_key_id"], KE["pq_signer_key_id"]]
    nb, na, kem, kdf, aead = struct.unpack_from(">QQHHH", wire, pos)
    pos += 22
    assert (nb, na, kem, kdf, aead) == (KE["not_before"], KE["not_after"], 0x647A, 0x0001, 0x0002)
    assert take().hex() == KE["wrapped_kek_hex"]
    body, sig, pq_sig = wire[:pos], wire[pos : pos + 64], wire[pos + 64 :]
    assert body.hex() == KE["body_hex"] and len(pq_sig) == 3309
    assert sig.hex() == KE["signature_hex"] and pq_sig.hex() == KE["pq_signature_hex"]
    ed25519.Ed25519PublicKey.from_public_bytes(H(KE["exchange_ed25519_public_key_hex"])).verify(
        sig, b"herstelbus/key-epoch/v1\x00" + body)
    mldsa.MLDSA65PublicKey.from_public_bytes(H(KE["exchange_mldsa65_public_key_hex"])).verify(
        pq_sig, b"herstelbus/key-epoch-mldsa/v2\x00" + body)  # FIPS 204 pure ML-DSA, empty context


def test_announcement_vector_both_signatures_required() -> None:
    wire = H(KE["announcement_hex"])
    ring = OpeningKeyring(KE["gemeentecode"], [_gemeente()], [_signing().public_key()])
    end = len(wire) - 3309
    for bad in (wire[: end - 1] + bytes([wire[end - 1] ^ 1]) + wire[end:],  # Ed25519 signature altered
                wire[:-1] + bytes([wire[-1] ^ 1])):  # ML-DSA-65 signature altered
        with pytest.raises(SignatureInvalid):
            ring.add(bad)
    with pytest.raises(MalformedAnnouncement):
        KeyEpoch.from_bytes(b"\x01" + wire[1:])  # passed off as version 1
    with pytest.raises(SignatureInvalid):  # an exchange trusted for Ed25519 only cannot vouch for it
        OpeningKeyring(KE["gemeentecode"], [_gemeente()], [_signing().public_key().ed25519]).add(wire)
    assert ring.known_epochs == frozenset()


# ---- the sealed event ------------------------------------------------------------------------------


def test_bundle_schema_vector() -> None:
    layout = _layout()
    assert layout.bundle_schema == V["bundle_schema"]
    assert (layout.fingerprint.hex(), layout.bundle_fingerprint.hex()) == (V["source_fingerprint_hex"], V["bundle_fingerprint_hex"])
    for schema, fp in ((V["source_schema"], V["source_fingerprint_hex"]), (V["bundle_schema"], V["bundle_fingerprint_hex"])):
        assert fingerprint(to_parsing_canonical_form(fastavro.parse_schema(schema)), "CRC-64-AVRO") == fp


def test_event_vector_rederived() -> None:
    layout = _layout()
    rec = from_json(EV["record"])
    gm, kid = KE["gemeentecode"], KE["kek_id"]
    assert pseudonymise(EV["bsn"], PseudonymSecret(H(EV["pseudonym_secret_hex"]))) == EV["subject"]
    assert hz.dek_aad(gm, EV["subject"], EV["event_id"], kid).hex() == EV["dek_aad_hex"]
    assert hz.sealed_aad(gm, EV["subject"], EV["event_id"], V["sealed_field"], layout.fingerprint,
                         layout.bundle_fingerprint, kid).hex() == EV["aad_hex"]
    assert layout._encode(rec).hex() == EV["bundle_plaintext_hex"]
    rnd = H(EV["dek_hex"] + EV["dek_wrap_nonce_hex"] + EV["bundle_nonce_hex"])
    sealed = _seal(rec, layout, _epoch(), EV["event_id"], EV["subject"], lambda n: rnd[:n])
    assert sealed.wrapped_key.wrapped.hex() == EV["wrapped_dek_hex"]
    assert sealed.wrapped_key.key_id == kid
    assert sealed.record[V["sealed_field"]].hex() == EV["sealed_hex"]
    assert {k: v for k, v in sealed.record.items() if k != V["sealed_field"]} == from_json(EV["routed_clear"])


def test_event_vector_opens_independently() -> None:
    """From the gemeente's private key to the bundle, with the KEK taken from the HPKE open (not the
    recorded kek_hex): HPKE, AES-GCM twice, fastavro. The per-event formats are those of version 1."""
    m, x = _components(KE["gemeente_mlkem768_seed_hex"], KE["gemeente_x25519_private_key_hex"])
    kek = hpke_open_by_hand(H(KE["wrapped_kek_hex"]), m, x, H(KE["hpke_info_hex"]))
    open_by_hand(kek, EV, V, KE["gemeentecode"], KE["kek_id"])


def test_event_vector_opens_with_api() -> None:
    ring = OpeningKeyring(KE["gemeentecode"], [load_gemeente_private_key(KE["gemeente_private_key_pem"].encode())],
                          [load_verify_key(KE["exchange_verify_key_pem"].encode())])
    ring.add(H(KE["announcement_hex"]))
    row = WrappedKey(KE["gemeentecode"], EV["subject"], EV["event_id"], KE["kek_id"], H(EV["wrapped_dek_hex"]))
    sealed = from_json(EV["routed_clear"]) | {V["sealed_field"]: H(EV["sealed_hex"])}
    opened = open_event(sealed, layout=_layout(), keyring=ring, event_id=EV["event_id"], subject=EV["subject"], key=row)
    assert opened == from_json(EV["record"])
    assert list(opened) == list(EV["record"])  # the original field order


# ---- the ops-sealed record -------------------------------------------------------------------------


def _ops_record() -> tuple[bytes, bytes, list[tuple[str, bytes | None]]]:
    headers = [(n, None if v is None else H(v)) for n, v in OPS["record_headers"]]
    return H(OPS["record_key_hex"]), H(OPS["record_value_hex"]), headers


def test_ops_sealed_vector() -> None:
    framed = frame_record(*_ops_record())
    assert framed.hex() == OPS["framed_hex"]
    info = b"herstelbus/ops-sealed/v1\x00" + _lp(OPS["context"].encode()) + _lp(OPS["ops_key_id"].encode())
    assert info.hex() == OPS["hpke_info_hex"]
    blob = H(OPS["sealed_hex"])
    # Independently: 0x01 || lp(ops key id) || enc (1120) || ciphertext || tag (16).
    (n,) = struct.unpack_from(">H", blob, 1)
    assert blob[0] == 0x01 and blob[3 : 3 + n].decode() == OPS["ops_key_id"]
    assert OPS["ops_key_id"].startswith("mlkem768x25519-") and len(blob) == 3 + n + 1120 + len(framed) + 16
    m, x = _components(OPS["ops_mlkem768_seed_hex"], OPS["ops_x25519_private_key_hex"])
    assert hpke_open_with_suite(blob[3 + n :], m, x, info) == framed
    assert hpke_open_by_hand(blob[3 + n :], m, x, info) == framed
    assert unframe_record(open_for_ops(blob, _ops(), OPS["context"])) == _ops_record()


def test_vector_person_is_fictional() -> None:
    from herstelbus.core.bsn import is_valid_bsn

    assert EV["bsn"].startswith("9999") and is_valid_bsn(EV["bsn"])
