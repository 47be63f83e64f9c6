"""Single-object encoding: layout, decoding by fingerprint, typed errors, old writers."""

from __future__ import annotations

import copy
import json
import shutil

import pytest

from herstelbus.core.contracts import WireError, decode, decode_full, encode, get_catalogue, parse_json_event
from herstelbus.core.contracts.catalogue import load_catalogue
from herstelbus.core.contracts.schemas import avro_dir
from herstelbus.core.contracts.wire import encode_with
from contracts_helpers import NOW, valid


def sample() -> tuple[str, dict]:
    return parse_json_event(valid("pauzeknop_stop"), now=NOW)


def test_layout():
    record_type, record = sample()
    data = encode(record_type, record)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == get_catalogue().current("pauzeknop").fingerprint
    assert decode(data) == (record_type, record)


def test_decode_full_names_the_writer():
    data = encode(*sample())
    d = decode_full(data)
    assert d.type == "pauzeknop" and d.writer.version == 1


@pytest.mark.parametrize("data,reason", [
    (b"", "MARKER_ONGELDIG"),
    (b"\xc3", "MARKER_ONGELDIG"),
    (b"\xc3\x02" + b"\x00" * 20, "MARKER_ONGELDIG"),
    (b"{\"type\": \"pauzeknop\"}", "MARKER_ONGELDIG"),
    (b"\xc3\x01\x00\x01", "BERICHT_AFGEKAPT"),
    (b"\xc3\x01" + b"\x00" * 8 + b"body", "FINGERPRINT_ONBEKEND"),
])
def test_header_errors(data, reason):
    with pytest.raises(WireError) as exc:
        decode(data)
    assert exc.value.reason == reason


def test_truncated_and_trailing_bodies():
    data = encode(*sample())
    for cut in range(10, len(data)):
        with pytest.raises(WireError) as exc:
            decode(data[:cut])
        assert exc.value.reason in ("BERICHT_AFGEKAPT", "BERICHT_ONLEESBAAR")
    with pytest.raises(WireError) as exc:
        decode(data + b"\x00")
    assert exc.value.reason == "BERICHT_ONLEESBAAR"


def test_garbage_body_is_typed():
    fp = get_catalogue().current("overdracht").fingerprint
    for body in (b"\xff" * 50, b"\x02" + b"\xff" * 50, b"\x48" + b"\x80" * 40):
        with pytest.raises(WireError):
            decode(b"\xc3\x01" + fp + body)


def test_not_bytes():
    with pytest.raises(WireError):
        decode("c301")  # type: ignore[arg-type]


def test_old_writer_is_resolved_onto_current(tmp_path):
    """A v1 writer's bytes decode with the current (v2) schema: the new field gets its default."""
    root = tmp_path / "avro"
    shutil.copytree(avro_dir(), root)
    v1 = json.loads((root / "pauzeknop.avsc").read_text())
    v2 = copy.deepcopy(v1)
    v2["fields"].append({"name": "kanaal", "type": ["null", "string"], "default": None})
    (root / "pauzeknop.avsc").write_text(json.dumps(v2))
    (root / "released" / "pauzeknop" / "2.avsc").write_text(json.dumps(v2))
    cat = load_catalogue(root)
    record_type, record = sample()
    old_bytes = encode_with(cat.released("pauzeknop")[0], record)
    d = decode_full(old_bytes, catalogue=cat)
    assert d.writer.version == 1
    assert d.record == {**record, "kanaal": None}
    new_bytes = encode(record_type, {**record, "kanaal": None}, catalogue=cat)
    assert new_bytes[2:10] != old_bytes[2:10]
    assert decode(new_bytes, catalogue=cat)[1]["kanaal"] is None


def test_unchecked_encode_writes_the_same_bytes_and_still_refuses_with_a_typed_error():
    from herstelbus.core.contracts import InvalidEvent

    record_type, record = sample()
    assert encode(record_type, record, checked=False) == encode(record_type, record)
    broken = copy.deepcopy(record)
    broken["volgnummer"] = "zeven"  # fastavro's strict writer refuses it; the walk names why
    with pytest.raises(InvalidEvent) as refused:
        encode(record_type, broken, checked=False)
    assert [e.path for e in refused.value.errors] == ["volgnummer"]
