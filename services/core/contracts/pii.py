"""Which fields carry personal data, and the schemas derived from that: the sealed bundle and the
routed gemeente event.

Rule: a top-level field with ``"pii": true`` holds personal data. Tag whole sub-records (persoon,
adres, toeslagpartner) rather than their leaves. All tagged fields of an event travel as ONE sealed
unit: ``bundle_schema`` is the record of exactly those fields, and ``routed_schema`` drops them
from the routed event in favour of one ``verzegeld`` bytes field holding the sealed bundle. Both are
*derived* from the tags, so a new pii field is sealed (or the stale-schema test fails) without
anyone having to remember it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from .schemas import NAMED, expand, fullname, unwrap_nullable

PII = "pii"
SEALED = "verzegeld"  # the routed field holding the sealed bundle, and its marker attribute
ROUTED_PREFIX = "Gerouteerde"
BUNDLE_SUFFIX = "Persoonsgegevens"
# What routed_schema adds after the clear fields; a source field of the same name would clash.
ROUTING_FIELDS = (SEALED, "subject", "routering", "sleutel_id", "bron_schema")

# Why a gemeente got a routed record; statusbericht.avsc repeats these symbols in its doelen.
ROUTERING_REDENEN = ["WOONGEMEENTE", "HERINDELING", "TOESLAGPARTNER", "HANDMATIG", "EERDER_BETROKKEN"]


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
    """Dotted paths of the ``"pii": true`` fields, top-down, not descending into tagged fields.

    A path below the top level ("a.geheim") is reported so the guards see it, but the schemas
    derived here refuse it: the bundle holds whole top-level fields.
    """
    return _tagged_paths(schema, PII)


def sealed_paths(schema: dict[str, Any]) -> tuple[str, ...]:
    """Dotted paths of the sealed (``"verzegeld": true``) bytes fields: ("verzegeld",) for a routed
    schema, ("origineel",) for the dead-letter record."""
    return _tagged_paths(schema, SEALED)


def routed_name(source_name: str) -> str:
    """'Overdracht' -> 'GerouteerdeOverdracht' (namespace kept)."""
    ns, _, short = source_name.rpartition(".")
    name = ROUTED_PREFIX + short
    return f"{ns}.{name}" if ns else name


def bundle_name(source_name: str) -> str:
    """'Overdracht' -> 'OverdrachtPersoonsgegevens' (namespace kept)."""
    return source_name + BUNDLE_SUFFIX


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


def _standalone(record: dict[str, Any], ns: str) -> dict[str, Any]:
    """An expanded record as a self-contained schema: each named type defined once, inline, with a
    short name and an explicit namespace (the style of the checked-in .avsc files)."""
    collapsed = collapse(record)
    short = collapsed["name"].rpartition(".")[2]
    return {"type": "record", "name": short, "namespace": ns,
            **{k: v for k, v in collapsed.items() if k not in ("type", "name")}}


def bundle_schema(source_schema: dict[str, Any], fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The persoonsgegevens bundle of a source event schema: the one record the privacy core seals.

    Exactly the source's pii-tagged fields (or the top-level ``fields`` named), unchanged (types,
    defaults, attributes) and in source order; named types they use are defined inline, so the
    schema stands alone. Its Avro binary encoding is the plaintext of the routed ``verzegeld``
    field. ValueError (a schema-authoring error, no data involved) for a tag below the top level
    (tag the enclosing field), an unknown name, a source field named ``verzegeld``, or no field.
    """
    src = expand(source_schema)
    ns = src["name"].rpartition(".")[0]
    names = pii_paths(source_schema) if fields is None else tuple(fields)
    by_name = {f["name"]: f for f in src["fields"]}
    if SEALED in by_name:
        raise ValueError(f"a source schema may not have a field named {SEALED}")
    bad = [n for n in names if n not in by_name]
    if bad:
        raise ValueError("pii fields must be top-level fields of the source: " + ", ".join(bad))
    if not names:
        raise ValueError("no pii fields: nothing to seal")
    wanted = set(names)
    return _standalone({
        "type": "record",
        "name": bundle_name(src["name"]),
        "doc": "The persoonsgegevens of one " + src["name"].rpartition(".")[2] + " event, sealed as one "
               "unit for the target gemeente. Generated by herstelbus.core.contracts.pii.bundle_schema.",
        "fields": [f for f in src["fields"] if f["name"] in wanted],
    }, ns)


