"""Typed failures of the privacy core.

Every error carries a stable ``reason`` code for dead-letter records, receipts and metrics. Messages
are built only from fixed text, reason codes, field paths and key ids: never from a BSN, a name, an
address, a pseudonym, an event id or any other value taken from a record. Wrapped library errors are
raised ``from None`` so their (possibly value-bearing) text never lands in a traceback either.
"""

from __future__ import annotations


class PrivacyError(Exception):
    """Base class. ``reason`` is a stable machine code; ``str()`` never contains personal data."""

    default_reason = "privacy_error"

    def __init__(self, reason: str | None = None, *, path: str | None = None, key_id: str | None = None) -> None:
        self.reason = reason or self.default_reason
        self.path = path
        self.key_id = key_id
        parts = [self.reason]
        if path is not None:
            parts.append(f"path={path}")
        if key_id is not None:
            parts.append(f"key_id={key_id}")
        super().__init__(" ".join(parts))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class InvalidBsn(PrivacyError):
    """The input is not a nine-digit BSN passing the 11-proef (the value itself is never echoed)."""

    default_reason = "invalid_bsn"


class InvalidKeyMaterial(PrivacyError):
    """A secret, key file or key is too short, unreadable or of the wrong type."""

    default_reason = "invalid_key_material"


class SignatureMissing(PrivacyError):
    """A key-epoch announcement arrived without a signature."""

    default_reason = "signature_missing"


class SignatureInvalid(PrivacyError):
    """A key-epoch announcement's signature does not verify, or its signer is not trusted."""

    default_reason = "signature_invalid"


class MalformedAnnouncement(PrivacyError):
    """Announcement bytes that do not parse (wrong version, truncated, trailing bytes, bad suite)."""

    default_reason = "malformed_announcement"


class UnknownKeyEpoch(PrivacyError):
    """No verified announcement is known for the key id a sealed record refers to."""

    default_reason = "unknown_key_epoch"


class KeyUnavailable(PrivacyError):
    """A needed key is not there: no private key for the epoch, no key-store row, store unreachable,
    no registered gemeente key to wrap to."""

    default_reason = "key_unavailable"


class SubjectErased(PrivacyError):
    """The subject's wrapped data keys were deleted (crypto-shredding): this record can never be opened."""

    default_reason = "subject_erased"


class Tampered(PrivacyError):
    """An AEAD or HPKE check failed: the ciphertext, its context or the key row was altered or moved."""

    default_reason = "tampered"


class MalformedSealedField(PrivacyError):
    """The record's ``verzegeld`` field is not a well-formed sealed bundle, or personal data sits
    beside it in the clear (fail closed: plaintext or junk is never passed on)."""

    default_reason = "malformed_sealed_field"


class RecordInvalid(PrivacyError):
    """A record cannot be sealed: a personal-data field is missing or does not match its schema."""

    default_reason = "record_invalid"


class ContextMismatch(PrivacyError):
    """Caller error: keys, epochs or rows for one gemeente/event used for another."""

    default_reason = "context_mismatch"


class EpochExhausted(PrivacyError):
    """A key epoch wrapped its maximum number of data keys; start a new epoch."""

    default_reason = "epoch_exhausted"


class InvalidIdentifier(PrivacyError):
    """A gemeentecode, key id, event id or pseudonym that is not well formed (checked before use in
    any AAD, so two different contexts can never encode to the same bytes)."""

    default_reason = "invalid_identifier"
