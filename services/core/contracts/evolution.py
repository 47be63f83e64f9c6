"""Schema evolution checks by fastavro schema resolution on data that covers the schema.

Resolution failures depend on the data (an enum symbol the reader lacks only fails when it is
written), so ``samples`` builds records that together use every enum symbol, both sides of every
nullable union and non-empty arrays and maps. ``compatibility_problems`` writes them with one
schema, reads them with the other, and also compares the values of shared fields so a silent
reinterpretation is caught too; logical types are compared field by field, because fastavro
converts with the writer's logical type and so would hide a date that a reader takes for an int.
"""

from __future__ import annotations

import io
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from .schemas import expand, logical_type

_T0 = datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc)


def _max_choices(node: Any) -> int:
    if isinstance(node, list):
        return max([2] + [_max_choices(b) for b in node])
    if isinstance(node, dict):
        kind = node["type"]
        if isinstance(kind, (dict, list)):
            return _max_choices(kind)
        if kind == "enum":
            return len(node["symbols"])
        if kind == "record":
            return max([1] + [_max_choices(f["type"]) for f in node["fields"]])
        if kind == "array":
            return _max_choices(node["items"])
        if kind == "map":
            return _max_choices(node["values"])
    return 1


def _sample(node: Any, i: int) -> Any:
    """Sample ``i``: 0 takes every null branch and the first symbols; i >= 1 takes every
    non-null branch and symbol i-1 (mod the number of symbols)."""
    if isinstance(node, list):
        if i == 0 and "null" in node:
            return None
        return _sample(next(b for b in node if b != "null"), i)
    if isinstance(node, str):
        return {
            "null": None, "boolean": bool(i % 2), "int": i, "long": 10**10 + i, "float": i / 2,
            "double": i / 4, "bytes": bytes([i % 256]) * (i % 5 + 1), "string": f"s{i}",
        }[node]
    kind = node["type"]
    if isinstance(kind, (dict, list)):
        return _sample(kind, i)
    if kind == "record":
        return {f["name"]: _sample(f["type"], i) for f in node["fields"]}
    if kind == "enum":
        return node["symbols"][max(i - 1, 0) % len(node["symbols"])]
    if kind == "array":
        return [_sample(node["items"], i) for _ in range(min(i, 2))]
    if kind == "map":
        return {f"k{j}": _sample(node["values"], i) for j in range(min(i, 2))}
    if kind == "fixed":
        return bytes([i % 256]) * node["size"]
    lt = logical_type(node)
    if lt == "date":
        return date(2024, 1, 1) + timedelta(days=i)
    if lt == "timestamp-millis":
        return _T0 + timedelta(milliseconds=i)
    if lt == "timestamp-micros":
        return _T0 + timedelta(microseconds=i)
    if lt == "uuid":
        return str(uuid.UUID(int=i + 1))
    return _sample(kind, i)


def samples(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Records that together exercise every enum symbol and every nullable branch of ``schema``."""
    tree = expand(schema)
    return [_sample(tree, i) for i in range(_max_choices(tree) + 1)]


def _same_on_shared(written: Any, read: Any) -> bool:
    if isinstance(written, dict) and isinstance(read, dict):
        return all(_same_on_shared(written[k], read[k]) for k in written.keys() & read.keys())
    if isinstance(written, list) and isinstance(read, list):
        return len(written) == len(read) and all(map(_same_on_shared, written, read))
    if isinstance(read, uuid.UUID):
        return str(read) == str(written)
    return written == read


def _logical_mismatches(writer: Any, reader: Any, path: str) -> list[str]:
    """Shared fields whose logicalType differs. fastavro converts with the *writer's* logical
    type, so values round-trip in the test while a real reader would misread them."""
    w, r = writer, reader
    if isinstance(w, list) and isinstance(r, list):
        wb = [b for b in w if b != "null"]
        rb = [b for b in r if b != "null"]
        return _logical_mismatches(wb[0], rb[0], path) if len(wb) == len(rb) == 1 else []
    if isinstance(w, list) or isinstance(r, list):
        w = next((b for b in w if b != "null"), w) if isinstance(w, list) else w
        r = next((b for b in r if b != "null"), r) if isinstance(r, list) else r
    if isinstance(w, dict) and isinstance(w.get("type"), (dict, list)):
        return _logical_mismatches(w["type"], r, path)
    if isinstance(r, dict) and isinstance(r.get("type"), (dict, list)):
        return _logical_mismatches(w, r["type"], path)
    if logical_type(w) != logical_type(r):
        return [f"{path or 'record'}: logicalType {logical_type(w)} vs {logical_type(r)}"]
    if isinstance(w, dict) and isinstance(r, dict):
        if w.get("type") == r.get("type") == "record":
            rf = {f["name"]: f for f in r["fields"]}
            out = []
            for f in w["fields"]:
                if f["name"] in rf:
                    sub = f"{path}.{f['name']}" if path else f["name"]
                    out += _logical_mismatches(f["type"], rf[f["name"]]["type"], sub)
            return out
        if w.get("type") == r.get("type") == "array":
            return _logical_mismatches(w["items"], r["items"], path)
        if w.get("type") == r.get("type") == "map":
            return _logical_mismatches(w["values"], r["values"], path)
    return []


def compatibility_problems(writer: dict[str, Any], reader: dict[str, Any]) -> list[str]:
    """Why data written with ``writer`` cannot be read with ``reader`` (empty: it can).

    Messages name the sample and the failure kind only; samples are synthetic, never real data.
    """
    w, r = parse_schema(writer, _write_hint=False), parse_schema(reader, _write_hint=False)
    problems = _logical_mismatches(expand(writer), expand(reader), "")
    for n, record in enumerate(samples(writer)):
        buf = io.BytesIO()
        schemaless_writer(buf, w, record, strict=True)
        buf.seek(0)
        try:
            read = schemaless_reader(buf, w, r)
        except Exception as exc:  # noqa: BLE001 - the kind of failure is the answer here
            problems.append(f"sample {n}: {type(exc).__name__}: {exc}")
            continue
        if not _same_on_shared(record, read):
            problems.append(f"sample {n}: a shared field reads back as a different value")
    return problems


def check_evolution(current: dict[str, Any], released: list[tuple[int, dict[str, Any]]]) -> list[str]:
    """Both directions against every released ``(version, schema)``: current reads old data, and
    old readers read current data."""
    problems = []
    for v, old in released:
        problems += [f"current reads v{v}: {p}" for p in compatibility_problems(old, current)]
        problems += [f"v{v} reads current: {p}" for p in compatibility_problems(current, old)]
    return problems
