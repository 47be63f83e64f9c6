"""The event contracts: Avro schemas, wire format, CloudEvents envelope, validation.

Import as ``herstelbus.core.contracts``. Pure: reads schemas/avro/*.avsc (or
``$HERSTELBUS_SCHEMA_DIR/avro``) once, writes nothing, talks to no broker.

Record types are the .avsc file stems: overdracht, pauzeknop, erkenning, ontvangstbevestiging
(UHT/gemeente input), gerouteerde_overdracht, gerouteerde_pauzeknop, gerouteerde_erkenning (routed,
sealed), statusbericht (to UHT), deadletter, audit.

Records ("record form") are dicts as fastavro reads them: dates ``datetime.date``, timestamps
aware ``datetime`` (UTC), UUID fields ``uuid.UUID`` (``str`` accepted when writing), enums ``str``.

Public API
  encode(record_type, record) -> bytes            single-object encoding (C3 01 + CRC-64-AVRO LE + body)
  decode(data) -> (record_type, record)           writer schema by fingerprint, resolved to current
  decode_full(data) -> Decoded(type, record, writer)
  parse_json_event(obj_or_line, now=None) -> (record_type, record)   JSON Lines input
  json_to_record(record_type, obj) / to_json(record_type, record) / dumps(record_type, record)
  validate(record_type, record, now=None) -> list[ValidationError]   never raises for bad input
  check(record_type, record, now=None) -> None    raises InvalidEvent(errors)
  cloudevent_headers(record_type, *, id, source, time, subject=None, sequence=None) -> list[(str, bytes)]
  headers_for(record_type, record, *, source, subject=None) -> list[(str, bytes)]
  parse_cloudevent_headers(headers) -> CloudEvent
  source_urn(oin, systeem) -> str
  pii_paths(schema) / sealed_paths(schema) / routed_schema(source_schema) / bundle_schema(source_schema)
  get_catalogue() -> Catalogue (current(type), released(type), by_fingerprint(fp), types())

Errors: every raise is a ``ContractError`` subclass (ValidationError, InvalidEvent, WireError,
EnvelopeError, UnknownSchema) with a stable ``reason`` code and a field ``path``; never a value.
"""

from .catalogue import INPUT_TYPES, ROUTED_TYPES, Catalogue, SchemaEntry, get_catalogue, load_catalogue
from .envelope import (
    CE_TYPES,
    CONTENT_TYPE,
    CloudEvent,
    cloudevent_headers,
    headers_for,
    parse_cloudevent_headers,
    source_urn,
)
from .errors import ContractError, EnvelopeError, InvalidEvent, UnknownSchema, ValidationError, WireError
from .jsonlines import dumps, json_to_record, parse_json_event, to_json
from .pii import bundle_schema, pii_paths, routed_schema, sealed_paths
from .validation import MAX_EVENT_BYTES, check, validate
from .wire import Decoded, decode, decode_full, encode

__all__ = [
    "CE_TYPES", "CONTENT_TYPE", "INPUT_TYPES", "MAX_EVENT_BYTES", "ROUTED_TYPES",
    "Catalogue", "CloudEvent", "ContractError", "Decoded", "EnvelopeError", "InvalidEvent",
    "SchemaEntry", "UnknownSchema", "ValidationError", "WireError",
    "bundle_schema", "check", "cloudevent_headers", "decode", "decode_full", "dumps", "encode", "get_catalogue",
    "headers_for", "json_to_record", "load_catalogue", "parse_cloudevent_headers", "parse_json_event",
    "pii_paths", "routed_schema", "sealed_paths", "source_urn", "to_json", "validate",
]
