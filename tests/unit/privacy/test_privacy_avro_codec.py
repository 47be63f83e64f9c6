"""The plaintext of a sealed field is the Avro binary encoding of the field's own schema: the
compiled codec must agree byte for byte with fastavro, and decode only ever fails with its own
typed error."""

from __future__ import annotations

import datetime as dt
import io

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herstelbus.core.privacy import MalformedSealedField, RecordInvalid
from herstelbus.core.privacy._avro import FieldCodec
from privacy_fixtures import OVERDRACHT_SCHEMA

KITCHEN = {
    "type": "record",
    "name": "Kitchen",
    "namespace": "test.privacy",
    "fields": [
        {"name": "b", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "s", "type": "string"},
        {"name": "by", "type": "bytes"},
        {"name": "n", "type": "null"},
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}},
        {"name": "fx", "type": {"type": "fixed", "name": "F4", "size": 4}},
        {"name": "date", "type": {"type": "int", "logicalType": "date"}},
        {"name": "arr", "type": {"type": "array", "items": ["null", "string"]}},
        {"name": "m", "type": {"type": "map", "values": "long"}},
        {"name": "opt_last", "type": ["string", "null"]},
        {"name": "sub", "type": ["null", {"type": "record", "name": "Sub", "fields": [{"name": "e2", "type": "E"}, {"name": "x", "type": "F4"}]}]},
        {"name": "again", "type": "Sub"},
    ],
}
GENERAL_UNION = {"type": "record", "name": "G", "fields": [{"name": "u", "type": ["null", "string", "long"]}]}


def strategy(schema, named):
    if isinstance(schema, str) and schema in named:
        return strategy(named[schema], named)
    if isinstance(schema, list):
        return st.one_of(*[strategy(s, named) for s in schema])
    t = schema["type"] if isinstance(schema, dict) else schema
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if logical == "date":
        return st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31))
    if logical == "uuid":
        return st.uuids()
    if logical == "timestamp-millis":
        return st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.timezone.utc)).map(
            lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
        )
    return {
        "null": lambda: st.none(),
        "boolean": lambda: st.booleans(),
        "int": lambda: st.integers(-(2**31), 2**31 - 1),
        "long": lambda: st.integers(-(2**63), 2**63 - 1),
        "float": lambda: st.floats(width=32, allow_nan=False),
        "double": lambda: st.floats(allow_nan=False),
        "string": lambda: st.text(),
        "bytes": lambda: st.binary(),
        "enum": lambda: st.sampled_from(schema["symbols"]),
        "fixed": lambda: st.binary(min_size=schema["size"], max_size=schema["size"]),
        "array": lambda: st.lists(strategy(schema["items"], named), max_size=5),
        "map": lambda: st.dictionaries(st.text(max_size=8), strategy(schema["values"], named), max_size=5),
        "record": lambda: st.fixed_dictionaries({f["name"]: strategy(f["type"], named) for f in schema["fields"]}),
    }[t]()


def _parsed(schema):
    named: dict = {}
    return fastavro.parse_schema(schema, named_schemas=named), named


def _fastavro_bytes(parsed, value):
    bio = io.BytesIO()
    fastavro.schemaless_writer(bio, parsed, value)
    return bio.getvalue()


def _field_cases():
    parsed, named = _parsed(OVERDRACHT_SCHEMA)
    cases = [(f["type"], named, f["name"]) for f in parsed["fields"]]
    kp, kn = _parsed(KITCHEN)
    cases.append((kp, kn, "kitchen"))
    gp, gn = _parsed(GENERAL_UNION)
    cases.append((gp["fields"][0]["type"], gn, "general_union"))
    return cases


CASES = _field_cases()


@pytest.mark.parametrize("schema, named, name", CASES, ids=[c[2] for c in CASES])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_codec_matches_fastavro(schema, named, name, data) -> None:
    codec = FieldCodec(schema, named)
    value = data.draw(strategy(schema, named))
    wrapper = fastavro.parse_schema({"type": "record", "name": "W", "fields": [{"name": "v", "type": schema}]}, named_schemas=dict(named))
    expected = _fastavro_bytes(wrapper, {"v": value})
    assert codec.encode(value) == expected
    back = codec.decode(expected)
    assert back == fastavro.schemaless_reader(io.BytesIO(expected), wrapper, None)["v"]


def test_compiled_for_the_overdracht_fields_fallback_for_general_unions() -> None:
    fallback = {"general_union", "event_id", "occurred_at"}  # other logical types go to fastavro
    for schema, named, name in CASES:
        assert FieldCodec(schema, named).compiled == (name not in fallback), name


@settings(max_examples=300, deadline=None)
@given(blob=st.binary(max_size=80))
def test_decode_garbage_only_raises_typed(blob) -> None:
    for schema, named, _ in CASES:
        try:
            FieldCodec(schema, named).decode(blob)
        except MalformedSealedField:
            pass


@pytest.mark.parametrize(
    "bad",
    [{"bsn": 999990019}, {"bsn": "999990019"}, "999990019", None, {"bsn": "x", "voornamen": "y", "voorvoegsel": None, "achternaam": "z", "geboortedatum": "1985-01-01"}],
)
def test_encode_wrong_shapes_raise_typed(bad) -> None:
    parsed, named = _parsed(OVERDRACHT_SCHEMA)
    persoon = next(f["type"] for f in parsed["fields"] if f["name"] == "persoon")
    with pytest.raises(RecordInvalid):
        FieldCodec(persoon, named).encode(bad)


def test_trailing_bytes_refused() -> None:
    codec = FieldCodec(["null", "string"], {})
    with pytest.raises(MalformedSealedField) as exc:
        codec.decode(codec.encode("x") + b"\x00")
    assert exc.value.reason == "trailing_bytes"
