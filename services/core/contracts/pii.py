"""Which fields carry personal data, and the routed (sealed) schema derived from that.

Rule: a field with ``"pii": true`` holds personal data. Tag whole sub-records (persoon, adres,
toeslagpartner) rather than their leaves, so one sealed unit covers them. The sealing code reads
``pii_paths``; the routed schema is *derived* from the tags, so a new pii field is sealed (or the
schema test fails) without anyone having to remember it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from .schemas import NAMED, expand, fullname, unwrap_nullable

PII = "pii"
SEALED = "verzegeld"
ROUTED_PREFIX = "Gerouteerde"

ROUTERING_REDENEN = ["WOONGEMEENTE", "HERINDELING", "TOESLAGPARTNER", "HANDMATIG"]


def _record_of(node: Any) -> dict[str, Any] | None:
    """The record schema inside a field type (through a nullable union or a wrapper)."""
    inner, _ = unwrap_nullable(node)
    while isinstance(inner, dict) and isinstance(inner.get("type"), (dict, list)):
        inner, _ = unwrap_nullable(inner["type"])
    if isinstance(inner, dict) and inner.get("type") == "record":
        return inner
    return None


def _tagged_paths(schema: dict[str, Any], attr: str) -> tuple[str, ...]:
    out: list[str] = []

    def walk(record: dict[str, Any], prefix: str, seen: frozenset[str]) -> None:
        if record["name"] in seen:  # recursive types: nothing new below
            return
        seen = seen | {record["name"]}
        for field in record["fields"]:
            path = f"{prefix}{field['name']}"
            if field.get(attr) is True:
                out.append(path)  # a tagged record is one unit: do not descend
                continue
            sub = _record_of(field["type"])
            if sub is not None:
                walk(sub, path + ".", seen)

    root = expand(schema)
    walk(root, "", frozenset())
    return tuple(out)


def pii_paths(schema: dict[str, Any]) -> tuple[str, ...]:
    """Dotted paths of the ``"pii": true`` fields, top-down, not descending into tagged fields."""
    return _tagged_paths(schema, PII)


def sealed_paths(schema: dict[str, Any]) -> tuple[str, ...]:
    """Dotted paths of the sealed (``"verzegeld": true``) bytes fields of a routed schema."""
    return _tagged_paths(schema, SEALED)


def routed_name(source_name: str) -> str:
    """'Overdracht' -> 'GerouteerdeOverdracht' (namespace kept)."""
    ns, _, short = source_name.rpartition(".")
    name = ROUTED_PREFIX + short
    return f"{ns}.{name}" if ns else name


def _seal_field(field: dict[str, Any]) -> dict[str, Any]:
    _, nullable = unwrap_nullable(field["type"])
    sealed: dict[str, Any] = {"name": field["name"]}
    if nullable:
        sealed.update({"type": ["null", "bytes"], "default": None})
    else:
        sealed["type"] = "bytes"
    sealed[SEALED] = True
    sealed["doc"] = "Sealed for the target gemeente by the privacy core; opaque bytes here."
    return sealed


def _rewrite(record: dict[str, Any]) -> dict[str, Any]:
    """Copy of an expanded record with each pii field sealed, descending into untagged records."""
    fields = []
    for field in record["fields"]:
        if field.get(PII) is True:
            fields.append(_seal_field(field))
            continue
        sub = _record_of(field["type"])
        if sub is not None and pii_paths(sub):
            field = {**field, "type": _replace_record(field["type"], sub, _rewrite(sub))}
        fields.append(field)
    return {**record, "fields": fields}


def _replace_record(node: Any, old: dict[str, Any], new: dict[str, Any]) -> Any:
    if node is old:
        return new
    if isinstance(node, list):
        return [_replace_record(b, old, new) for b in node]
    if isinstance(node, dict) and isinstance(node.get("type"), (dict, list)):
        return {**node, "type": _replace_record(node["type"], old, new)}
    return node


def collapse(schema: Any) -> Any:
    """Inverse of ``expand``: second and later uses of a named type become a name reference."""
    defined: set[str] = set()
    root_ns = schema.get("name", "").rpartition(".")[0] if isinstance(schema, dict) else ""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(b) for b in node]
        if not isinstance(node, dict):
            return node
        kind = node.get("type")
        if kind in NAMED:
            name = node["name"]
            if name in defined:
                ns, _, short = name.rpartition(".")
                return short if ns == root_ns else name
            defined.add(name)
            node = dict(node)
            ns, _, short = name.rpartition(".")
            if ns == root_ns and name != schema.get("name"):
                node["name"] = short
            if kind == "record":
                node["fields"] = [{**f, "type": walk(f["type"])} for f in node["fields"]]
            return node
        node = dict(node)
        if kind == "array":
            node["items"] = walk(node["items"])
        elif kind == "map":
            node["values"] = walk(node["values"])
        elif isinstance(kind, (dict, list)):
            node["type"] = walk(kind)
        return node

    return walk(schema)


def routed_schema(source_schema: dict[str, Any]) -> dict[str, Any]:
    """The routed gemeente-event schema for a source event schema.

    Same fields in the same order, each pii field's type replaced by ``bytes`` (``["null","bytes"]``
    when it was nullable) and marked ``"verzegeld": true``; ``gemeentecode`` becomes the target
    gemeente (required); then routing metadata: ``subject`` (pseudonym), ``routering`` (reden,
    oorspronkelijke_gemeentecode, opvolger_gemeentecode, gerouteerd_op), ``sleutel_id`` and
    ``bron_schema`` (fingerprint of the source writer schema, hex).
    """
    src = expand(source_schema)
    ns = src["name"].rpartition(".")[0]
    out = _rewrite(src)
    fields = [f for f in out["fields"] if f["name"] != "gemeentecode"]
    target = {
        "name": "gemeentecode",
        "type": "string",
        "format": "gemeentecode",
        "doc": "Target gemeente of this routed record (after herindeling); the original is in routering.",
    }
    position = next(
        (i for i, f in enumerate(out["fields"]) if f["name"] == "gemeentecode"), len(fields)
    )
    fields.insert(position, target)
    fields += [
        {"name": "subject", "type": "string", "format": "pseudoniem", "maxLength": 128,
         "doc": "Pseudonym of the person (privacy core); the record key and ce_subject. Never a BSN."},
        {"name": "routering", "type": {
            "type": "record", "name": fullname("Routering", ns), "fields": [
                {"name": "reden", "type": {"type": "enum", "name": fullname("RouteringReden", ns),
                                           "symbols": list(ROUTERING_REDENEN)}},
                {"name": "oorspronkelijke_gemeentecode", "type": ["null", "string"], "default": None,
                 "format": "gemeentecode", "doc": "gemeentecode as UHT sent it."},
                {"name": "opvolger_gemeentecode", "type": ["null", "string"], "default": None,
                 "format": "gemeentecode", "doc": "Successor after a herindeling, else null."},
                {"name": "gerouteerd_op", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            ]}},
        {"name": "sleutel_id", "type": "string", "format": "naamcode", "maxLength": 128,
         "doc": "Id of the gemeente key the sealed fields were sealed for."},
        {"name": "bron_schema", "type": "string", "format": "fingerprint",
         "doc": "CRC-64-AVRO fingerprint (hex, wire byte order) of the source schema the sealed units follow."},
    ]
    doc = source_schema.get("doc")
    out = {
        "type": "record",
        "name": routed_name(src["name"]),
        "doc": "Routed to one gemeente, personal data sealed. Generated by "
               "herstelbus.core.contracts.pii.routed_schema; do not edit by hand."
               + (f" Source: {doc}" if doc else ""),
        "fields": fields,
    }
    collapsed = collapse(out)
    short = collapsed["name"].rpartition(".")[2]
    return {"type": "record", "name": short, "namespace": ns,
            **{k: v for k, v in collapsed.items() if k not in ("type", "name")}}


def render_schema(schema: dict[str, Any]) -> str:
    """Stable JSON text for a checked-in schema file (2-space indent, trailing newline)."""
    return json.dumps(copy.deepcopy(schema), indent=2, ensure_ascii=False) + "\n"
