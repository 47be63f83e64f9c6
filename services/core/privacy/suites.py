"""Cipher suites (issue 12): which KEM wraps a key epoch's KEK to a gemeente key, and which
signatures the epoch's announcement carries. Everything per event (the DEK wrap, the sealed bundle)
is AES-256-GCM in every suite, so a suite costs nothing per event: its public-key work is once per
gemeente per epoch on the exchange and once per epoch at the gemeente.

A gemeente key belongs to exactly one suite and its key id says which (``x25519-…``,
``mlkem768x25519-…``); an announcement names its recipient key id, a KEK id names its suite too
(``kek-…`` classical, ``kek-mlkem768x25519-…`` hybrid), and every sealed bundle and wrapped key names
its KEK id: so every record names the suite it was protected with.

- ``x25519`` (announcement version 1): HPKE DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM;
  the announcement signed with Ed25519. Kept for reading records made before issue 12.
- ``mlkem768x25519`` (announcement version 2, the default for new gemeente keys): HPKE with the
  hybrid ML-KEM-768 + X25519 KEM (``cryptography``'s ``KEM.MLKEM768_X25519``; RFC 9180 KEM id
  0x647A of draft-ietf-hpke-pq), HKDF-SHA256, AES-256-GCM; the announcement signed with Ed25519
  AND ML-DSA-65 (FIPS 204), both required. A recorded KEK wrap stays safe while either X25519 or
  ML-KEM-768 holds ("store now, decrypt later"), a forged epoch needs both signature schemes broken.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

HPKE_KDF_HKDF_SHA256 = 0x0001
HPKE_AEAD_AES_256_GCM = 0x0002


@dataclass(frozen=True)
class CipherSuite:
    name: str  # also the key-id prefix of the gemeente keys of this suite
    announcement_version: int
    kem_id: int  # RFC 9180 identifiers, written into every announcement
    kdf_id: int
    aead_id: int
    enc_len: int  # HPKE encapsulation length; a wrapped KEK is enc || 32-byte KEK || 16-byte tag
    pq_signature: bool  # the announcement also carries an ML-DSA-65 signature
    kek_prefix: str
    hpke: Suite = field(repr=False, compare=False)

    @property
    def wrapped_kek_len(self) -> int:
        return self.enc_len + 32 + 16


X25519_SUITE = CipherSuite(
    "x25519", 0x01, 0x0020, HPKE_KDF_HKDF_SHA256, HPKE_AEAD_AES_256_GCM, 32, False, "kek-",
    Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM),
)
HYBRID_SUITE = CipherSuite(
    "mlkem768x25519", 0x02, 0x647A, HPKE_KDF_HKDF_SHA256, HPKE_AEAD_AES_256_GCM, 1120, True,
    "kek-mlkem768x25519-", Suite(KEM.MLKEM768_X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM),
)
SUITES: dict[str, CipherSuite] = {s.name: s for s in (X25519_SUITE, HYBRID_SUITE)}
DEFAULT_SUITE = HYBRID_SUITE
_BY_VERSION = {s.announcement_version: s for s in SUITES.values()}


def suite_named(name: str) -> CipherSuite:
    suite = SUITES.get(name)
    if suite is None:
        raise ValueError(f"unknown suite {name!r}; known: {', '.join(SUITES)}")
    return suite


def suite_of_key_id(key_id: str) -> CipherSuite | None:
    """The suite a gemeente (or ops) key id belongs to, by its prefix; None for other keys."""
    return SUITES.get(key_id.split("-", 1)[0])


def suite_of_kek_id(kek_id: str) -> CipherSuite | None:
    """Longest prefix first: ``kek-mlkem768x25519-…`` is hybrid, any other ``kek-…`` classical;
    anything else is no KEK id (None)."""
    if kek_id.startswith(HYBRID_SUITE.kek_prefix):
        return HYBRID_SUITE
    return X25519_SUITE if kek_id.startswith(X25519_SUITE.kek_prefix) else None


def suite_of_announcement_version(version: int) -> CipherSuite | None:
    return _BY_VERSION.get(version)


__all__ = [
    "DEFAULT_SUITE", "HYBRID_SUITE", "SUITES", "X25519_SUITE", "CipherSuite", "suite_named", "suite_of_kek_id",
    "suite_of_key_id", "suite_of_announcement_version",
]
