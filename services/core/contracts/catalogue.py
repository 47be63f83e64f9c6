"""The schema catalogue: every current and released schema, by record type and by fingerprint.

Layout (under ``schemas/avro/``):
  ``<type>.avsc``                 the current schema of a record type (e.g. overdracht.avsc)
  ``released/<type>/<n>.avsc``    released version n (1, 2, ...), never edited after release

A consumer that meets a fingerprint looks up the writer schema here; the record is then resolved
onto the current schema of that type, so readers always see the current shape.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastavro import parse_schema

from .errors import SCHEMA_ONBEKEND, UnknownSchema
from .schemas import SCHEMA_DIR_ENV, avro_dir, expand, fingerprint, load_json

# JSON Lines / UHT input types; ``type`` in a JSON line must be one of these.
INPUT_TYPES = ("overdracht", "pauzeknop", "erkenning", "ontvangstbevestiging")
# UHT events the router routes, and the record type of their routed form.
ROUTED_TYPES = {
    "overdracht": "gerouteerde_overdracht",
    "pauzeknop": "gerouteerde_pauzeknop",
    "erkenning": "gerouteerde_erkenning",
}


@dataclass(frozen=True)
class SchemaEntry:
    type: str  # record type = file stem, e.g. "overdracht"
    version: int | None  # released version; None when this current schema is not released yet
    schema: dict[str, Any] = field(repr=False)  # JSON as in the file (pii tags and all)
    parsed: dict[str, Any] = field(repr=False)  # fastavro-parsed, for reading and writing
    expanded: dict[str, Any] = field(repr=False)  # named references inlined, for walkers
    fingerprint: bytes = b""  # CRC-64-AVRO, wire byte order

    @property
    def name(self) -> str:
        return self.expanded["name"]


def _entry(type_: str, version: int | None, raw: dict[str, Any]) -> SchemaEntry:
    return SchemaEntry(
        type=type_,
        version=version,
        schema=raw,
        parsed=parse_schema(raw),  # keeps fastavro's "parsed" hint, so it is not re-parsed per call
        expanded=expand(raw),
        fingerprint=fingerprint(raw),
    )


class Catalogue:
    def __init__(self, current: dict[str, SchemaEntry], released: dict[str, tuple[SchemaEntry, ...]]):
        self._current = current
        self._released = released
        index: dict[bytes, SchemaEntry] = {}
        # Older first, so for equal fingerprints (a doc/default/pii-only change) the newest wins.
        for entries in released.values():
            for e in entries:
                index[e.fingerprint] = e
        for e in current.values():
            index[e.fingerprint] = e
        self._by_fp = index
        self._by_name = {e.name: e.type for e in current.values()}

    def types(self) -> tuple[str, ...]:
        return tuple(sorted(self._current))

    def current(self, record_type: str) -> SchemaEntry:
        try:
            return self._current[record_type]
        except (KeyError, TypeError):
            raise UnknownSchema(SCHEMA_ONBEKEND, "type") from None

    def released(self, record_type: str) -> tuple[SchemaEntry, ...]:
        self.current(record_type)
        return self._released.get(record_type, ())

    def by_fingerprint(self, fp: bytes) -> SchemaEntry | None:
        return self._by_fp.get(bytes(fp))

    def type_of(self, avro_name: str) -> str:
        try:
            return self._by_name[avro_name]
        except KeyError:
            raise UnknownSchema(SCHEMA_ONBEKEND, "name") from None

    def fingerprints(self) -> dict[bytes, SchemaEntry]:
        return dict(self._by_fp)


def load_catalogue(avro: Path) -> Catalogue:
    current: dict[str, SchemaEntry] = {}
    released: dict[str, tuple[SchemaEntry, ...]] = {}
    for path in sorted(avro.glob("*.avsc")):
        raw = load_json(path)
        type_ = path.stem
        versions = []
        for vpath in (avro / "released" / type_).glob("*.avsc"):
            if vpath.stem.isdigit():
                versions.append(_entry(type_, int(vpath.stem), load_json(vpath)))
        versions.sort(key=lambda e: e.version or 0)
        released[type_] = tuple(versions)
        same = [e.version for e in versions if e.schema == raw]
        current[type_] = _entry(type_, same[-1] if same else None, raw)
    return Catalogue(current, released)


@functools.lru_cache(maxsize=4)
def _cached(avro: Path) -> Catalogue:
    return load_catalogue(avro)


def get_catalogue() -> Catalogue:
    """The catalogue for the configured schema directory (read once, then cached)."""
    return _for_setting(os.environ.get(SCHEMA_DIR_ENV))


@functools.lru_cache(maxsize=4)
def _for_setting(_schema_dir_env: str | None) -> Catalogue:
    # Keyed by the setting itself: building the path on every call cost more than encoding.
    return _cached(avro_dir())
