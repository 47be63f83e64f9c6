"""Golden vectors: JSON in, Avro single-object bytes out, and back, for every record type."""

from __future__ import annotations

import pytest

from herstelbus.core.contracts import (
    INPUT_TYPES,
    decode,
    encode,
    get_catalogue,
    json_to_record,
    parse_json_event,
    to_json,
    validate,
)

from contracts_helpers import NOW, VECTORS, load_vector, vector_names


def _record(obj: dict) -> tuple[str, dict]:
    if obj["type"] in INPUT_TYPES:
        return parse_json_event(obj, now=NOW)
    return obj["type"], json_to_record(obj["type"], {k: v for k, v in obj.items() if k != "type"}, now=NOW)


def test_every_record_type_has_a_vector():
    covered = {load_vector(n)["type"] for n in vector_names()}
    assert covered == set(get_catalogue().types())


@pytest.mark.parametrize("name", vector_names())
def test_json_to_bytes(name):
    record_type, record = _record(load_vector(name))
    expected = bytes.fromhex((VECTORS / f"{name}.hex").read_text().strip())
    assert encode(record_type, record) == expected


@pytest.mark.parametrize("name", vector_names())
def test_bytes_to_json(name):
    obj = load_vector(name)
    data = bytes.fromhex((VECTORS / f"{name}.hex").read_text().strip())
    record_type, record = decode(data)
    assert record_type == obj["type"]
    assert validate(record_type, record, now=NOW) == []
    back = to_json(record_type, record, with_type=True)
    assert back == obj


@pytest.mark.parametrize("name", vector_names())
def test_vector_starts_with_marker_and_current_fingerprint(name):
    obj = load_vector(name)
    data = bytes.fromhex((VECTORS / f"{name}.hex").read_text().strip())
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == get_catalogue().current(obj["type"]).fingerprint


def test_vectors_use_test_bsns_only():
    # Synthetic persons only: every BSN in the vectors is from the 99999xxxx test range.
    import re

    for name in vector_names():
        text = (VECTORS / f"{name}.json").read_text()
        for bsn in re.findall(r'"bsn": "(\d+)"', text):
            assert bsn.startswith("99999"), name
