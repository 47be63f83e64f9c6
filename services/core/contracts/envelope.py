"""CloudEvents 1.0 envelope in Kafka binary content mode, following the NL GOV profile.

Binary mode: the Avro single-object bytes are the Kafka record value; every context attribute is
a header ``ce_<name>`` (UTF-8), and ``datacontenttype`` is the ``content-type`` header.
NL GOV profile choices:
  ce_source      ``urn:nld:oin:<20-digit OIN>:systeem:<system>``
  ce_type        reverse DNS, ``nl.toeslagen.herstel.<soort>.v<major>``
  ce_subject     a pseudonym only, never a BSN or other personal data (omitted when there is none)
  ce_sequence    from ``volgnummer``, zero-padded to 10 digits so string order is numeric order
  ce_dataschema  ``urn:nld:herstelbus:avro:<full Avro name>:<fingerprint hex>``
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

from herstelbus.core.bsn import is_valid_bsn

from . import errors as E
from .catalogue import Catalogue, SchemaEntry, get_catalogue
from .errors import EnvelopeError
from .jsonlines import format_timestamp
from .validation import FORMATS, TIME_RE

SPECVERSION = "1.0"
# Single-object encoded Avro: the first bytes name the writer schema (see wire.py).
CONTENT_TYPE = "application/avro"
HEADER_PREFIX = "ce_"
CONTENT_TYPE_HEADER = "content-type"
DATASCHEMA_PREFIX = "urn:nld:herstelbus:avro:"
SEQUENCE_DIGITS = 10  # volgnummer is an Avro int: at most 10 digits

CE_TYPES: dict[str, str] = {
    "overdracht": "nl.toeslagen.herstel.overdracht.v1",
    "pauzeknop": "nl.toeslagen.herstel.pauzeknop.v1",
    "erkenning": "nl.toeslagen.herstel.erkenning.v1",
    "ontvangstbevestiging": "nl.toeslagen.herstel.ontvangstbevestiging.v1",
    "gerouteerde_overdracht": "nl.toeslagen.herstel.gerouteerd.overdracht.v1",
    "gerouteerde_pauzeknop": "nl.toeslagen.herstel.gerouteerd.pauzeknop.v1",
    "gerouteerde_erkenning": "nl.toeslagen.herstel.gerouteerd.erkenning.v1",
    "statusbericht": "nl.toeslagen.herstel.status.v1",
    "deadletter": "nl.toeslagen.herstel.deadletter.v1",
    "audit": "nl.toeslagen.herstel.audit.v1",
}
RECORD_TYPES: dict[str, str] = {v: k for k, v in CE_TYPES.items()}
# Which record field is the CloudEvent id / time for each record type.
ID_FIELD = {"ontvangstbevestiging": "ack_id", "statusbericht": "status_id",
            "deadletter": "deadletter_id", "audit": "audit_id"}
TIME_FIELD = {"ontvangstbevestiging": "at", "statusbericht": "at", "deadletter": "at", "audit": "at"}

_OIN = re.compile(r"[0-9]{20}")
_SYSTEEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SOURCE = re.compile(r"urn:nld:oin:([0-9]{20}):systeem:([A-Za-z0-9][A-Za-z0-9._-]{0,63})")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_SEQUENCE = re.compile(r"[0-9]{1,20}")
_DATASCHEMA = re.compile(re.escape(DATASCHEMA_PREFIX) + r"[A-Za-z_][A-Za-z0-9_.]{0,200}:[0-9a-f]{16}")


@dataclass(frozen=True)
class CloudEvent:
    id: str
    source: str
    type: str
    time: datetime
    dataschema: str
    datacontenttype: str = CONTENT_TYPE
    subject: str | None = None
    sequence: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)

    @property
    def record_type(self) -> str | None:
        return RECORD_TYPES.get(self.type)

    @property
    def fingerprint(self) -> bytes:
        return bytes.fromhex(self.dataschema.rpartition(":")[2])


def source_urn(oin: str, systeem: str) -> str:
    """``urn:nld:oin:<OIN>:systeem:<systeem>`` (OIN: 20 digits)."""
    if not isinstance(oin, str) or not _OIN.fullmatch(oin):
        raise EnvelopeError(E.SOURCE_ONGELDIG, "ce_source", "OIN must be 20 digits")
    if not isinstance(systeem, str) or not _SYSTEEM.fullmatch(systeem):
        raise EnvelopeError(E.SOURCE_ONGELDIG, "ce_source", "bad system name")
    return f"urn:nld:oin:{oin}:systeem:{systeem}"


def dataschema_uri(entry: SchemaEntry) -> str:
    return f"{DATASCHEMA_PREFIX}{entry.name}:{entry.fingerprint.hex()}"


def ce_type(record_type: str) -> str:
    try:
        return CE_TYPES[record_type]
    except (KeyError, TypeError):
        raise EnvelopeError(E.HEADER_ONGELDIG, "ce_type", "no CloudEvents type for this record type") from None


def format_sequence(volgnummer: int) -> str:
    if not isinstance(volgnummer, int) or isinstance(volgnummer, bool) or not 0 <= volgnummer < 10**SEQUENCE_DIGITS:
        raise EnvelopeError(E.HEADER_ONGELDIG, "ce_sequence", "volgnummer out of range")
    return str(volgnummer).zfill(SEQUENCE_DIGITS)


def _check_subject(subject: str) -> None:
    # Pseudonyms are the privacy core's; here we refuse what is plainly not one.
    if not isinstance(subject, str) or not FORMATS["pseudoniem"](subject) or is_valid_bsn(subject):
        raise EnvelopeError(E.SUBJECT_ONGELDIG, "ce_subject", "subject must be a pseudonym")


def cloudevent_headers(record_type: str, *, id: str, source: str, time: datetime,
                       subject: str | None = None, sequence: int | None = None,
                       catalogue: Catalogue | None = None) -> list[tuple[str, bytes]]:
    """Kafka headers for one record of ``record_type`` (written with its current schema)."""
    entry = (catalogue or get_catalogue()).current(record_type)
    if not isinstance(id, str) or not _ID.fullmatch(id):
        raise EnvelopeError(E.HEADER_ONGELDIG, "ce_id", "id must be a short token (a UUID)")
    if not isinstance(source, str) or not _SOURCE.fullmatch(source):
        raise EnvelopeError(E.SOURCE_ONGELDIG, "ce_source", "not urn:nld:oin:<OIN>:systeem:<name>")
    if not isinstance(time, datetime) or time.utcoffset() is None:
        raise EnvelopeError(E.HEADER_ONGELDIG, "ce_time", "time must be timezone-aware")
    headers = [
        ("ce_specversion", SPECVERSION),
        ("ce_id", id),
        ("ce_source", source),
        ("ce_type", ce_type(record_type)),
        ("ce_time", format_timestamp(time)),
    ]
    if subject is not None:
        _check_subject(subject)
        headers.append(("ce_subject", subject))
    if sequence is not None:
        headers.append(("ce_sequence", format_sequence(sequence)))
    headers.append(("ce_dataschema", dataschema_uri(entry)))
    headers.append((CONTENT_TYPE_HEADER, CONTENT_TYPE))
    return [(k, v.encode("utf-8")) for k, v in headers]


def headers_for(record_type: str, record: dict[str, Any], *, source: str, subject: str | None = None,
                catalogue: Catalogue | None = None) -> list[tuple[str, bytes]]:
    """Headers derived from a record: id from event_id/ack_id/..., time from occurred_at/at,
    sequence from volgnummer, subject from the record's ``subject`` (routed events) unless given."""
    id_value = record.get(ID_FIELD.get(record_type, "event_id"))
    time_value = record.get(TIME_FIELD.get(record_type, "occurred_at"))
    if subject is None and isinstance(record.get("subject"), str):
        subject = record["subject"]
    return cloudevent_headers(
        record_type,
        id=str(id_value) if id_value is not None else "",
        source=source,
        time=time_value,
        subject=subject,
        sequence=record.get("volgnummer"),
        catalogue=catalogue,
    )


