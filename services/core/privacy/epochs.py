"""Key epochs: one key-encryption key (KEK) per gemeente per time window (issue 4, property 8).

Exchange side: ``new_key_epoch`` draws a random 32-byte KEK, wraps it to the gemeente's key with
HPKE in that key's suite (``suites``: hybrid ML-KEM-768 + X25519 by default, X25519 for older keys;
HKDF-SHA256, AES-256-GCM; ``info`` binds gemeentecode, KEK id and recipient key id) and signs the
resulting ``KeyEpoch`` announcement with the exchange's Ed25519 key, and in the hybrid suite with its
ML-DSA-65 key too (property 4). That is the only public-key work: once per gemeente per window.

Gemeente side: ``OpeningKeyring`` verifies each announcement's signatures when it is added (typed
``SignatureMissing`` / ``SignatureInvalid`` before anything is decrypted; both must verify in the
hybrid suite), and unwraps a KEK once, on first use, then caches it. Per event only AES-GCM runs.

The exchange's ``SealingEpoch`` can wrap data keys but has no method to unwrap anything, and it is
dropped when its window ends (default one hour) so a later compromise of the router process finds
no KEK of past windows. Together with a key store the router may write but not read, the exchange
cannot open its own output once a record is sealed (see FORMAT.md §Threat notes).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import _hazmat as hz
from .errors import (
    ContextMismatch,
    EpochExhausted,
    InvalidIdentifier,
    InvalidKeyMaterial,
    KeyUnavailable,
    MalformedAnnouncement,
    SignatureInvalid,
    SignatureMissing,
    UnknownKeyEpoch,
)
from .keys import (
    ExchangeSigningKey, ExchangeVerifyKey, GemeenteKey, GemeentePrivateKey, HybridPrivateKey, check_gemeentecode,
    check_key_id, hpke_private, hpke_public, key_id_for, signing_keys,
)
from .suites import CipherSuite, suite_of_announcement_version, suite_of_kek_id, suite_of_key_id

SIGNATURE_LEN = 64
PQ_SIGNATURE_LEN = 3309  # ML-DSA-65 (FIPS 204)
DEFAULT_EPOCH_LIFETIME = timedelta(hours=1)
# AES-GCM with random 96-bit nonces: stay far below NIST SP 800-38D's 2^32 invocations per key.
MAX_WRAPS_PER_EPOCH = 2**30


def _seconds(dt: datetime) -> int:
    if not isinstance(dt, datetime) or dt.tzinfo is None or dt.utcoffset() is None:
        raise InvalidIdentifier("naive_datetime")
    return int(dt.timestamp())


def _from_seconds(s: int) -> datetime:
    return datetime.fromtimestamp(s, tz=timezone.utc)


@dataclass(frozen=True)
class KeyEpoch:
    """A key-epoch announcement: public, signed, safe to publish on the gemeente's topic or serve from
    the key store. ``signature`` is None for an (invalid) unsigned announcement."""

    gemeentecode: str
    kek_id: str
    recipient_key_id: str
    signer_key_id: str
    not_before: datetime
    not_after: datetime
    wrapped_kek: bytes = field(repr=False)
    signature: bytes | None = field(default=None, repr=False)
    # the hybrid suite's second signer and signature (ML-DSA-65); None in a classical announcement
    pq_signer_key_id: str | None = None
    pq_signature: bytes | None = field(default=None, repr=False)

    @property
    def suite(self) -> CipherSuite:
        """The recipient key's suite: its key id says which (and the KEK id must agree)."""
        suite = suite_of_key_id(self.recipient_key_id)
        if suite is None:
            raise MalformedAnnouncement("unsupported_suite")
        return suite

    def body(self) -> bytes:
        """The signed bytes (FORMAT.md §Key-epoch announcement; version 2 for the hybrid suite)."""
        suite = self.suite
        signers = hz.lp_str(self.signer_key_id)
        if suite.pq_signature:
            signers += hz.lp_str(self.pq_signer_key_id or "")
        return b"".join(
            (
                bytes((suite.announcement_version,)),
                hz.lp_str(self.gemeentecode),
                hz.lp_str(self.kek_id),
                hz.lp_str(self.recipient_key_id),
                signers,
                struct.pack(">QQ", _seconds(self.not_before), _seconds(self.not_after)),
                struct.pack(">HHH", suite.kem_id, suite.kdf_id, suite.aead_id),
                hz.lp(self.wrapped_kek),
            )
        )

    @property
    def signed(self) -> bool:
        """Carries every signature its suite requires (whether they verify is ``verify_announcement``'s)."""
        return bool(self.signature) and (not self.suite.pq_signature or bool(self.pq_signature))

    def signatures(self) -> bytes:
        """Ed25519 (64), then in the hybrid suite ML-DSA-65 (3,309); empty when unsigned."""
        if not self.signature:
            return b""
        return self.signature + (self.pq_signature or b"")

    def to_bytes(self) -> bytes:
        return self.body() + self.signatures()

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyEpoch:
        """Parse only; verification happens in ``verify_announcement`` / ``OpeningKeyring.add``."""
        try:
            return _parse_announcement(bytes(data))
        except (IndexError, struct.error, UnicodeDecodeError, ValueError, OverflowError, OSError):
            raise MalformedAnnouncement() from None

    def covers(self, now: datetime) -> bool:
        return self.not_before <= now < self.not_after


