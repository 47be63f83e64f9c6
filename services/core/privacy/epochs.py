"""Key epochs: one key-encryption key (KEK) per gemeente per time window (issue 4, property 8).

Exchange side: ``new_key_epoch`` draws a random 32-byte KEK, wraps it to the gemeente's X25519 key
with HPKE (RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM; ``info`` binds
gemeentecode, KEK id and recipient key id) and signs the resulting ``KeyEpoch`` announcement with the
exchange's Ed25519 key (property 4). That is the only public-key work: once per gemeente per window.

Gemeente side: ``OpeningKeyring`` verifies each announcement's signature when it is added (typed
``SignatureMissing`` / ``SignatureInvalid`` before anything is decrypted), and unwraps a KEK once, on
first use, then caches it. Per event only AES-GCM runs.

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
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
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
from .keys import GemeenteKey, check_gemeentecode, check_key_id, key_id_for

ANNOUNCEMENT_VERSION = 0x01
SIGNATURE_LEN = 64
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

    def body(self) -> bytes:
        """The signed bytes (FORMAT.md §Key-epoch announcement)."""
        return b"".join(
            (
                bytes((ANNOUNCEMENT_VERSION,)),
                hz.lp_str(self.gemeentecode),
                hz.lp_str(self.kek_id),
                hz.lp_str(self.recipient_key_id),
                hz.lp_str(self.signer_key_id),
                struct.pack(">QQ", _seconds(self.not_before), _seconds(self.not_after)),
                struct.pack(">HHH", hz.HPKE_KEM_ID, hz.HPKE_KDF_ID, hz.HPKE_AEAD_ID),
                hz.lp(self.wrapped_kek),
            )
        )

    def to_bytes(self) -> bytes:
        return self.body() + (self.signature or b"")

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

    if not data or data[0] != ANNOUNCEMENT_VERSION:
        raise MalformedAnnouncement("bad_version")
    pos = 1
    gm = take_lp().decode("ascii")
    kek_id = take_lp().decode("ascii")
    recipient = take_lp().decode("ascii")
    signer = take_lp().decode("ascii")
    nb, na = struct.unpack_from(">QQ", data, pos)
    pos += 16
    suite = struct.unpack_from(">HHH", data, pos)
    pos += 6
    if suite != (hz.HPKE_KEM_ID, hz.HPKE_KDF_ID, hz.HPKE_AEAD_ID):
        raise MalformedAnnouncement("unsupported_suite")
    wrapped = take_lp()
    rest = data[pos:]
    if len(rest) not in (0, SIGNATURE_LEN):
        raise MalformedAnnouncement("bad_signature_length")
    if len(wrapped) != hz.WRAPPED_KEK_LEN or na <= nb:
        raise MalformedAnnouncement("bad_fields")
    try:
        check_gemeentecode(gm)
        for kid in (kek_id, recipient, signer):
            check_key_id(kid)
    except InvalidIdentifier:
        raise MalformedAnnouncement("bad_identifier") from None
    return KeyEpoch(gm, kek_id, recipient, signer, _from_seconds(nb), _from_seconds(na), wrapped, rest or None)


def sign_announcement(epoch: KeyEpoch, signing_key: ed25519.Ed25519PrivateKey) -> KeyEpoch:
    if not isinstance(signing_key, ed25519.Ed25519PrivateKey):
        raise InvalidKeyMaterial("wrong_key_type")
    if key_id_for(signing_key.public_key()) != epoch.signer_key_id:
        raise ContextMismatch("signer_key_id_mismatch")
    sig = signing_key.sign(hz.LABEL_EPOCH_SIG + epoch.body())
    return KeyEpoch(
        epoch.gemeentecode,
        epoch.kek_id,
        epoch.recipient_key_id,
        epoch.signer_key_id,
        epoch.not_before,
        epoch.not_after,
        epoch.wrapped_kek,
        sig,
    )


def trusted_signers(keys: Iterable[ed25519.Ed25519PublicKey]) -> dict[str, ed25519.Ed25519PublicKey]:
    out = {}
    for k in keys:
        if not isinstance(k, ed25519.Ed25519PublicKey):
            raise InvalidKeyMaterial("wrong_key_type")
        out[key_id_for(k)] = k
    return out


def verify_announcement(epoch: KeyEpoch, trusted: Mapping[str, ed25519.Ed25519PublicKey]) -> None:
    """Raise ``SignatureMissing`` / ``SignatureInvalid`` unless a trusted exchange key signed it."""
    if not epoch.signature:
        raise SignatureMissing(key_id=epoch.kek_id)
    signer = trusted.get(epoch.signer_key_id)
    if signer is None:
        raise SignatureInvalid("unknown_signer", key_id=epoch.kek_id)
    try:
        signer.verify(epoch.signature, hz.LABEL_EPOCH_SIG + epoch.body())
    except InvalidSignature:
        raise SignatureInvalid(key_id=epoch.kek_id) from None


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
    signing_key: ed25519.Ed25519PrivateKey,
    not_before: datetime,
    lifetime: timedelta = DEFAULT_EPOCH_LIFETIME,
) -> SealingEpoch:
    """Start a key epoch for ``wrapping_key.gemeentecode`` (one HPKE seal + one Ed25519 signature).
    Publish ``result.announcement.to_bytes()`` before (or with) the first record sealed under it."""
    return _new_key_epoch(wrapping_key, signing_key, not_before, lifetime, hz.SYSTEM_RNG)


def _new_key_epoch(
    wrapping_key: GemeenteKey,
    signing_key: ed25519.Ed25519PrivateKey,
    not_before: datetime,
    lifetime: timedelta,
    rng: hz.Rng,
) -> SealingEpoch:
    if not isinstance(wrapping_key, GemeenteKey):
        raise InvalidKeyMaterial("wrong_key_type")
    kek = rng(hz.KEY_LEN)
    kek_id = "kek-" + hz.b32(rng(10))
    nb = not_before.replace(microsecond=0)
    info = hz.kek_info(wrapping_key.gemeentecode, kek_id, wrapping_key.key_id)
    wrapped = hz.hpke_wrap(kek, wrapping_key.public_key, info)
    return _epoch_from_parts(
        wrapping_key.gemeentecode, kek, kek_id, wrapping_key.key_id, wrapped, signing_key, nb, nb + lifetime
    )


def _epoch_from_parts(
    gemeentecode: str,
    kek: bytes,
    kek_id: str,
    recipient_key_id: str,
    wrapped_kek: bytes,
    signing_key: ed25519.Ed25519PrivateKey,
    not_before: datetime,
    not_after: datetime,
) -> SealingEpoch:
    """Deterministic assembly (Ed25519 signatures are deterministic); the test vectors use this."""
    check_gemeentecode(gemeentecode)
    check_key_id(kek_id)
    check_key_id(recipient_key_id)
    if len(kek) != hz.KEY_LEN:
        raise InvalidKeyMaterial("kek_length")
    unsigned = KeyEpoch(
        gemeentecode,
        kek_id,
        recipient_key_id,
        key_id_for(signing_key.public_key()),
        not_before,
        not_after,
        wrapped_kek,
    )
    if _seconds(not_after) <= _seconds(not_before):
        raise InvalidIdentifier("empty_validity")
    return SealingEpoch(sign_announcement(unsigned, signing_key), kek)


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
    """One gemeente's opening state: its X25519 private keys (old ones stay while records under them
    must open), the trusted exchange signing keys, verified announcements and the KEK cache."""

    def __init__(
        self,
        gemeentecode: str,
        private_keys: Iterable[x25519.X25519PrivateKey],
        exchange_keys: Iterable[ed25519.Ed25519PublicKey],
    ) -> None:
        self.gemeentecode = check_gemeentecode(gemeentecode)
        self._gm_lp = hz.lp_str(gemeentecode)
        self._aad_head = hz.sealed_aad_head(gemeentecode)
        self._private: dict[str, x25519.X25519PrivateKey] = {}
        for k in private_keys:
            self.add_private_key(k)
        self._trusted = trusted_signers(exchange_keys)
        if not self._trusted:
            raise InvalidKeyMaterial("no_exchange_key")
        self._epochs: dict[str, KeyEpoch] = {}
        # kek_id -> (KEK, sealed-bundle header, lp(kek_id)): everything per epoch, computed once.
        self._keks: dict[str, tuple[AESGCM, bytes, bytes]] = {}

    def add_private_key(self, key: x25519.X25519PrivateKey) -> str:
        if not isinstance(key, x25519.X25519PrivateKey):
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
        """Verify and remember an announcement. Signature first, then everything else."""
        ep = announcement if isinstance(announcement, KeyEpoch) else KeyEpoch.from_bytes(announcement)
        verify_announcement(ep, self._trusted)
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
        kek = hz.hpke_unwrap(ep.wrapped_kek, priv, hz.kek_info(ep.gemeentecode, ep.kek_id, ep.recipient_key_id))
        keys = self._keks[kek_id] = (AESGCM(kek), hz.sealed_header(kek_id), hz.lp_str(kek_id))
        return keys

    def __repr__(self) -> str:
        return f"OpeningKeyring(gemeentecode={self.gemeentecode!r}, keys={sorted(self._private)!r})"

    def __reduce__(self) -> tuple:
        raise TypeError("OpeningKeyring cannot be pickled")
