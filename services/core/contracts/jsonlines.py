"""JSON Lines <-> records: the UHT input format, and JSON renderings of any record.

A JSON line is one object; its ``type`` (overdracht | pauzeknop | erkenning | ontvangstbevestiging)
selects the schema and is not a field of the record. Every other key must be a field of that
schema (unknown keys rejected, duplicate keys rejected), every field must be present (null where
the schema allows). Dates are "YYYY-MM-DD", timestamps RFC 3339 in UTC ("Z" or "+00:00", at most
millisecond precision is kept), UUIDs their 36-character form, bytes base64.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import date, datetime, timezone
from typing import Any

from . import errors as E
from .catalogue import INPUT_TYPES, Catalogue, get_catalogue
from .errors import InvalidEvent, ValidationError
from .schemas import logical_type
from .validation import MAX_EVENT_BYTES, from_json, safe_key

TYPE_KEY = "type"


class _Obj(dict):
    """A JSON object that remembers keys it saw twice (json keeps only the last silently)."""

    duplicates: tuple[str, ...] = ()


def _pairs(pairs: list[tuple[str, Any]]) -> _Obj:
    obj = _Obj()
    dups = []
    for k, v in pairs:
        if k in obj:
            dups.append(k)
        obj[k] = v
    if dups:
        obj.duplicates = tuple(dups)
    return obj


def _no_constant(_: str) -> Any:
    raise ValueError("NaN/Infinity are not JSON")


def loads(line: str | bytes) -> Any:
    """Strict JSON: one value, no NaN/Infinity, duplicate keys remembered. Raises InvalidEvent."""
    if isinstance(line, (bytes, bytearray, memoryview)):
        raw = bytes(line)
        size = len(raw)
    elif isinstance(line, str):
        raw = line
        size = len(line.encode("utf-8", "surrogatepass"))
    else:
        raise InvalidEvent([ValidationError(E.JSON_ONGELDIG, "")])
    if size > MAX_EVENT_BYTES:
        raise InvalidEvent([ValidationError(E.TE_GROOT, "")])
    failed = False
    try:
        return json.loads(raw, object_pairs_hook=_pairs, parse_constant=_no_constant)
    except (ValueError, RecursionError, UnicodeDecodeError, TypeError):
        failed = True  # json's messages quote the input: never chain them
    if failed:
        raise InvalidEvent([ValidationError(E.JSON_ONGELDIG, "")])
    raise AssertionError("unreachable")


def parse_json_event(obj_or_line: Any, *, now: datetime | None = None,
                     catalogue: Catalogue | None = None) -> tuple[str, dict[str, Any]]:
    """``(type, record)`` from a JSON line (str/bytes) or an already parsed object.

    Raises ``InvalidEvent`` (a ``ContractError``) with every rule broken; nothing else.
    """
    obj = obj_or_line if isinstance(obj_or_line, dict) else loads(obj_or_line)
    if not isinstance(obj, dict):
        raise InvalidEvent([ValidationError(E.TYPE_ONGELDIG, "")])
    if isinstance(obj_or_line, dict):
        failed = False
        try:  # a parsed object still has to fit in one event
            too_big = len(json.dumps(obj, separators=(",", ":"), default=str)) > MAX_EVENT_BYTES
        except (ValueError, TypeError, RecursionError):
            failed = True
        if failed:
            raise InvalidEvent([ValidationError(E.JSON_ONGELDIG, "")])
        if too_big:
            raise InvalidEvent([ValidationError(E.TE_GROOT, "")])
    record_type = obj.get(TYPE_KEY)
    if not isinstance(record_type, str) or record_type not in INPUT_TYPES:
        raise InvalidEvent([ValidationError(E.TYPE_ONBEKEND, TYPE_KEY)])
    body = _Obj((k, v) for k, v in obj.items() if k != TYPE_KEY)
    body.duplicates = tuple(getattr(obj, "duplicates", ()))
    record, errors = from_json(record_type, body, now=now, catalogue=catalogue)
    if errors:
        raise InvalidEvent(errors)
    return record_type, record


def json_to_record(record_type: str, obj: Any, *, now: datetime | None = None,
                   catalogue: Catalogue | None = None) -> dict[str, Any]:
    """Record form of a JSON-form object of any catalogue type (no ``type`` key). Raises InvalidEvent."""
    record, errors = from_json(record_type, obj, now=now, catalogue=catalogue)
    if errors:
        raise InvalidEvent(errors)
    return record


# --- record -> JSON -------------------------------------------------------------------------


def format_timestamp(dt: datetime) -> str:
    """RFC 3339 UTC with 'Z'; milliseconds only when not zero."""
    dt = dt.astimezone(timezone.utc)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    ms = dt.microsecond // 1000
    return f"{base}.{ms:03d}Z" if ms else f"{base}Z"


def _to_json(node: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(node, list):
        branch = next(b for b in node if b != "null")
        return _to_json(branch, value)
    if isinstance(node, dict):
        kind = node["type"]
        if isinstance(kind, (dict, list)):
            return _to_json(kind, value)
        if kind == "record":
            return {f["name"]: _to_json(f["type"], value.get(f["name"])) for f in node["fields"]}
        if kind == "array":
            return [_to_json(node["items"], v) for v in value]
        if kind == "map":
            return {k: _to_json(node["values"], v) for k, v in value.items()}
        lt = logical_type(node)
        if lt == "date" and isinstance(value, date):
            return value.isoformat()
        if lt in ("timestamp-millis", "timestamp-micros") and isinstance(value, datetime):
            return format_timestamp(value)
        if lt == "uuid":
            return str(uuid.UUID(str(value)))
        return _to_json(kind, value)
    if node == "bytes":
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def to_json(record_type: str, record: dict[str, Any], *, catalogue: Catalogue | None = None,
            with_type: bool | None = None) -> dict[str, Any]:
    """JSON form of a record (field order of the schema). Input types get ``type`` unless disabled."""
    entry = (catalogue or get_catalogue()).current(record_type)
    out = _to_json(entry.expanded, record)
    if with_type is None:
        with_type = record_type in INPUT_TYPES
    return {TYPE_KEY: record_type, **out} if with_type else out


def dumps(record_type: str, record: dict[str, Any], *, catalogue: Catalogue | None = None) -> str:
    """One JSON line (no newline) for a record, ``type`` first for input types."""
    return json.dumps(to_json(record_type, record, catalogue=catalogue), ensure_ascii=False,
                      separators=(",", ":"))


__all__ = ["dumps", "format_timestamp", "json_to_record", "loads", "parse_json_event", "safe_key",
           "to_json"]