def _parse_announcement(data: bytes) -> KeyEpoch:
    pos = 0

    def take_lp() -> bytes:
        nonlocal pos
        (n,) = struct.unpack_from(">H", data, pos)
        pos += 2
        if pos + n > len(data):
            raise ValueError("truncated")
        out = data[pos : pos + n]
        pos += n
        return out

    suite = suite_of_announcement_version(data[0]) if data else None
    if suite is None:
        raise MalformedAnnouncement("bad_version")
    pos = 1
    gm = take_lp().decode("ascii")
    kek_id = take_lp().decode("ascii")
    recipient = take_lp().decode("ascii")
    signer = take_lp().decode("ascii")
    pq_signer = take_lp().decode("ascii") if suite.pq_signature else None
    nb, na = struct.unpack_from(">QQ", data, pos)
    pos += 16
    ids = struct.unpack_from(">HHH", data, pos)
    pos += 6
    # one suite throughout: the version, the ids, the recipient key and the KEK id must all agree
    if (ids != (suite.kem_id, suite.kdf_id, suite.aead_id) or suite_of_key_id(recipient) is not suite
            or suite_of_kek_id(kek_id) is not suite):
        raise MalformedAnnouncement("unsupported_suite")
    wrapped = take_lp()
    rest = data[pos:]
    signed_len = SIGNATURE_LEN + (PQ_SIGNATURE_LEN if suite.pq_signature else 0)
    if len(rest) not in (0, signed_len):
        raise MalformedAnnouncement("bad_signature_length")
    if len(wrapped) != suite.wrapped_kek_len or na <= nb:
        raise MalformedAnnouncement("bad_fields")
    try:
        check_gemeentecode(gm)
        for kid in (kek_id, recipient, signer, *((pq_signer,) if suite.pq_signature else ())):
            check_key_id(kid)  # type: ignore[arg-type]
    except InvalidIdentifier:
        raise MalformedAnnouncement("bad_identifier") from None
    sig, pq_sig = (rest[:SIGNATURE_LEN], rest[SIGNATURE_LEN:] or None) if rest else (None, None)
    return KeyEpoch(gm, kek_id, recipient, signer, _from_seconds(nb), _from_seconds(na), wrapped, sig,
                    pq_signer, pq_sig)


def sign_announcement(epoch: KeyEpoch, signing_key: ExchangeSigningKey | ed25519.Ed25519PrivateKey) -> KeyEpoch:
    """Ed25519 over the body; for the hybrid suite also ML-DSA-65 (fail closed without it)."""
    keys = signing_keys(signing_key)
    if key_id_for(keys.ed25519.public_key()) != epoch.signer_key_id:
        raise ContextMismatch("signer_key_id_mismatch")
    body, pq_sig = epoch.body(), None
    if epoch.suite.pq_signature:
        if keys.mldsa65 is None:
            raise KeyUnavailable("no_pq_signing_key", key_id=epoch.kek_id)
        if key_id_for(keys.mldsa65.public_key()) != epoch.pq_signer_key_id:
            raise ContextMismatch("signer_key_id_mismatch")
        pq_sig = keys.mldsa65.sign(hz.LABEL_EPOCH_PQ_SIG + body)
    sig = keys.ed25519.sign(hz.LABEL_EPOCH_SIG + body)
    return KeyEpoch(
        epoch.gemeentecode,
        epoch.kek_id,
        epoch.recipient_key_id,
        epoch.signer_key_id,
        epoch.not_before,
        epoch.not_after,
        epoch.wrapped_kek,
        sig,
        epoch.pq_signer_key_id,
        pq_sig,
    )