def routed_schema(source_schema: dict[str, Any]) -> dict[str, Any]:
    """The routed gemeente-event schema for a source event schema.

    The source's clear fields in source order (the pii fields removed); ``gemeentecode`` becomes
    the target gemeente (required); then ``verzegeld`` (bytes, marked ``"verzegeld": true``, with
    ``bundel`` = the bundle record's name and ``velden`` = the fields it holds): the sealed
    ``bundle_schema`` record; then routing metadata: ``subject`` (pseudonym), ``routering`` (reden,
    oorspronkelijke_gemeentecode, opvolger_gemeentecode, gerouteerd_op), ``sleutel_id`` and
    ``bron_schema`` (fingerprint of the source writer schema, hex).
    """
    src = expand(source_schema)
    ns = src["name"].rpartition(".")[0]
    bundle = bundle_schema(source_schema)
    sealed = [f["name"] for f in bundle["fields"]]
    clash = sorted({f["name"] for f in src["fields"]} & set(ROUTING_FIELDS))
    if clash:
        raise ValueError("source fields clash with routing metadata: " + ", ".join(clash))
    target = {
        "name": "gemeentecode",
        "type": "string",
        "format": "gemeentecode",
        "doc": "Target gemeente of this routed record (after herindeling); the original is in routering.",
    }
    fields = [target if f["name"] == "gemeentecode" else f for f in src["fields"] if f["name"] not in sealed]
    if target not in fields:
        fields.append(target)
    fields += [
        {"name": SEALED, "type": "bytes", SEALED: True, "bundel": fullname(bundle["name"], ns), "velden": sealed,
         "doc": "The persoonsgegevens (the fields in velden) sealed as one unit for the target gemeente by "
                "the privacy core (services/core/privacy/FORMAT.md). Opened: the Avro binary encoding of "
                "the bundel record, contracts.pii.bundle_schema of the source schema named by bron_schema."},
        {"name": "subject", "type": "string", "format": "pseudoniem", "maxLength": 128,
         "doc": "Pseudonym of the person (privacy core); the record key and ce_subject. Never a BSN."},
        {"name": "routering", "type": {
            "type": "record", "name": fullname("Routering", ns), "fields": [
                {"name": "reden", "type": {"type": "enum", "name": fullname("RouteringReden", ns),
                                           "symbols": list(ROUTERING_REDENEN)}},
                {"name": "oorspronkelijke_gemeentecode", "type": ["null", "string"], "default": None,
                 "format": "gemeentecode",
                 "doc": "gemeentecode as UHT sent it; for EERDER_BETROKKEN the gemeente that received "
                        "an earlier event of the same person or dossier."},
                {"name": "opvolger_gemeentecode", "type": ["null", "string"], "default": None,
                 "format": "gemeentecode",
                 "doc": "Successor when oorspronkelijke_gemeentecode was dissolved by a herindeling, else null."},
                {"name": "gerouteerd_op", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            ]}},
        {"name": "sleutel_id", "type": "string", "format": "naamcode", "maxLength": 128,
         "doc": "Id of the gemeente key the bundle was sealed for."},
        {"name": "bron_schema", "type": "string", "format": "fingerprint",
         "doc": "CRC-64-AVRO fingerprint (hex, wire byte order) of the source schema: it fixes the bundle "
                "schema and where each opened field goes back."},
    ]
    doc = source_schema.get("doc")
    return _standalone({
        "type": "record",
        "name": routed_name(src["name"]),
        "doc": "Routed to one gemeente, personal data sealed. Generated by "
               "herstelbus.core.contracts.pii.routed_schema; do not edit by hand."
               + (f" Source: {doc}" if doc else ""),
        "fields": fields,
    }, ns)


def render_schema(schema: dict[str, Any]) -> str:
    """Stable JSON text for a checked-in schema file (2-space indent, trailing newline)."""
    return json.dumps(copy.deepcopy(schema), indent=2, ensure_ascii=False) + "\n"
