"""Key pairs and key ids: gemeente encryption keys (X25519, or the hybrid ML-KEM-768 + X25519 of
issue 12), the exchange's signing keys (Ed25519, with ML-DSA-65 for hybrid epochs), and the pure
choice of which registered gemeente key new key epochs are wrapped to (rotation).

A hybrid key is a pair of standard keys; on disk it is two PEM blocks in one file (PKCS#8 or
SubjectPublicKeyInfo each: ML-KEM-768 first, then X25519), and so is the exchange's signing key
(Ed25519, then ML-DSA-65). Any PKCS#8-reading library loads each part.

The CLI (``herstelbus gemeente keygen / register``) and the key directory are thin wrappers over
these functions; they hold no crypto of their own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Union

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa, mlkem, x25519
from cryptography.hazmat.primitives.hpke import MLKEM768X25519PrivateKey, MLKEM768X25519PublicKey

from ._hazmat import LABEL_KEY_ID, b32
from .errors import InvalidIdentifier, InvalidKeyMaterial, KeyUnavailable
from .suites import DEFAULT_SUITE, HYBRID_SUITE, X25519_SUITE, CipherSuite

GEMEENTECODE = re.compile(r"GM\d{4}")
# Key ids travel in sealed bundles (u8 length) and AADs; keep them short, ASCII and unambiguous.
KEY_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----\r?\n?", re.DOTALL)

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


# ---- the hybrid ML-KEM-768 + X25519 key pair -------------------------------------------------------


@dataclass(frozen=True, eq=False)
class HybridPublicKey:
    """A gemeente's hybrid public key: ML-KEM-768 and X25519, used together (HPKE KEM 0x647A)."""

    mlkem: mlkem.MLKEM768PublicKey = field(repr=False)
    x25519: x25519.X25519PublicKey = field(repr=False)

    def raw(self) -> bytes:
        """ML-KEM-768 encapsulation key (1,184 bytes) || X25519 public key (32): its key-id input."""
        return self.mlkem.public_bytes_raw() + _raw(self.x25519)

    def hpke(self) -> MLKEM768X25519PublicKey:
        return MLKEM768X25519PublicKey(self.mlkem, self.x25519)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HybridPublicKey) and self.raw() == other.raw()

    def __hash__(self) -> int:
        return hash(self.raw())


@dataclass(frozen=True, eq=False)
class HybridPrivateKey:
    """What only the gemeente holds for the hybrid suite. Never printed or pickled."""

    mlkem: mlkem.MLKEM768PrivateKey = field(repr=False)
    x25519: x25519.X25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> HybridPrivateKey:
        return cls(mlkem.MLKEM768PrivateKey.generate(), x25519.X25519PrivateKey.generate())

    def public_key(self) -> HybridPublicKey:
        return HybridPublicKey(self.mlkem.public_key(), self.x25519.public_key())

    def hpke(self) -> MLKEM768X25519PrivateKey:
        return MLKEM768X25519PrivateKey(self.mlkem, self.x25519)

    def __reduce__(self) -> tuple:
        raise TypeError("HybridPrivateKey cannot be pickled")


GemeentePublicKey = Union[x25519.X25519PublicKey, HybridPublicKey]
GemeentePrivateKey = Union[x25519.X25519PrivateKey, HybridPrivateKey]


def suite_of(key: object) -> CipherSuite:
    """The suite of a gemeente (or ops) key, public or private."""
    if isinstance(key, (HybridPublicKey, HybridPrivateKey)):
        return HYBRID_SUITE
    if isinstance(key, (x25519.X25519PublicKey, x25519.X25519PrivateKey)):
        return X25519_SUITE
    raise InvalidKeyMaterial("wrong_key_type")


def hpke_public(key: GemeentePublicKey) -> object:
    """The key as its suite's HPKE recipient key."""
    return key.hpke() if isinstance(key, HybridPublicKey) else key


def hpke_private(key: GemeentePrivateKey) -> object:
    return key.hpke() if isinstance(key, HybridPrivateKey) else key


# ---- the exchange's signing keys -------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ExchangeVerifyKey:
    """The exchange's public signing keys: Ed25519, and ML-DSA-65 when it signs hybrid epochs."""

    ed25519: ed25519.Ed25519PublicKey = field(repr=False)
    mldsa65: mldsa.MLDSA65PublicKey | None = field(default=None, repr=False)

    def keys(self) -> list[object]:
        return _parts(self)


