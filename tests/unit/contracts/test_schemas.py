"""The .avsc files themselves: parse, namespace, logical types, released versions, fingerprints."""

from __future__ import annotations

import json

import fastavro
import pytest

from herstelbus.core.contracts import get_catalogue
from herstelbus.core.contracts.catalogue import load_catalogue
from herstelbus.core.contracts.schemas import NAMESPACE, SCHEMA_DIR_ENV, avro_dir, canonical_form

TYPES = get_catalogue().types()


def crc64_avro(data: bytes) -> int:
    """Independent CRC-64-AVRO (the Avro spec's reference algorithm) to cross-check fastavro."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for b in data:
        fp = (fp >> 8) ^ table[(fp ^ b) & 0xFF]
    return fp


def test_fingerprint_matches_spec_and_wire_order():
    assert crc64_avro(b'"null"') == 0x63DD24E7CC258F8A  # Avro spec test vector
    for t in TYPES:
        entry = get_catalogue().current(t)
        value = crc64_avro(canonical_form(entry.schema).encode())
        assert entry.fingerprint == value.to_bytes(8, "little")


def test_all_types_present():
    assert set(TYPES) == {"overdracht", "pauzeknop", "erkenning", "ontvangstbevestiging",
                          "gerouteerde_overdracht", "gerouteerde_pauzeknop", "gerouteerde_erkenning",
                          "statusbericht", "deadletter", "audit"}


@pytest.mark.parametrize("record_type", TYPES)
def test_schema_shape_rules(record_type):
    entry = get_catalogue().current(record_type)
    assert entry.schema["namespace"] == NAMESPACE
    fastavro.parse_schema(entry.schema)

    def walk(node):
        if isinstance(node, list):
            assert len(node) == 2 and node[0] == "null", "only [\"null\", T] unions (null first)"
            walk(node[1])
        elif isinstance(node, dict):
            kind = node["type"]
            lt = node.get("logicalType")
            if lt == "date":
                assert kind == "int"
            if lt in ("timestamp-millis", "timestamp-micros"):
                assert kind == "long"
            if lt == "uuid":
                assert kind == "string"
            if kind == "record":
                for f in node["fields"]:
                    walk(f["type"])
                    if isinstance(f["type"], list):
                        assert "default" in f and f["default"] is None, f["name"]
            elif kind == "array":
                walk(node["items"])
            elif kind == "map":
                walk(node["values"])
            elif isinstance(kind, (dict, list)):
                walk(kind)

    walk(entry.schema)


@pytest.mark.parametrize("record_type", TYPES)
def test_current_schema_is_released(record_type):
    """What ships must be released: edit the schema, then run regenerate.py release TYPE."""
    entry = get_catalogue().current(record_type)
    released = get_catalogue().released(record_type)
    assert released, "no released version"
    assert released[-1].schema == entry.schema, "current schema differs from its latest released version"
    assert [e.version for e in released] == list(range(1, len(released) + 1))


def test_event_time_and_ids_use_logical_types():
    for t in ("overdracht", "pauzeknop", "erkenning"):
        fields = {f["name"]: f for f in get_catalogue().current(t).schema["fields"]}
        assert fields["event_id"]["type"] == {"type": "string", "logicalType": "uuid"}
        assert fields["occurred_at"]["type"] == {"type": "long", "logicalType": "timestamp-millis"}


def test_fingerprints_unique_across_types():
    seen = {}
    for t in TYPES:
        fp = get_catalogue().current(t).fingerprint
        assert fp not in seen, (t, seen.get(fp))
        seen[fp] = t


def test_schema_dir_override(tmp_path, monkeypatch):
    (tmp_path / "avro").mkdir()
    src = avro_dir() / "audit.avsc"
    (tmp_path / "avro" / "audit.avsc").write_text(src.read_text())
    monkeypatch.setenv(SCHEMA_DIR_ENV, str(tmp_path))
    assert avro_dir() == tmp_path / "avro"
    assert load_catalogue(avro_dir()).types() == ("audit",)


def test_avsc_files_are_valid_json_with_no_tabs():
    for path in avro_dir().rglob("*.avsc"):
        text = path.read_text(encoding="utf-8")
        json.loads(text)
        assert "\t" not in text, path
