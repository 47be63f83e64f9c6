"""Typed failures of the key store. Messages hold reason codes, gemeentecodes, key ids, event ids
and pseudonyms only: never a BSN, a name, a token, a password or wrapped key bytes."""

from __future__ import annotations

from herstelbus.errors import HerstelbusError


class KeystoreError(HerstelbusError):
    """Base class; the CLI prints it as one line and exits 1."""


class KeystoreConfigError(KeystoreError):
    """Settings that cannot work: an unsupported database URL, a missing pseudonym key file."""


class KeystoreUnavailable(KeystoreError):
    """The database did not answer or refused the statement (the driver's text is not passed on)."""


class KeyConflict(KeystoreError):
    """The same key (row id) was written before with different content: never overwritten."""


class SubjectErasedWrite(KeystoreError):
    """A wrapped key for an erased subject: refused, so a replay of the ingest topics cannot undo
    an erasure. The router dead-letters the event with this reason."""


class InvalidRequest(KeystoreError):
    """A malformed reference, purpose, date or gemeentecode (the offending value is not echoed)."""