def parse_cloudevent_headers(headers: Iterable[tuple[str, Any]]) -> CloudEvent:
    """Read the envelope back from Kafka headers; ``EnvelopeError`` when it breaks the profile."""
    seen: dict[str, str] = {}
    failed_header = None
    for key, value in headers:
        if not isinstance(key, str):
            continue
        k = key.lower()
        if not (k.startswith(HEADER_PREFIX) or k == CONTENT_TYPE_HEADER):
            continue  # other headers (signatures, tracing) are not ours to judge
        if k in seen:
            raise EnvelopeError(E.HEADER_DUBBEL, k)
        try:
            seen[k] = value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else value
        except UnicodeDecodeError:
            failed_header = k
            break
        if not isinstance(seen[k], str):
            raise EnvelopeError(E.HEADER_ONGELDIG, k)
    if failed_header is not None:
        raise EnvelopeError(E.HEADER_ONGELDIG, failed_header)
    for required in ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_dataschema",
                     CONTENT_TYPE_HEADER):
        if required not in seen:
            raise EnvelopeError(E.HEADER_ONTBREEKT, required)
    if seen["ce_specversion"] != SPECVERSION:
        raise EnvelopeError(E.SPECVERSION_ONGELDIG, "ce_specversion")
    if not _ID.fullmatch(seen["ce_id"]):
        raise EnvelopeError(E.HEADER_ONGELDIG, "ce_id")
    if not _SOURCE.fullmatch(seen["ce_source"]):
        raise EnvelopeError(E.SOURCE_ONGELDIG, "ce_source")
    if seen["ce_type"] not in RECORD_TYPES:
        raise EnvelopeError(E.HEADER_ONGELDIG, "ce_type")
    m = TIME_RE.fullmatch(seen["ce_time"])
    when = None
    if m is not None:
        try:
            when = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]),
                            int((m[7] or "0").ljust(6, "0")[:6]), tzinfo=timezone.utc)
        except ValueError:
            when = None
    if when is None:
        raise EnvelopeError(E.HEADER_ONGELDIG, "ce_time")
    if not _DATASCHEMA.fullmatch(seen["ce_dataschema"]):
        raise EnvelopeError(E.HEADER_ONGELDIG, "ce_dataschema")
    if seen[CONTENT_TYPE_HEADER] != CONTENT_TYPE:
        raise EnvelopeError(E.HEADER_ONGELDIG, CONTENT_TYPE_HEADER)
    subject = seen.get("ce_subject")
    if subject is not None:
        _check_subject(subject)
    sequence = seen.get("ce_sequence")
    if sequence is not None and not _SEQUENCE.fullmatch(sequence):
        raise EnvelopeError(E.HEADER_ONGELDIG, "ce_sequence")
    standard = {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject",
                "ce_sequence", "ce_dataschema", CONTENT_TYPE_HEADER}
    return CloudEvent(
        id=seen["ce_id"], source=seen["ce_source"], type=seen["ce_type"], time=when,
        dataschema=seen["ce_dataschema"], datacontenttype=seen[CONTENT_TYPE_HEADER],
        subject=subject, sequence=sequence,
        extensions={k[len(HEADER_PREFIX):]: v for k, v in seen.items() if k not in standard},
    )