def trusted_signers(keys: Iterable[object]) -> dict[str, object]:
    """Key id -> public key of the exchange's trusted signing keys (Ed25519 and ML-DSA-65, given
    bare or as an ``ExchangeVerifyKey``)."""
    out: dict[str, object] = {}
    for k in keys:
        for part in (k.keys() if isinstance(k, ExchangeVerifyKey) else [k]):
            if not isinstance(part, (ed25519.Ed25519PublicKey, mldsa.MLDSA65PublicKey)):
                raise InvalidKeyMaterial("wrong_key_type")
            out[key_id_for(part)] = part
    return out


def _verify(key: object, kind: type, signature: bytes, message: bytes, kek_id: str) -> None:
    if not isinstance(key, kind):
        raise SignatureInvalid("unknown_signer", key_id=kek_id)
    try:
        key.verify(signature, message)  # type: ignore[attr-defined]
    except InvalidSignature:
        raise SignatureInvalid(key_id=kek_id) from None


def verify_announcement(epoch: KeyEpoch, trusted: Mapping[str, object]) -> None:
    """Raise ``SignatureMissing`` / ``SignatureInvalid`` unless trusted exchange keys signed it: Ed25519,
    and for the hybrid suite ML-DSA-65 as well (both must verify). Order (FORMAT.md): every required
    signature present, every signer trusted, then each signature verified."""
    if not epoch.signed:
        raise SignatureMissing(key_id=epoch.kek_id)
    signer = trusted.get(epoch.signer_key_id)
    pq = trusted.get(epoch.pq_signer_key_id or "") if epoch.suite.pq_signature else None
    if signer is None or (epoch.suite.pq_signature and pq is None):
        raise SignatureInvalid("unknown_signer", key_id=epoch.kek_id)
    body = epoch.body()
    _verify(signer, ed25519.Ed25519PublicKey, epoch.signature, hz.LABEL_EPOCH_SIG + body, epoch.kek_id)
    if epoch.suite.pq_signature:
        _verify(pq, mldsa.MLDSA65PublicKey, epoch.pq_signature or b"", hz.LABEL_EPOCH_PQ_SIG + body, epoch.kek_id)


# ---- exchange side ----------------------------------------------------------------------------


class SealingEpoch:
    """The exchange's handle on one key epoch: wraps per-event data keys, never unwraps anything."""

    __slots__ = ("announcement", "_kek_aead", "_wraps", "_header", "_kid_lp", "_gm_lp", "_aad_head")

    def __init__(self, announcement: KeyEpoch, kek: bytes) -> None:
        self.announcement = announcement
        self._kek_aead = AESGCM(kek)
        self._wraps = 0
        # Per-epoch constants of every bundle sealed under it (FORMAT.md §Sealed bundle).
        self._header = hz.sealed_header(announcement.kek_id)
        self._kid_lp = hz.lp_str(announcement.kek_id)
        self._gm_lp = hz.lp_str(announcement.gemeentecode)
        self._aad_head = hz.sealed_aad_head(announcement.gemeentecode)

    @property
    def gemeentecode(self) -> str:
        return self.announcement.gemeentecode

    @property
    def kek_id(self) -> str:
        return self.announcement.kek_id

    @property
    def recipient_key_id(self) -> str:
        return self.announcement.recipient_key_id

    def covers(self, now: datetime) -> bool:
        return self.announcement.covers(now)

    @property
    def exhausted(self) -> bool:
        return self._wraps >= MAX_WRAPS_PER_EPOCH

    def _wrap_dek(self, dek: bytes, nonce: bytes, aad: bytes) -> bytes:
        if self._wraps >= MAX_WRAPS_PER_EPOCH:
            raise EpochExhausted(key_id=self.kek_id)
        self._wraps += 1
        return hz.wrap_dek(self._kek_aead, dek, nonce, aad)

    def __repr__(self) -> str:
        return f"SealingEpoch(gemeentecode={self.gemeentecode!r}, kek_id={self.kek_id!r})"

    def __reduce__(self) -> tuple:
        raise TypeError("SealingEpoch cannot be pickled")


