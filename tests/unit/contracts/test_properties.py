"""Property tests: arbitrary input never makes parsing, validation, decoding or the envelope
raise anything but this package's own typed errors; whatever parses also encodes and round-trips."""

from __future__ import annotations

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herstelbus.core.contracts import (
    INPUT_TYPES,
    ContractError,
    EnvelopeError,
    ValidationError,
    WireError,
    decode,
    encode,
    get_catalogue,
    parse_cloudevent_headers,
    parse_json_event,
    to_json,
    validate,
)
from contracts_helpers import NOW, load_vector, vector_names

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False) | st.text(max_size=30)
           | st.sampled_from(["999990019", "GM0363", "1011 AB", "2025-03-04", "2025-03-04T09:15:30Z",
                              "3f2a9c1e-7b4d-4e8a-9f10-2c3d4e5f6a7b", "OUDER", "STOP", "GEWEIGERD"]))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
json_objects = st.dictionaries(st.text(max_size=15) | st.sampled_from(["type", "persoon", "bsn", "event_id"]),
                               json_values, max_size=8)
input_vectors = [n for n in vector_names() if load_vector(n)["type"] in INPUT_TYPES]


def paths_of(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from paths_of(v, prefix + (k,))


@st.composite
def mutated_events(draw):
    obj = copy.deepcopy(load_vector(draw(st.sampled_from(input_vectors))))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in paths_of(obj) if p]
        path = draw(st.sampled_from(paths))
        parent = obj
        for k in path[:-1]:
            parent = parent[k]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "delete":
            del parent[path[-1]]
        else:
            parent[draw(st.text(max_size=10))] = draw(json_values)
    return obj


def parse_only_typed(obj):
    try:
        return parse_json_event(obj, now=NOW)
    except ContractError as exc:
        assert exc.__context__ is None and exc.__cause__ is None
        assert all(isinstance(e, ValidationError) for e in getattr(exc, "errors", ()))
        return None


@SETTINGS
@given(json_values)
def test_arbitrary_json_value(value):
    parse_only_typed(value)


@SETTINGS
@given(json_objects, st.sampled_from(list(INPUT_TYPES) + ["onbekend", None]))
def test_arbitrary_object_with_a_type(obj, record_type):
    if record_type is not None:
        obj = {**obj, "type": record_type}
    parse_only_typed(obj)


@SETTINGS
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_arbitrary_line(line):
    parse_only_typed(line)


@SETTINGS
@given(json_values)
def test_arbitrary_json_text(value):
    parse_only_typed(json.dumps(value))


@SETTINGS
@given(mutated_events())
def test_mutated_event_parses_or_fails_typed_and_what_parses_round_trips(obj):
    result = parse_only_typed(obj)
    if result is None:
        return
    record_type, record = result
    data = encode(record_type, record)
    assert decode(data) == (record_type, record)
    assert validate(record_type, record, now=NOW) == []
    assert to_json(record_type, record)["type"] == record_type


@SETTINGS
@given(st.sampled_from(get_catalogue().types()), json_values | json_objects)
def test_validate_never_raises(record_type, value):
    errors = validate(record_type, value, now=NOW)
    assert isinstance(errors, list) and all(isinstance(e, ValidationError) for e in errors)


@SETTINGS
@given(st.binary(max_size=300))
def test_decode_arbitrary_bytes(data):
    try:
        decode(data)
    except WireError:
        pass


@SETTINGS
@given(st.sampled_from(get_catalogue().types()), st.binary(max_size=300))
def test_decode_arbitrary_body_behind_a_known_fingerprint(record_type, body):
    fp = get_catalogue().current(record_type).fingerprint
    try:
        decode(b"\xc3\x01" + fp + body)
    except WireError:
        pass


header_names = st.sampled_from(["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject",
                                "ce_sequence", "ce_dataschema", "content-type", "ce_x", "other"])


@SETTINGS
@given(st.lists(st.tuples(header_names | st.text(max_size=10),
                          st.binary(max_size=40) | st.text(max_size=40) | st.none()), max_size=12))
def test_envelope_parse_arbitrary_headers(headers):
    try:
        parse_cloudevent_headers(headers)
    except EnvelopeError:
        pass
