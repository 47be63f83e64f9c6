"""CloudEvents 1.0 Kafka binary mode with the NL GOV profile."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from herstelbus.core.contracts import (
    CE_TYPES,
    EnvelopeError,
    cloudevent_headers,
    get_catalogue,
    headers_for,
    json_to_record,
    parse_cloudevent_headers,
    parse_json_event,
    source_urn,
)
from contracts_helpers import NOW, valid

UHT = source_urn("00000001003214345000", "uht-herstel")
ROUTER = source_urn("00000001234567890000", "herstelbus-router")


def test_source_urn():
    assert UHT == "urn:nld:oin:00000001003214345000:systeem:uht-herstel"
    for oin, sys in (("123", "uht"), ("00000001003214345000", "met spatie"), ("00000001003214345000", "")):
        with pytest.raises(EnvelopeError):
            source_urn(oin, sys)


def test_headers_for_uht_event():
    _, record = parse_json_event(valid("pauzeknop_stop"), now=NOW)
    headers = headers_for("pauzeknop", record, source=UHT)
    h = dict(headers)
    assert all(isinstance(v, bytes) for _, v in headers)
    assert h["ce_specversion"] == b"1.0"
    assert h["ce_id"] == b"6b5c4d3e-2f1a-4b0c-9d8e-7f6a5b4c3d2e"
    assert h["ce_source"] == UHT.encode()
    assert h["ce_type"] == b"nl.toeslagen.herstel.pauzeknop.v1"
    assert h["ce_time"] == b"2025-09-30T23:30:00Z"
    assert h["ce_sequence"] == b"0000000004"
    fp = get_catalogue().current("pauzeknop").fingerprint.hex()
    assert h["ce_dataschema"] == f"urn:nld:herstelbus:avro:nl.toeslagen.herstel.v1.Pauzeknop:{fp}".encode()
    assert h["content-type"] == b"application/avro"
    assert "ce_subject" not in h  # UHT has no pseudonym; a BSN never goes here


def test_routed_event_subject_is_the_pseudonym_and_round_trips():
    obj = {k: v for k, v in valid("gerouteerde_overdracht").items() if k != "type"}
    record = json_to_record("gerouteerde_overdracht", obj, now=NOW)
    headers = headers_for("gerouteerde_overdracht", record, source=ROUTER)
    ce = parse_cloudevent_headers(headers + [("x-signature", b"\x00\xff")])
    assert ce.subject == record["subject"]
    assert ce.type == CE_TYPES["gerouteerde_overdracht"] and ce.record_type == "gerouteerde_overdracht"
    assert ce.time == record["occurred_at"]
    assert ce.sequence == "0000000001"
    assert ce.fingerprint == get_catalogue().current("gerouteerde_overdracht").fingerprint


def test_sequence_orders_as_strings():
    seqs = [dict(cloudevent_headers("erkenning", id="a1", source=UHT, time=NOW, sequence=n))["ce_sequence"]
            for n in (9, 10, 123, 2**31 - 1)]
    assert seqs == sorted(seqs)


@pytest.mark.parametrize("subject", ["999990019", "testa@example.org", "Testa Proefpersoon", "kort"])
def test_subject_is_never_personal_data(subject):
    with pytest.raises(EnvelopeError) as exc:
        cloudevent_headers("overdracht", id="a1", source=UHT, time=NOW, subject=subject)
    assert exc.value.reason == "SUBJECT_ONGELDIG"


def test_naive_time_and_bad_source_refused():
    with pytest.raises(EnvelopeError):
        cloudevent_headers("overdracht", id="a1", source=UHT, time=datetime(2025, 1, 1))
    with pytest.raises(EnvelopeError):
        cloudevent_headers("overdracht", id="a1", source="https://uht.example", time=NOW)


def test_parse_rejects_broken_envelopes():
    good = cloudevent_headers("erkenning", id="a1", source=UHT, time=datetime(2025, 1, 1, tzinfo=timezone.utc))
    base = dict(good)
    for name in ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_dataschema", "content-type"):
        with pytest.raises(EnvelopeError) as exc:
            parse_cloudevent_headers([(k, v) for k, v in good if k != name])
        assert exc.value.reason == "HEADER_ONTBREEKT" and exc.value.path == name
    for name, value, reason in [("ce_specversion", b"0.3", "SPECVERSION_ONGELDIG"),
                                ("ce_time", b"2025-01-01T00:00:00+02:00", "HEADER_ONGELDIG"),
                                ("ce_type", b"com.example.x", "HEADER_ONGELDIG"),
                                ("ce_source", b"urn:nld:oin:1:systeem:x", "SOURCE_ONGELDIG"),
                                ("ce_id", b"\xff\xfe", "HEADER_ONGELDIG")]:
        with pytest.raises(EnvelopeError) as exc:
            parse_cloudevent_headers(list({**base, name: value}.items()))
        assert exc.value.reason == reason
    with pytest.raises(EnvelopeError) as exc:
        parse_cloudevent_headers(good + [("ce_id", b"b2")])
    assert exc.value.reason == "HEADER_DUBBEL"