def new_key_epoch(
    wrapping_key: GemeenteKey,
    signing_key: ExchangeSigningKey | ed25519.Ed25519PrivateKey,
    not_before: datetime,
    lifetime: timedelta = DEFAULT_EPOCH_LIFETIME,
) -> SealingEpoch:
    """Start a key epoch for ``wrapping_key.gemeentecode`` in the key's suite (one HPKE seal, one
    Ed25519 signature, and one ML-DSA-65 signature in the hybrid suite). Publish
    ``result.announcement.to_bytes()`` before (or with) the first record sealed under it."""
    return _new_key_epoch(wrapping_key, signing_key, not_before, lifetime, hz.SYSTEM_RNG)


def _new_key_epoch(
    wrapping_key: GemeenteKey,
    signing_key: ExchangeSigningKey | ed25519.Ed25519PrivateKey,
    not_before: datetime,
    lifetime: timedelta,
    rng: hz.Rng,
) -> SealingEpoch:
    if not isinstance(wrapping_key, GemeenteKey):
        raise InvalidKeyMaterial("wrong_key_type")
    suite = wrapping_key.suite
    keys = signing_keys(signing_key)
    kek = rng(hz.KEY_LEN)
    kek_id = suite.kek_prefix + hz.b32(rng(10))
    nb = not_before.replace(microsecond=0)
    info = hz.kek_info(wrapping_key.gemeentecode, kek_id, wrapping_key.key_id)
    wrapped = hz.hpke_wrap(kek, hpke_public(wrapping_key.public_key), info, suite)
    return _epoch_from_parts(
        wrapping_key.gemeentecode, kek, kek_id, wrapping_key.key_id, wrapped, keys, nb, nb + lifetime
    )


def _epoch_from_parts(
    gemeentecode: str,
    kek: bytes,
    kek_id: str,
    recipient_key_id: str,
    wrapped_kek: bytes,
    signing_key: ExchangeSigningKey | ed25519.Ed25519PrivateKey,
    not_before: datetime,
    not_after: datetime,
) -> SealingEpoch:
    """Deterministic assembly for the classical suite (Ed25519 signatures are deterministic; ML-DSA-65
    is hedged, so a hybrid vector pins its signature by verifying it); the test vectors use this."""
    check_gemeentecode(gemeentecode)
    check_key_id(kek_id)
    check_key_id(recipient_key_id)
    if len(kek) != hz.KEY_LEN:
        raise InvalidKeyMaterial("kek_length")
    keys = signing_keys(signing_key)
    suite = suite_of_key_id(recipient_key_id)
    if suite is None or suite_of_kek_id(kek_id) is not suite:
        raise ContextMismatch("kek_id_suite_mismatch", key_id=kek_id)
    if suite.pq_signature and keys.mldsa65 is None:
        raise KeyUnavailable("no_pq_signing_key", key_id=kek_id)
    unsigned = KeyEpoch(
        gemeentecode,
        kek_id,
        recipient_key_id,
        key_id_for(keys.ed25519.public_key()),
        not_before,
        not_after,
        wrapped_kek,
        None,
        key_id_for(keys.mldsa65.public_key()) if suite.pq_signature else None,  # type: ignore[union-attr]
    )
    if _seconds(not_after) <= _seconds(not_before):
        raise InvalidIdentifier("empty_validity")
    return SealingEpoch(sign_announcement(unsigned, keys), kek)


def needs_new_epoch(epoch: SealingEpoch | None, wrapping_key: GemeenteKey, now: datetime) -> bool:
    """True when the router must start a new epoch before sealing for this gemeente: none yet, the
    window ended, the chosen gemeente key changed (rotation), or the epoch is used up."""
    return (
        epoch is None
        or epoch.gemeentecode != wrapping_key.gemeentecode
        or epoch.recipient_key_id != wrapping_key.key_id
        or not epoch.covers(now)
        or epoch.exhausted
    )


# ---- gemeente side ----------------------------------------------------------------------------


