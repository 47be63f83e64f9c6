"""What the SDK yields per routed record: ``Geopend`` (opened) or ``Geweigerd`` (refused), and the
mapping from every way opening can fail to one typed refusal code.

Every refusal becomes the contract's GEWEIGERD with reden ONLEESBAAR: the gemeente could not read
the record, whatever the cause; the precise cause travels as the ``code`` (a fixed identifier, so
it may go into logs and into the acknowledgement's ``toelichting``). Pure: no Kafka, no HTTP.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from herstelbus.core.contracts import ContractError, to_json
from herstelbus.core.privacy import (
    ContextMismatch, InvalidIdentifier, KeyUnavailable, MalformedAnnouncement, MalformedSealedField,
    PrivacyError, SignatureInvalid, SignatureMissing, SubjectErased, Tampered, UnknownKeyEpoch,
)

ONLEESBAAR = "ONLEESBAAR"  # the contract's WeigerReden for every record that cannot be opened
_REEKS_DOMEIN = b"herstelbus/gemeente/reeks/v1"


def reekssleutel(gemeentecode: str, dossiernummer: str) -> str:
    """The key of a dossier's volgnummer series at one gemeente: 32 hex characters, the first half
    of SHA-256 over a fixed domain, ``gemeentecode`` and ``dossiernummer``.

    Not a pseudonym: it is unkeyed, and dossiernummers are guessable (``UHT-2021-000123``), so
    trying them reverses it. Treat it as the dossiernummer itself: in memory and in the sink's own
    store beside ``data`` only, never in logs, ``Gat`` reports, errors or metrics. A digest rather
    than the number so the plaintext is not copied into a second column (and its index or
    statistics) of the sql sink; fixed width; one gemeente's keys do not match another's.
    """
    if not isinstance(gemeentecode, str) or not isinstance(dossiernummer, str) or not dossiernummer:
        raise TypeError("reekssleutel: gemeentecode and dossiernummer must be non-empty strings")  # no value echoed
    digest = hashlib.sha256(b"\0".join((_REEKS_DOMEIN, gemeentecode.encode(), dossiernummer.encode())))
    return digest.hexdigest()[:32]


class Weigercode(str, enum.Enum):
    """Why a record was refused. Stable: in logs, summaries and the ack's ``toelichting``."""

    SUBJECT_ERASED = "subject_erased"  # crypto-shredded: can never be opened, do not retry
    TAMPERED = "tampered"  # AEAD failed or the sealed bundle is malformed
    SIGNATURE_INVALID = "signature_invalid"  # the key epoch's announcement is not the exchange's
    UNKNOWN_KEY_EPOCH = "unknown_key_epoch"  # the key store has no announcement for the record's epoch
    KEY_UNAVAILABLE = "key_unavailable"  # no key row, or no private key for the epoch (--key-dir)
    NOT_ADDRESSED_HERE = "not_addressed_here"  # a record for another gemeente or another context
    UNDECODABLE = "undecodable"  # not a routed herstelbus record (headers, Avro, schema)


def weigercode(exc: Exception) -> Weigercode:
    """The refusal code of an exception raised while decoding or opening one record."""
    if isinstance(exc, SubjectErased):
        return Weigercode.SUBJECT_ERASED
    if isinstance(exc, (Tampered, MalformedSealedField)):
        return Weigercode.TAMPERED
    if isinstance(exc, (SignatureInvalid, SignatureMissing, MalformedAnnouncement)):
        return Weigercode.SIGNATURE_INVALID
    if isinstance(exc, UnknownKeyEpoch):
        return Weigercode.UNKNOWN_KEY_EPOCH
    if isinstance(exc, KeyUnavailable):
        return Weigercode.KEY_UNAVAILABLE
    if isinstance(exc, (ContextMismatch, InvalidIdentifier)):
        return Weigercode.NOT_ADDRESSED_HERE
    if isinstance(exc, (ContractError, PrivacyError)):
        return Weigercode.UNDECODABLE
    raise exc  # anything else is a bug, not a property of the record: never hide it as a refusal


@dataclass(frozen=True, slots=True)
class Positie:
    """Where a record sits on the gemeente topic (what the offset commit is about)."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Geopend:
    """An opened event. ``data`` is the event as UHT published it, in record form (dates as
    ``date``, timestamps as aware ``datetime``), ``gemeentecode`` included as routed; personal data
    lives here only: never log it."""

    event_id: str
    type: str  # overdracht | pauzeknop | erkenning
    gemeentecode: str  # the receiving gemeente
    subject: str  # pseudonym
    routing_reason: str  # routering.reden: WOONGEMEENTE, HERINDELING, ...
    sequence: int  # volgnummer
    data: dict[str, Any] = field(repr=False)
    routering: dict[str, Any] = field(repr=False)
    priority: str  # "urgent" or "normaal" (ce_prioriteit)
    replay: bool  # re-delivered by ops (ce_replay, issue 7)
    time: datetime | None
    positie: Positie

    @property
    def reeks(self) -> str:
        """The series its ``sequence`` counts in: the dossier (``reekssleutel`` of ``gemeentecode``
        and ``data["dossiernummer"]``). Personal data like the dossiernummer: never log it."""
        return reekssleutel(self.gemeentecode, self.data["dossiernummer"])

    def json_data(self) -> dict[str, Any]:
        """``data`` in the contract's JSON form (the field names and formats of the JSON Lines input)."""
        return to_json(self.type, self.data, with_type=False)

    def __repr__(self) -> str:
        return f"Geopend(event_id={self.event_id!r}, type={self.type!r}, subject={self.subject!r}, sequence={self.sequence})"


@dataclass(frozen=True, slots=True)
class Geweigerd:
    """A record that could not be opened. Holds no personal data (ids, pseudonym and codes only).
    ``event_id`` / ``subject`` are None when the record did not even say which event it is."""

    event_id: str | None
    code: Weigercode
    subject: str | None
    type: str | None
    sequence: int | None
    positie: Positie
    reden: str = ONLEESBAAR


Resultaat = Geopend | Geweigerd

# English names for SDK users who think in the words.
Opened, Refused, RefusalCode = Geopend, Geweigerd, Weigercode

__all__ = ["ONLEESBAAR", "Geopend", "Geweigerd", "Opened", "Positie", "Refused", "RefusalCode", "Resultaat",
           "Weigercode", "reekssleutel", "weigercode"]
