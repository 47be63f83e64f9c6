"""Pseudonyms: the only form in which a BSN leaves the router (Kafka key, ``ce_subject``, key-store rows).

``p1:`` + lowercase base32 (no padding) of the first 20 bytes (160 bits) of
HMAC-SHA256(secret, "herstelbus/pseudonym/v1\\0" || bsn), 32 characters after the prefix.

Why keyed: there are only 10^9 BSNs (fewer passing the 11-proef), so any unkeyed hash is reversed
by enumeration in minutes. Why truncated to 160 bits: collision-free at any realistic population
(birthday bound 2^80) while keeping Kafka keys short. The ``p1`` version names the construction; a new
secret or algorithm gets a new prefix so old and new pseudonyms never collide silently.

Dossier pseudonyms (the router's routing memory per dossier; faust tables live in changelog topics,
so a dossiernummer may not be a key there): ``d1:`` + the same construction under the same secret
with its own label, "herstelbus/dossier-pseudonym/v1\\0", so a dossier and a person never share one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from pathlib import Path

from ..bsn import is_valid_bsn
from ..contracts.validation import FORMATS
from ._hazmat import LABEL_DOSSIER_PSEUDONYM, LABEL_PSEUDONYM, b32
from .errors import InvalidBsn, InvalidIdentifier, InvalidKeyMaterial

PSEUDONYM_PREFIX = "p1:"
DOSSIER_PSEUDONYM_PREFIX = "d1:"
PSEUDONYM_BYTES = 20
MIN_SECRET_BYTES = 32


class PseudonymSecret:
    """The exchange's pseudonym key. Its repr/str never show the secret; it cannot be pickled.

    Key files and the environment hold it as base64 text (``openssl rand -base64 32`` works), so a
    stray newline or an editor cannot corrupt a binary file.
    """

    __slots__ = ("_key", "_keyed", "_keyed_dossier")

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, (bytes, bytearray)) or len(key) < MIN_SECRET_BYTES:
            raise InvalidKeyMaterial("pseudonym_secret_too_short")
        self._key = bytes(key)
        # HMAC state after the key and the domain label, copied per call (cheaper than re-keying).
        self._keyed = hmac.new(self._key, LABEL_PSEUDONYM, hashlib.sha256)
        self._keyed_dossier = hmac.new(self._key, LABEL_DOSSIER_PSEUDONYM, hashlib.sha256)

    @classmethod
    def generate(cls) -> PseudonymSecret:
        return cls(os.urandom(MIN_SECRET_BYTES))

    @classmethod
    def from_base64(cls, text: str | bytes) -> PseudonymSecret:
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidKeyMaterial("pseudonym_secret_not_base64") from None
        return cls(raw)

    @classmethod
    def from_env(cls, value: str | None) -> PseudonymSecret:
        """From an environment variable's value (base64). ``None``/empty fails closed."""
        if not value:
            raise InvalidKeyMaterial("pseudonym_secret_missing")
        return cls.from_base64(value)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PseudonymSecret:
        try:
            text = Path(path).read_bytes()
        except OSError:
            raise InvalidKeyMaterial("pseudonym_secret_unreadable") from None
        return cls.from_base64(text)

    def export_base64(self) -> str:
        """The secret as key-file text. Only for writing the key file; never log it."""
        return base64.b64encode(self._key).decode("ascii")

    def __repr__(self) -> str:
        return "PseudonymSecret(<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> tuple:
        raise TypeError("PseudonymSecret cannot be pickled")

    def _mac(self, message: bytes) -> bytes:
        """HMAC-SHA256(secret, LABEL_PSEUDONYM || message)."""
        h = self._keyed.copy()
        h.update(message)
        return h.digest()

    def _mac_dossier(self, message: bytes) -> bytes:
        """HMAC-SHA256(secret, LABEL_DOSSIER_PSEUDONYM || message)."""
        h = self._keyed_dossier.copy()
        h.update(message)
        return h.digest()


def pseudonymise(bsn: str, secret: PseudonymSecret) -> str:
    """The versioned keyed pseudonym of a BSN. Refuses anything that is not a valid BSN (11-proef),
    so a typo or a dossiernummer can never become a pseudonym that silently matches nothing."""
    if not isinstance(secret, PseudonymSecret):
        raise InvalidKeyMaterial("pseudonym_secret_required")
    if not is_valid_bsn(bsn):
        raise InvalidBsn()
    digest = secret._mac(bsn.encode("ascii"))
    return PSEUDONYM_PREFIX + b32(digest[:PSEUDONYM_BYTES])


def pseudonymise_dossier(dossiernummer: str, secret: PseudonymSecret) -> str:
    """The versioned keyed pseudonym of a UHT dossiernummer (``d1:``...). Refuses anything that is not
    a well-formed dossiernummer (the contract's format), without echoing it."""
    if not isinstance(secret, PseudonymSecret):
        raise InvalidKeyMaterial("pseudonym_secret_required")
    if not isinstance(dossiernummer, str) or not dossiernummer.isascii() or not FORMATS["dossiernummer"](dossiernummer):
        raise InvalidIdentifier("invalid_dossiernummer")
    digest = secret._mac_dossier(dossiernummer.encode("ascii"))
    return DOSSIER_PSEUDONYM_PREFIX + b32(digest[:PSEUDONYM_BYTES])


def is_pseudonym(value: str) -> bool:
    """Shape check (used to refuse a BSN or junk where a pseudonym is expected)."""
    if not isinstance(value, str) or not value.startswith(PSEUDONYM_PREFIX):
        return False
    body = value[len(PSEUDONYM_PREFIX) :]
    return len(body) == 32 and all(c in "abcdefghijklmnopqrstuvwxyz234567" for c in body)
