"""Avro single-object encoding: ``C3 01`` + 8-byte CRC-64-AVRO fingerprint (little-endian) + body.

The fingerprint lets any consumer find the writer schema in the catalogue without a registry
service; the body is plain Avro binary of that schema.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from .catalogue import Catalogue, SchemaEntry, get_catalogue
from .errors import (
    BERICHT_AFGEKAPT,
    BERICHT_ONLEESBAAR,
    CODERING_MISLUKT,
    FINGERPRINT_ONBEKEND,
    MARKER_ONGELDIG,
    InvalidEvent,
    WireError,
)
from .validation import structural_errors

MARKER = b"\xc3\x01"
HEADER_LEN = len(MARKER) + 8


@dataclass(frozen=True)
class Decoded:
    type: str  # record type, e.g. "overdracht"
    record: dict[str, Any]  # resolved onto the current schema of that type
    writer: SchemaEntry  # the schema the bytes were written with (version, fingerprint)


def encode(record_type: str, record: dict[str, Any], *, catalogue: Catalogue | None = None,
           checked: bool = True) -> bytes:
    """Single-object encode ``record`` with the current schema of ``record_type``.

    Raises ``InvalidEvent`` when the record does not have the schema's shape (unknown or missing
    field, wrong type, bad enum symbol), ``UnknownSchema`` for an unknown type. Domain rules
    (11-proef, postcode, ...) are ``validate``'s job, not this function's.

    ``checked=False`` is for records the exchange builds itself on its hot path (routed events,
    receipts): the structural walk is skipped and fastavro's strict writer is the check; a record
    it refuses still gets the walk, so the error is as typed as with ``checked=True``.
    """
    entry = (catalogue or get_catalogue()).current(record_type)
    return encode_with(entry, record, checked=checked)


def encode_with(entry: SchemaEntry, record: dict[str, Any], *, checked: bool = True) -> bytes:
    """Encode with a given catalogue entry (e.g. a released version, for compatibility tests)."""
    errors = structural_errors(entry, record) if checked else None
    if errors:
        raise InvalidEvent(errors)
    buf = io.BytesIO()
    buf.write(MARKER)
    buf.write(entry.fingerprint)
    failed = False
    try:
        schemaless_writer(buf, entry.parsed, record, strict=True)
    except Exception:  # noqa: BLE001 - fastavro's messages may quote values: never pass them on
        failed = True
    if failed:
        if not checked and (errors := structural_errors(entry, record)):
            raise InvalidEvent(errors)
        raise WireError(CODERING_MISLUKT, "", "record could not be written")
    return buf.getvalue()


def fingerprint_of(data: bytes) -> bytes:
    """The writer fingerprint in a single-object encoded message (``WireError`` if malformed)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError(BERICHT_ONLEESBAAR, "", "not bytes")
    data = bytes(data[:HEADER_LEN])
    if len(data) < len(MARKER) or data[:2] != MARKER:
        raise WireError(MARKER_ONGELDIG, "", "no single-object marker C3 01")
    if len(data) < HEADER_LEN:
        raise WireError(BERICHT_AFGEKAPT, "", "message ends inside the fingerprint")
    return data[2:HEADER_LEN]


def decode_full(data: bytes, *, catalogue: Catalogue | None = None) -> Decoded:
    """Decode a single-object encoded message; see ``decode``."""
    cat = catalogue or get_catalogue()
    fp = fingerprint_of(data)
    writer = cat.by_fingerprint(fp)
    if writer is None:
        raise WireError(FINGERPRINT_ONBEKEND, "", "writer schema not in the catalogue")
    reader = cat.current(writer.type)
    body = io.BytesIO(bytes(data)[HEADER_LEN:])
    reason = None
    try:
        if reader.fingerprint == writer.fingerprint:
            record = schemaless_reader(body, writer.parsed, None)
        else:
            record = schemaless_reader(body, writer.parsed, reader.parsed)
    except (EOFError, StopIteration):
        reason = BERICHT_AFGEKAPT
    except Exception:  # noqa: BLE001 - any decoder failure is "unreadable", and quotes no value
        reason = BERICHT_ONLEESBAAR
    if reason is not None:  # raised outside the except block: no chained fastavro error
        raise WireError(reason, "", "body does not match the writer schema")
    if body.read(1):
        raise WireError(BERICHT_ONLEESBAAR, "", "bytes left after the record")
    if not isinstance(record, dict):
        raise WireError(BERICHT_ONLEESBAAR, "", "not a record")
    return Decoded(type=writer.type, record=record, writer=writer)


def decode(data: bytes, *, catalogue: Catalogue | None = None) -> tuple[str, dict[str, Any]]:
    """``(record_type, record)`` from single-object encoded bytes.

    The writer schema comes from the catalogue by fingerprint; the record is resolved onto the
    current schema of the same type. Raises ``WireError`` (MARKER_ONGELDIG, FINGERPRINT_ONBEKEND,
    BERICHT_AFGEKAPT, BERICHT_ONLEESBAAR) and nothing else.
    """
    d = decode_full(data, catalogue=catalogue)
    return d.type, d.record
