"""Key pairs and key ids: gemeente X25519 keys (encryption), the exchange's Ed25519 key (signing),
and the pure choice of which registered gemeente key new key epochs are wrapped to (rotation).

The CLI (``herstelbus gemeente keygen / register``) and the key directory are thin wrappers over
these functions; they hold no crypto of their own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from ._hazmat import LABEL_KEY_ID, b32
from .errors import InvalidIdentifier, InvalidKeyMaterial, KeyUnavailable

GEMEENTECODE = re.compile(r"GM\d{4}")
# Key ids travel in sealed bundles (u8 length) and AADs; keep them short, ASCII and unambiguous.
KEY_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")

# How long a newly registered gemeente key waits before new epochs are wrapped to it, so every
# consumer instance of the gemeente can receive the new private key first.
DEFAULT_OVERLAP = timedelta(days=7)


def check_gemeentecode(code: str) -> str:
    if not isinstance(code, str) or not GEMEENTECODE.fullmatch(code):
        raise InvalidIdentifier("invalid_gemeentecode")
    return code


def check_key_id(key_id: str) -> str:
    if not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id):
        raise InvalidIdentifier("invalid_key_id")
    return key_id


def _raw(public_key: x25519.X25519PublicKey | ed25519.Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_for(public_key: x25519.X25519PublicKey | ed25519.Ed25519PublicKey) -> str:
    """``x25519-`` / ``ed25519-`` + base32 of the first 10 bytes (80 bits) of
    SHA-256("herstelbus/key-id/v1\\0" || algorithm || 0x00 || raw public key): 16 characters,
    stable, derivable by anyone holding the public key, and never reused across algorithms."""
    if isinstance(public_key, x25519.X25519PublicKey):
        alg = "x25519"
    elif isinstance(public_key, ed25519.Ed25519PublicKey):
        alg = "ed25519"
    else:
        raise InvalidKeyMaterial("unsupported_key_type")
    digest = hashlib.sha256(LABEL_KEY_ID + alg.encode() + b"\x00" + _raw(public_key)).digest()
    return f"{alg}-{b32(digest[:10])}"


# ---- gemeente key pairs (X25519) -----------------------------------------------------------------


def generate_gemeente_key() -> x25519.X25519PrivateKey:
    return x25519.X25519PrivateKey.generate()


def generate_signing_key() -> ed25519.Ed25519PrivateKey:
    """The exchange's Ed25519 key that signs key-epoch announcements."""
    return ed25519.Ed25519PrivateKey.generate()


def private_key_to_pem(
    key: x25519.X25519PrivateKey | ed25519.Ed25519PrivateKey, password: bytes | None = None
) -> bytes:
    """PKCS#8 PEM; encrypted with the best available scheme when a password is given."""
    if not isinstance(key, (x25519.X25519PrivateKey, ed25519.Ed25519PrivateKey)):
        raise InvalidKeyMaterial("unsupported_key_type")
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def public_key_to_pem(key: x25519.X25519PublicKey | ed25519.Ed25519PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM."""
    if not isinstance(key, (x25519.X25519PublicKey, ed25519.Ed25519PublicKey)):
        raise InvalidKeyMaterial("unsupported_key_type")
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _load_private(data: bytes, password: bytes | None, kind: type) -> object:
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError):
        raise InvalidKeyMaterial("private_key_unreadable") from None
    if not isinstance(key, kind):
        raise InvalidKeyMaterial("wrong_key_type")
    return key


def _load_public(data: bytes, kind: type) -> object:
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise InvalidKeyMaterial("public_key_unreadable") from None
    if not isinstance(key, kind):
        raise InvalidKeyMaterial("wrong_key_type")
    return key


def load_gemeente_private_key(data: bytes, password: bytes | None = None) -> x25519.X25519PrivateKey:
    return _load_private(data, password, x25519.X25519PrivateKey)  # type: ignore[return-value]


def load_gemeente_public_key(data: bytes) -> x25519.X25519PublicKey:
    return _load_public(data, x25519.X25519PublicKey)  # type: ignore[return-value]


def load_signing_key(data: bytes, password: bytes | None = None) -> ed25519.Ed25519PrivateKey:
    return _load_private(data, password, ed25519.Ed25519PrivateKey)  # type: ignore[return-value]


def load_verify_key(data: bytes) -> ed25519.Ed25519PublicKey:
    return _load_public(data, ed25519.Ed25519PublicKey)  # type: ignore[return-value]


# ---- registered gemeente keys and rotation -------------------------------------------------------


def _aware(dt: datetime) -> datetime:
    if not isinstance(dt, datetime) or dt.tzinfo is None or dt.utcoffset() is None:
        raise InvalidIdentifier("naive_datetime")
    return dt


@dataclass(frozen=True)
class GemeenteKey:
    """A gemeente public key as registered in the exchange's key directory (public material only)."""

    gemeentecode: str
    public_key: x25519.X25519PublicKey = field(compare=False, repr=False)
    valid_from: datetime
    valid_until: datetime | None = None
    key_id: str = field(init=False)

    def __post_init__(self) -> None:
        check_gemeentecode(self.gemeentecode)
        if not isinstance(self.public_key, x25519.X25519PublicKey):
            raise InvalidKeyMaterial("wrong_key_type")
        _aware(self.valid_from)
        if self.valid_until is not None and _aware(self.valid_until) <= self.valid_from:
            raise InvalidIdentifier("empty_validity")
        object.__setattr__(self, "key_id", key_id_for(self.public_key))

    def valid_at(self, now: datetime) -> bool:
        return self.valid_from <= now and (self.valid_until is None or now < self.valid_until)


def choose_wrapping_key(
    keys: Iterable[GemeenteKey], gemeentecode: str, now: datetime, overlap: timedelta = DEFAULT_OVERLAP
) -> GemeenteKey:
    """The key new key epochs for ``gemeentecode`` are wrapped to at ``now``.

    Among the gemeente's keys valid at ``now``: the newest whose overlap period has passed
    (``valid_from + overlap <= now``); if none has passed it (a first key, or the old key already
    expired) the newest valid one. Ties on ``valid_from`` break on key id so every router replica
    picks the same key. No valid key → ``KeyUnavailable`` (fail closed: nothing is sealed to nobody).
    """
    _aware(now)
    check_gemeentecode(gemeentecode)
    valid = [k for k in keys if k.gemeentecode == gemeentecode and k.valid_at(now)]
    if not valid:
        raise KeyUnavailable("no_gemeente_key")
    settled = [k for k in valid if k.valid_from + overlap <= now]
    pool = settled or valid
    return max(pool, key=lambda k: (k.valid_from, k.key_id))
