"""Thin hazmat layer: the exact byte formats of FORMAT.md and the primitive calls, nothing else.

Everything here is deterministic given its inputs (randomness is passed in), so the test vectors in
tests/unit/privacy/vectors/ pin every byte. The safe API in seal.py / epochs.py / pseudonym.py sits on
top; nothing outside this package should import this module.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import MalformedSealedField, Tampered
from .suites import X25519_SUITE, CipherSuite

Rng = Callable[[int], bytes]
SYSTEM_RNG: Rng = os.urandom

KEY_LEN = 32
NONCE_LEN = 12
TAG_LEN = 16


# Domain-separation labels: a value made for one purpose can never verify/decrypt as another.
LABEL_PSEUDONYM = b"herstelbus/pseudonym/v1\x00"
LABEL_DOSSIER_PSEUDONYM = b"herstelbus/dossier-pseudonym/v1\x00"
LABEL_KEY_ID = b"herstelbus/key-id/v1\x00"
LABEL_KEK_INFO = b"herstelbus/kek/v1\x00"
LABEL_DEK_AAD = b"herstelbus/dek/v1\x00"
LABEL_SEALED_AAD = b"herstelbus/sealed/v1\x00"
LABEL_EPOCH_SIG = b"herstelbus/key-epoch/v1\x00"
LABEL_EPOCH_PQ_SIG = b"herstelbus/key-epoch-mldsa/v2\x00"  # the ML-DSA-65 signature of a v2 announcement

SEALED_VERSION = 0x01
WRAPPED_DEK_VERSION = 0x01
WRAPPED_DEK_LEN = 1 + NONCE_LEN + KEY_LEN + TAG_LEN  # 61


def lp(value: bytes) -> bytes:
    """Length-prefixed: u16 big-endian length, then the bytes. Makes concatenations unambiguous."""
    if len(value) > 0xFFFF:
        raise ValueError("field too long for lp()")
    return struct.pack(">H", len(value)) + value


def lp_str(value: str) -> bytes:
    b = value.encode("utf-8")
    n = len(b)
    if n > 0xFFFF:
        raise ValueError("field too long for lp()")
    return n.to_bytes(2, "big") + b


_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_B32_PAIRS = tuple(a + b for a in _B32 for b in _B32)  # 10 bits → 2 characters


def b32(data: bytes) -> str:
    """Lowercase RFC 4648 base32 without padding (URL-, file- and Kafka-key-safe).

    The stdlib encoder is pure Python and costs ~6 µs for a pseudonym here; our inputs are always a
    multiple of 5 bytes (10 or 20), so a 10-bit table does it in a third of that."""
    bits = len(data) * 8
    if bits % 10:
        return base64.b32encode(data).decode("ascii").rstrip("=").lower()
    v = int.from_bytes(data, "big")
    return "".join([_B32_PAIRS[(v >> s) & 1023] for s in range(bits - 10, -1, -10)])


# ---- KEK: HPKE base mode to a gemeente's key (X25519 or ML-KEM-768 + X25519) -------------------


def kek_info(gemeentecode: str, kek_id: str, recipient_key_id: str) -> bytes:
    return LABEL_KEK_INFO + lp_str(gemeentecode) + lp_str(kek_id) + lp_str(recipient_key_id)


def hpke_wrap(kek: bytes, public_key: object, info: bytes, suite: CipherSuite = X25519_SUITE) -> bytes:
    """RFC 9180 single-shot Seal, base mode, empty aad: enc || ciphertext+tag (48). ``public_key``
    is the suite's HPKE recipient key (keys.hpke_public)."""
    return suite.hpke.encrypt(kek, public_key, info=info)


def hpke_unwrap(wrapped: bytes, private_key: object, info: bytes, suite: CipherSuite = X25519_SUITE) -> bytes:
    if len(wrapped) != suite.wrapped_kek_len:
        raise Tampered("kek_wrap_length")
    try:
        kek = suite.hpke.decrypt(wrapped, private_key, info=info)
    except Exception:  # InvalidTag and friends: wrong key, wrong context or altered bytes
        raise Tampered("kek_unwrap_failed") from None
    if len(kek) != KEY_LEN:
        raise Tampered("kek_length")
    return kek