@dataclass(frozen=True, eq=False)
class ExchangeSigningKey:
    """The exchange's signing keys. Without ML-DSA-65 it can sign classical epochs only: a hybrid
    epoch then fails closed (``KeyUnavailable(no_pq_signing_key)``)."""

    ed25519: ed25519.Ed25519PrivateKey = field(repr=False)
    mldsa65: mldsa.MLDSA65PrivateKey | None = field(default=None, repr=False)

    def public_key(self) -> ExchangeVerifyKey:
        return ExchangeVerifyKey(self.ed25519.public_key(), self.mldsa65.public_key() if self.mldsa65 else None)

    def __reduce__(self) -> tuple:
        raise TypeError("ExchangeSigningKey cannot be pickled")


def signing_keys(key: ExchangeSigningKey | ed25519.Ed25519PrivateKey) -> ExchangeSigningKey:
    """A bare Ed25519 key is an exchange that signs classical epochs only."""
    if isinstance(key, ExchangeSigningKey):
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return ExchangeSigningKey(key)
    raise InvalidKeyMaterial("wrong_key_type")


# ---- key ids ---------------------------------------------------------------------------------------


def _raw(public_key: x25519.X25519PublicKey | ed25519.Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_for(public_key: object) -> str:
    """``<alg>-`` + base32 of the first 10 bytes (80 bits) of
    SHA-256("herstelbus/key-id/v1\\0" || alg || 0x00 || raw public key): 16 characters, stable,
    derivable by anyone holding the public key, and never reused across algorithms. ``alg``:
    ``x25519``, ``mlkem768x25519`` (raw = ML-KEM-768 key || X25519 key), ``ed25519``, ``mldsa65``."""
    if isinstance(public_key, x25519.X25519PublicKey):
        alg, raw = "x25519", _raw(public_key)
    elif isinstance(public_key, HybridPublicKey):
        alg, raw = HYBRID_SUITE.name, public_key.raw()
    elif isinstance(public_key, ed25519.Ed25519PublicKey):
        alg, raw = "ed25519", _raw(public_key)
    elif isinstance(public_key, mldsa.MLDSA65PublicKey):
        alg, raw = "mldsa65", public_key.public_bytes_raw()
    else:
        raise InvalidKeyMaterial("unsupported_key_type")
    digest = hashlib.sha256(LABEL_KEY_ID + alg.encode() + b"\x00" + raw).digest()
    return f"{alg}-{b32(digest[:10])}"


# ---- generating ------------------------------------------------------------------------------------


def generate_gemeente_key(suite: CipherSuite = DEFAULT_SUITE) -> GemeentePrivateKey:
    """A new gemeente key pair of ``suite`` (default: hybrid ML-KEM-768 + X25519)."""
    if suite is HYBRID_SUITE:
        return HybridPrivateKey.generate()
    if suite is X25519_SUITE:
        return x25519.X25519PrivateKey.generate()
    raise InvalidKeyMaterial("unsupported_suite")


def generate_signing_key(pq: bool = True) -> ExchangeSigningKey:
    """The exchange's keys that sign key-epoch announcements: Ed25519, and ML-DSA-65 unless ``pq``
    is False (then it can sign classical epochs only)."""
    return ExchangeSigningKey(ed25519.Ed25519PrivateKey.generate(), mldsa.MLDSA65PrivateKey.generate() if pq else None)


# ---- PEM -------------------------------------------------------------------------------------------

_SINGLE_PRIVATE = (x25519.X25519PrivateKey, ed25519.Ed25519PrivateKey, mldsa.MLDSA65PrivateKey,
                   mlkem.MLKEM768PrivateKey)


def _parts(key: object) -> list[object]:
    """The standard keys a composite key is made of, in their PEM order."""
    if isinstance(key, (HybridPrivateKey, HybridPublicKey)):
        return [key.mlkem, key.x25519]
    if isinstance(key, (ExchangeSigningKey, ExchangeVerifyKey)):
        return [k for k in (key.ed25519, key.mldsa65) if k is not None]
    return [key]


def private_key_to_pem(key: object, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM (one block per part of a hybrid or exchange key); encrypted with the best
    available scheme when a password is given."""
    parts = _parts(key)
    if not all(isinstance(p, _SINGLE_PRIVATE) for p in parts):
        raise InvalidKeyMaterial("unsupported_key_type")
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return b"".join(p.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)  # type: ignore[attr-defined]
                    for p in parts)


def public_key_to_pem(key: object) -> bytes:
    """SubjectPublicKeyInfo PEM (one block per part)."""
    parts = _parts(key)
    if not all(isinstance(p, (x25519.X25519PublicKey, ed25519.Ed25519PublicKey, mldsa.MLDSA65PublicKey,
                              mlkem.MLKEM768PublicKey)) for p in parts):
        raise InvalidKeyMaterial("unsupported_key_type")
    return b"".join(p.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]
                    for p in parts)


def _blocks(data: bytes) -> list[bytes]:
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(bytes(data))]
    return blocks or [bytes(data)]  # not PEM at all: the loader below says so


def _load_private_parts(data: bytes, password: bytes | None) -> list[object]:
    try:
        return [serialization.load_pem_private_key(b, password=password) for b in _blocks(data)]
    except (ValueError, TypeError):
        raise InvalidKeyMaterial("private_key_unreadable") from None


def _load_public_parts(data: bytes) -> list[object]:
    try:
        return [serialization.load_pem_public_key(b) for b in _blocks(data)]
    except (ValueError, TypeError):
        raise InvalidKeyMaterial("public_key_unreadable") from None


def _assemble(parts: list[object], *shapes: tuple[tuple[type, ...], Any]) -> Any:
    """The key the PEM blocks make, by their types in order; anything else is the wrong key."""
    for kinds, build in shapes:
        if len(parts) == len(kinds) and all(isinstance(p, k) for p, k in zip(parts, kinds)):
            return build(*parts)
    raise InvalidKeyMaterial("wrong_key_type")


def _itself(key: object) -> object:
    return key


def load_gemeente_private_key(data: bytes, password: bytes | None = None) -> GemeentePrivateKey:
    """One X25519 key (classical suite) or ML-KEM-768 then X25519 (hybrid)."""
    return _assemble(_load_private_parts(data, password), ((x25519.X25519PrivateKey,), _itself),
                     ((mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey), HybridPrivateKey))


def load_gemeente_public_key(data: bytes) -> GemeentePublicKey:
    return _assemble(_load_public_parts(data), ((x25519.X25519PublicKey,), _itself),
                     ((mlkem.MLKEM768PublicKey, x25519.X25519PublicKey), HybridPublicKey))


def load_signing_key(data: bytes, password: bytes | None = None) -> ExchangeSigningKey:
    """Ed25519, optionally followed by ML-DSA-65 (needed to sign hybrid epochs)."""
    return _assemble(_load_private_parts(data, password), ((ed25519.Ed25519PrivateKey,), ExchangeSigningKey),
                     ((ed25519.Ed25519PrivateKey, mldsa.MLDSA65PrivateKey), ExchangeSigningKey))


def load_verify_key(data: bytes) -> ExchangeVerifyKey:
    return _assemble(_load_public_parts(data), ((ed25519.Ed25519PublicKey,), ExchangeVerifyKey),
                     ((ed25519.Ed25519PublicKey, mldsa.MLDSA65PublicKey), ExchangeVerifyKey))


# ---- registered gemeente keys and rotation -------------------------------------------------------


def _aware(dt: datetime) -> datetime:
    if not isinstance(dt, datetime) or dt.tzinfo is None or dt.utcoffset() is None:
        raise InvalidIdentifier("naive_datetime")
    return dt


@dataclass(frozen=True)
class GemeenteKey:
    """A gemeente public key as registered in the exchange's key directory (public material only)."""

    gemeentecode: str
    public_key: GemeentePublicKey = field(compare=False, repr=False)
    valid_from: datetime
    valid_until: datetime | None = None
    key_id: str = field(init=False)

    def __post_init__(self) -> None:
        check_gemeentecode(self.gemeentecode)
        if not isinstance(self.public_key, (x25519.X25519PublicKey, HybridPublicKey)):
            raise InvalidKeyMaterial("wrong_key_type")
        _aware(self.valid_from)
        if self.valid_until is not None and _aware(self.valid_until) <= self.valid_from:
            raise InvalidIdentifier("empty_validity")
        object.__setattr__(self, "key_id", key_id_for(self.public_key))

    @property
    def suite(self) -> CipherSuite:
        return suite_of(self.public_key)

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
