"""Loading the .avsc contracts and computing their identity (canonical form, CRC-64-AVRO).

Every .avsc file in schemas/avro/ is self-contained (nested named types are defined inline), so
each file parses on its own and its fingerprint depends on nothing else.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path
from typing import Any

from fastavro.schema import fingerprint as _fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form

import herstelbus

NAMESPACE = "nl.toeslagen.herstel.v1"
SCHEMA_DIR_ENV = "HERSTELBUS_SCHEMA_DIR"

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "enum", "fixed"})


@functools.cache
def _repo_schema_dir() -> Path:
    # Resolving the package path costs a few syscalls; it never changes within a process.
    return Path(herstelbus.__file__).resolve().parent.parent / "schemas"


def schema_dir() -> Path:
    """The repo's schemas/ directory, or ``$HERSTELBUS_SCHEMA_DIR`` when set."""
    override = os.environ.get(SCHEMA_DIR_ENV)
    if override:
        return Path(override)
    return _repo_schema_dir()


def avro_dir() -> Path:
    return schema_dir() / "avro"


def load_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def fullname(name: str, namespace: str | None) -> str:
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def expand(schema: Any) -> Any:
    """A deep copy with every reference to a named type replaced by its definition.

    Lets the validator, the pii walker and the sample generator treat the schema as a plain tree.
    Named types keep their full name so fastavro still sees one definition per name when fed
    the original (unexpanded) schema.
    """
    names: dict[str, Any] = {}

    def walk(node: Any, ns: str | None) -> Any:
        if isinstance(node, str):
            if node in PRIMITIVES:
                return node
            full = fullname(node, ns)
            if full in names:
                return names[full]
            if node in names:
                return names[node]
            raise KeyError(f"unknown named type {node}")
        if isinstance(node, list):
            return [walk(b, ns) for b in node]
        node = dict(node)
        kind = node.get("type")
        if kind in NAMED:
            ns = node.get("namespace", ns)
            node["name"] = fullname(node["name"], ns)
            node.pop("namespace", None)
            names[node["name"]] = node
            if kind == "record":
                node["fields"] = [
                    {**f, "type": walk(f["type"], ns)} for f in node["fields"]
                ]
            return node
        if kind == "array":
            node["items"] = walk(node["items"], ns)
        elif kind == "map":
            node["values"] = walk(node["values"], ns)
        elif isinstance(kind, (dict, list)):
            node["type"] = walk(kind, ns)
        return node

    return walk(copy.deepcopy(schema), None)


def canonical_form(schema: dict[str, Any]) -> str:
    """Avro Parsing Canonical Form: drops doc, defaults and our own attributes (pii, format...)."""
    return to_parsing_canonical_form(schema)


def fingerprint(schema: dict[str, Any]) -> bytes:
    """The 8-byte CRC-64-AVRO fingerprint in the little-endian order single-object encoding uses."""
    # fastavro renders the fingerprint bytes little-endian first, exactly as they go on the wire.
    return bytes.fromhex(_fastavro_fingerprint(canonical_form(schema), "CRC-64-AVRO"))


def fingerprint_hex(schema: dict[str, Any]) -> str:
    return fingerprint(schema).hex()


def unwrap_nullable(node: Any) -> tuple[Any, bool]:
    """(inner type, nullable) for ``["null", T]``; (node, False) otherwise."""
    if isinstance(node, list):
        rest = [b for b in node if b != "null"]
        if len(rest) == 1 and len(node) == 2:
            return rest[0], True
    return node, False


def type_name(node: Any) -> str:
    """'string', 'record', 'enum', ... for a (possibly wrapped) type node."""
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return "union"
    kind = node["type"]
    return kind if isinstance(kind, str) else type_name(kind)


def logical_type(node: Any) -> str | None:
    return node.get("logicalType") if isinstance(node, dict) else None