# ---- DEK: AES-256-GCM under the KEK --------------------------------------------------------------


def dek_aad(gemeentecode: str, subject: str, event_id: str, kek_id: str) -> bytes:
    return LABEL_DEK_AAD + lp_str(gemeentecode) + lp_str(subject) + lp_str(event_id) + lp_str(kek_id)


def wrap_dek(kek_aead: AESGCM, dek: bytes, nonce: bytes, aad: bytes) -> bytes:
    """0x01 || nonce (12) || AES-256-GCM(KEK, nonce, dek, aad) (32 + 16) = 61 bytes."""
    return bytes((WRAPPED_DEK_VERSION,)) + nonce + kek_aead.encrypt(nonce, dek, aad)


def unwrap_dek(kek_aead: AESGCM, wrapped: bytes, aad: bytes) -> bytes:
    if len(wrapped) != WRAPPED_DEK_LEN or wrapped[0] != WRAPPED_DEK_VERSION:
        raise Tampered("wrapped_key_malformed")
    try:
        return kek_aead.decrypt(wrapped[1 : 1 + NONCE_LEN], wrapped[1 + NONCE_LEN :], aad)
    except InvalidTag:
        raise Tampered("dek_unwrap_failed") from None


# ---- sealed bundle ------------------------------------------------------------------------------


def sealed_header(key_id: str) -> bytes:
    """version || u8 len(kek_id) || kek_id: the start of every sealed bundle under this KEK."""
    kid = key_id.encode("ascii")
    if not 1 <= len(kid) <= 255:
        raise ValueError("key id length")
    return bytes((SEALED_VERSION, len(kid))) + kid


# The AAD is assembled from three parts so each is built once where it is fixed: per key epoch
# (gemeente), per event (subject, event id) and per layout (field path, fingerprints).
def sealed_aad_head(gemeentecode: str) -> bytes:
    return LABEL_SEALED_AAD + bytes((SEALED_VERSION,)) + lp_str(gemeentecode)


def sealed_aad_event(subject: str, event_id: str) -> bytes:
    return lp_str(subject) + lp_str(event_id)


def sealed_aad_tail(field_path: str, source_fingerprint: bytes, bundle_fingerprint: bytes) -> bytes:
    return lp_str(field_path) + lp(source_fingerprint) + lp(bundle_fingerprint)


def sealed_aad(
    gemeentecode: str,
    subject: str,
    event_id: str,
    field_path: str,
    source_fingerprint: bytes,
    bundle_fingerprint: bytes,
    key_id: str,
) -> bytes:
    """The whole AAD of a sealed bundle (FORMAT.md), as the test vectors spell it out."""
    return (
        sealed_aad_head(gemeentecode)
        + sealed_aad_event(subject, event_id)
        + sealed_aad_tail(field_path, source_fingerprint, bundle_fingerprint)
        + lp_str(key_id)
    )


def parse_sealed(blob: bytes) -> tuple[str, bytes, bytes]:
    """Split a sealed bundle into (key_id, nonce, ciphertext+tag); structure only, no crypto."""
    if type(blob) is not bytes:
        raise MalformedSealedField("not_sealed")
    n = len(blob)
    if n < 2 or blob[0] != SEALED_VERSION:
        raise MalformedSealedField("bad_version")
    kid_len = blob[1]
    body = 2 + kid_len
    if kid_len == 0 or n < body + NONCE_LEN + TAG_LEN:
        raise MalformedSealedField("truncated")
    try:
        kid = blob[2:body].decode("ascii")
    except UnicodeDecodeError:
        raise MalformedSealedField("bad_key_id") from None
    return kid, blob[body : body + NONCE_LEN], blob[body + NONCE_LEN :]