class OpeningKeyring:
    """One gemeente's opening state: its private keys of either suite (old ones stay while records
    under them must open), the trusted exchange signing keys, verified announcements and the KEK
    cache. Each announcement's signatures are verified once, when it is added; per event only AES-GCM."""

    def __init__(
        self,
        gemeentecode: str,
        private_keys: Iterable[GemeentePrivateKey],
        exchange_keys: Iterable[object],
        classical_until: datetime | None = None,
    ) -> None:
        """``classical_until``: once a gemeente has moved to the hybrid suite, classical (x25519,
        Ed25519-only) epochs starting at or after this moment are refused, so a broken Ed25519 can no
        longer introduce new classical epochs; older ones keep opening."""
        self.gemeentecode = check_gemeentecode(gemeentecode)
        if classical_until is not None:
            _seconds(classical_until)  # aware, or InvalidIdentifier
        self.classical_until = classical_until
        self._gm_lp = hz.lp_str(gemeentecode)
        self._aad_head = hz.sealed_aad_head(gemeentecode)
        self._private: dict[str, GemeentePrivateKey] = {}
        for k in private_keys:
            self.add_private_key(k)
        self._trusted = trusted_signers(exchange_keys)
        if not self._trusted:
            raise InvalidKeyMaterial("no_exchange_key")
        self._epochs: dict[str, KeyEpoch] = {}
        # kek_id -> (KEK, sealed-bundle header, lp(kek_id)): everything per epoch, computed once.
        self._keks: dict[str, tuple[AESGCM, bytes, bytes]] = {}

    def add_private_key(self, key: GemeentePrivateKey) -> str:
        if not isinstance(key, (x25519.X25519PrivateKey, HybridPrivateKey)):
            raise InvalidKeyMaterial("wrong_key_type")
        kid = key_id_for(key.public_key())
        self._private[kid] = key
        return kid

    def remove_private_key(self, key_id: str) -> None:
        """Retire a key: epochs wrapped to it stop opening (their cached KEKs are dropped too)."""
        self._private.pop(key_id, None)
        for kek_id, ep in self._epochs.items():
            if ep.recipient_key_id == key_id:
                self._keks.pop(kek_id, None)

    def add(self, announcement: KeyEpoch | bytes) -> KeyEpoch:
        """Verify and remember an announcement. Parse (an object too: the wire form is what is
        trusted), signatures, then everything else."""
        wire = announcement.to_bytes() if isinstance(announcement, KeyEpoch) else announcement
        ep = KeyEpoch.from_bytes(wire)
        verify_announcement(ep, self._trusted)
        if (self.classical_until is not None and not ep.suite.pq_signature
                and ep.not_before >= self.classical_until):
            raise SignatureInvalid("classical_after_cutoff", key_id=ep.kek_id)
        if ep.gemeentecode != self.gemeentecode:
            raise ContextMismatch("other_gemeente", key_id=ep.kek_id)
        known = self._epochs.get(ep.kek_id)
        if known is not None and known.body() != ep.body():
            raise ContextMismatch("kek_id_conflict", key_id=ep.kek_id)
        self._epochs[ep.kek_id] = ep
        return ep

    @property
    def known_epochs(self) -> frozenset[str]:
        return frozenset(self._epochs)

    def _opening_keys(self, kek_id: str) -> tuple[AESGCM, bytes, bytes]:
        """The KEK of a verified epoch (HPKE-unwrapped on first use, then cached) with the epoch's
        sealed-bundle header and length-prefixed id."""
        keys = self._keks.get(kek_id)
        if keys is not None:
            return keys
        ep = self._epochs.get(kek_id)
        if ep is None:
            raise UnknownKeyEpoch(key_id=kek_id)
        priv = self._private.get(ep.recipient_key_id)
        if priv is None:
            raise KeyUnavailable("no_private_key", key_id=ep.recipient_key_id)
        kek = hz.hpke_unwrap(ep.wrapped_kek, hpke_private(priv),
                             hz.kek_info(ep.gemeentecode, ep.kek_id, ep.recipient_key_id), ep.suite)
        keys = self._keks[kek_id] = (AESGCM(kek), hz.sealed_header(kek_id), hz.lp_str(kek_id))
        return keys

    def __repr__(self) -> str:
        return f"OpeningKeyring(gemeentecode={self.gemeentecode!r}, keys={sorted(self._private)!r})"

    def __reduce__(self) -> tuple:
        raise TypeError("OpeningKeyring cannot be pickled")
