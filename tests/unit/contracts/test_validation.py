"""Validation rules: each gives its stable reason code at the right field path."""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta, timezone

import pytest

from herstelbus.core.contracts import (
    ContractError,
    InvalidEvent,
    ValidationError,
    check,
    decode,
    encode,
    parse_json_event,
    validate,
)
from herstelbus.core.contracts.jsonlines import json_to_record
from contracts_helpers import NOW, VECTORS, reasons, valid


def errors_for(obj: dict) -> set[tuple[str, str]]:
    with pytest.raises(InvalidEvent) as exc:
        parse_json_event(obj, now=NOW)
    assert isinstance(exc.value, ContractError)
    return reasons(exc.value.errors)


def with_change(name: str, path: str, value) -> dict:
    obj = copy.deepcopy(valid(name))
    *parents, leaf = path.split(".")
    target = obj
    for p in parents:
        target = target[p]
    if value is _DELETE:
        del target[leaf]
    else:
        target[leaf] = value
    return obj


_DELETE = object()


def test_valid_vectors_parse():
    record_type, record = parse_json_event(valid("overdracht_volledig"), now=NOW)
    assert record_type == "overdracht"
    assert "type" not in record
    assert record["persoon"]["geboortedatum"] == date(1985, 6, 15)
    assert record["occurred_at"] == datetime(2025, 3, 4, 9, 15, 30, 250000, tzinfo=timezone.utc)


@pytest.mark.parametrize("bsn", ["999990018", "12345678", "1234567890", "000000000", "99999001a",
                                 "\u0669\u0669\u0669\u0669\u0669\u0660\u0660\u0661\u0669"])
def test_bsn_11_proef(bsn):
    assert ("BSN_ONGELDIG", "persoon.bsn") in errors_for(with_change("overdracht_volledig", "persoon.bsn", bsn))


def test_toeslagpartner_bsn_checked_too():
    obj = with_change("overdracht_volledig", "toeslagpartner.bsn", "999990021")
    assert ("BSN_ONGELDIG", "toeslagpartner.bsn") in errors_for(obj)


def test_toeslagpartner_is_not_the_parent():
    obj = with_change("overdracht_volledig", "toeslagpartner.bsn", "999990019")
    assert ("TOESLAGPARTNER_GELIJK", "toeslagpartner.bsn") in errors_for(obj)


@pytest.mark.parametrize("code", ["GM363", "gm0363", "GM03630", "0363", "GM 0363", ""])
def test_gemeentecode_form(code):
    got = errors_for(with_change("overdracht_volledig", "gemeentecode", code))
    assert got & {("GEMEENTECODE_ONGELDIG", "gemeentecode"), ("LEEG", "gemeentecode")}


def test_unknown_but_well_formed_gemeentecode_is_valid():
    # Whether GM9999 exists is a routing question (unroutable), not a validation one.
    parse_json_event(with_change("overdracht_volledig", "gemeentecode", "GM9999"), now=NOW)


@pytest.mark.parametrize("postcode", ["0123 AB", "1234 ab", "1234  AB", "12345 AB", "1234 SA", "1234SD", "1234 SS", "AB 1234"])
def test_postcode_invalid(postcode):
    got = errors_for(with_change("overdracht_volledig", "adres.postcode", postcode))
    assert ("POSTCODE_ONGELDIG", "adres.postcode") in got


@pytest.mark.parametrize("postcode", ["1011AB", "9999 ZZ", "1234 SB"])
def test_postcode_valid(postcode):
    parse_json_event(with_change("overdracht_volledig", "adres.postcode", postcode), now=NOW)


@pytest.mark.parametrize("value", ["2020-1-1", "20200101", "2020-02-30", "2020-13-01", "1985-06-15T00:00:00Z", "01-01-2020"])
def test_date_form(value):
    assert ("DATUM_ONGELDIG", "persoon.geboortedatum") in errors_for(
        with_change("overdracht_volledig", "persoon.geboortedatum", value))


def test_birth_date_in_future_is_implausible():
    obj = with_change("overdracht_volledig", "persoon.geboortedatum", "2025-03-06")
    assert ("DATUM_ONAANNEMELIJK", "persoon.geboortedatum") in errors_for(obj)
    obj = with_change("overdracht_volledig", "persoon.geboortedatum", "1899-12-31")
    assert ("DATUM_ONAANNEMELIJK", "persoon.geboortedatum") in errors_for(obj)


def test_date_one_day_after_utc_event_is_dutch_today():
    # 2025-09-30T23:30Z is 1 October in the Netherlands.
    parse_json_event(with_change("pauzeknop_stop", "ingangsdatum", "2025-10-01"), now=NOW)
    parse_json_event(with_change("erkenning", "besluitdatum", "2025-04-02"), now=NOW)
    obj = with_change("erkenning", "besluitdatum", "2025-04-03")
    assert ("DATUM_ONAANNEMELIJK", "besluitdatum") in errors_for(obj)


def test_event_far_in_the_future_is_implausible():
    soon = (NOW + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    parse_json_event(with_change("erkenning", "occurred_at", soon), now=NOW)
    later = (NOW + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ("TIJD_ONAANNEMELIJK", "occurred_at") in errors_for(with_change("erkenning", "occurred_at", later))
    assert ("TIJD_ONAANNEMELIJK", "occurred_at") in errors_for(
        with_change("erkenning", "occurred_at", "2018-12-31T23:59:59Z"))


@pytest.mark.parametrize("value", ["2025-03-04T10:15:30+01:00", "2025-03-04 09:15:30Z", "2025-03-04T09:15:30",
                                   "2025-03-04T25:00:00Z", "2025-03-04T09:15:60Z", "2025-03-04"])
def test_timestamp_must_be_rfc3339_utc(value):
    assert ("TIJD_ONGELDIG", "occurred_at") in errors_for(with_change("erkenning", "occurred_at", value))


def test_timestamp_keeps_milliseconds_only():
    _, record = parse_json_event(with_change("erkenning", "occurred_at", "2025-04-01T08:00:00.123456789Z"), now=NOW)
    assert record["occurred_at"].microsecond == 123000


@pytest.mark.parametrize("path,value", [("rol", "TOESLAGPARTNER"), ("woonsituatie", "binnenland"),
                                        ("contactwens", None), ("urgentie.reden", "ONBEKEND")])
def test_enums(path, value):
    got = errors_for(with_change("overdracht_volledig", path, value))
    assert got & {("ENUM_ONGELDIG", path), ("NULL_NIET_TOEGESTAAN", path)}


def test_rol_enum_differs_per_event_kind():
    parse_json_event(with_change("pauzeknop_start", "rol", "TOESLAGPARTNER"), now=NOW)
    assert ("ENUM_ONGELDIG", "rol") in errors_for(with_change("pauzeknop_start", "rol", "KIND"))


def test_unknown_fields_rejected_at_every_level():
    obj = with_change("overdracht_volledig", "geslacht", "X")
    obj["adres"]["verdieping"] = 2
    got = errors_for(obj)
    assert ("VELD_ONBEKEND", "geslacht") in got
    assert ("VELD_ONBEKEND", "adres.verdieping") in got


def test_nullable_fields_must_still_be_present():
    assert ("VELD_ONTBREEKT", "telefoon") in errors_for(with_change("overdracht_volledig", "telefoon", _DELETE))
    assert ("VELD_ONTBREEKT", "persoon.voorvoegsel") in errors_for(
        with_change("overdracht_volledig", "persoon.voorvoegsel", _DELETE))


def test_required_fields_not_null():
    assert ("NULL_NIET_TOEGESTAAN", "persoon") in errors_for(with_change("overdracht_volledig", "persoon", None))
    assert ("NULL_NIET_TOEGESTAAN", "dossiernummer") in errors_for(
        with_change("overdracht_volledig", "dossiernummer", None))


def test_pauzeknop_stop_needs_reden_and_start_has_none():
    assert ("REDEN_VERPLICHT", "reden") in errors_for(with_change("pauzeknop_stop", "reden", None))
    assert ("REDEN_NIET_TOEGESTAAN", "reden") in errors_for(with_change("pauzeknop_start", "reden", "ANDERS"))


def test_geweigerd_needs_reden():
    assert ("REDEN_VERPLICHT", "reden") in errors_for(with_change("ontvangstbevestiging_geweigerd", "reden", None))
    assert ("REDEN_NIET_TOEGESTAAN", "reden") in errors_for(
        with_change("ontvangstbevestiging_ontvangen", "reden", "ANDERS"))


def test_urgentie_reden_only_when_urgent():
    obj = with_change("overdracht_volledig", "urgentie.urgent", False)
    assert ("REDEN_NIET_TOEGESTAAN", "urgentie.reden") in errors_for(obj)
    parse_json_event(with_change("overdracht_volledig", "urgentie", {"urgent": False, "reden": None}), now=NOW)


@pytest.mark.parametrize("path,value,reason", [
    ("persoon.voornamen", "A" * 201, "TE_LANG"),
    ("persoon.voorvoegsel", "van de vande", "TE_LANG"),
    ("persoon.achternaam", "", "LEEG"),
    ("persoon.achternaam", "Proef\u0000persoon", "TEKEN_ONGELDIG"),
    ("persoon.achternaam", "Proef\ud800", "TEKEN_ONGELDIG"),
    ("persoon.achternaam", "Proef2", "NAAM_ONGELDIG"),
    ("adres.huisletter", "AB", "HUISLETTER_ONGELDIG"),
    ("adres.toevoeging", "12345", "TOEVOEGING_ONGELDIG"),
    ("telefoon", "bel me", "TELEFOON_ONGELDIG"),
    ("email", "testa@", "EMAIL_ONGELDIG"),
    ("dossiernummer", "UHT 2021", "DOSSIERNUMMER_ONGELDIG"),
    ("volgnummer", 0, "BUITEN_BEREIK"),
    ("volgnummer", 2**31, "BUITEN_BEREIK"),
    ("volgnummer", 1.0, "TYPE_ONGELDIG"),
    ("volgnummer", True, "TYPE_ONGELDIG"),
    ("volgnummer", "1", "TYPE_ONGELDIG"),
    ("adres.huisnummer", 100000, "BUITEN_BEREIK"),
    ("urgentie.urgent", "ja", "TYPE_ONGELDIG"),
    ("event_id", "not-a-uuid", "UUID_ONGELDIG"),
    ("event_id", "00000000-0000-0000-0000-000000000000", "UUID_ONGELDIG"),
    ("persoon", "999990019", "TYPE_ONGELDIG"),
])
def test_field_rules(path, value, reason):
    assert (reason, path) in errors_for(with_change("overdracht_volledig", path, value))


@pytest.mark.parametrize("text", ["BSN 999990019 klopt niet", "mail testa@example.org", "woont op 1234 AB",
                                  "bel 06-12345678"])
def test_free_text_may_not_carry_personal_data(text):
    obj = with_change("ontvangstbevestiging_geweigerd", "toelichting", text)
    assert ("PERSOONSGEGEVENS_IN_TEKST", "toelichting") in errors_for(obj)


def test_event_larger_than_64_kb_is_refused():
    import json

    obj = with_change("overdracht_volledig", "extra", "x" * 70_000)
    line = json.dumps(obj)
    with pytest.raises(InvalidEvent) as exc:
        parse_json_event(line, now=NOW)
    assert exc.value.reason == "TE_GROOT"
    with pytest.raises(InvalidEvent) as exc:
        parse_json_event(obj, now=NOW)
    assert exc.value.reason == "TE_GROOT"


def test_record_size_limit_applies_to_records_too():
    _, record = parse_json_event(valid("overdracht_volledig"), now=NOW)
    # The contract caps strings far below 64 KB; a huge string field breaks TE_LANG first.
    record["persoon"] = {**record["persoon"], "voornamen": "A" * 70_000}
    assert ("TE_LANG", "persoon.voornamen") in reasons(validate("overdracht", record, now=NOW))


def test_validate_record_form_and_never_raises():
    data = bytes.fromhex((VECTORS / "overdracht_volledig.hex").read_text().strip())
    record_type, record = decode(data)
    assert validate(record_type, record, now=NOW) == []
    assert validate("overdracht", None) == [ValidationError("TYPE_ONGELDIG", "")]
    assert validate("bestaat_niet", {}) == [ValidationError("TYPE_ONBEKEND", "type")]
    assert validate(None, {}) == [ValidationError("TYPE_ONBEKEND", "type")]  # type: ignore[arg-type]
    bad = dict(record, occurred_at=datetime(2025, 3, 4))  # naive datetime: no zone, no meaning
    assert ("TIJD_ONGELDIG", "occurred_at") in reasons(validate("overdracht", bad, now=NOW))
    bad = dict(record, aanmelddatum=datetime(2021, 2, 1, tzinfo=timezone.utc))
    assert ("TYPE_ONGELDIG", "aanmelddatum") in reasons(validate("overdracht", bad, now=NOW))


def test_check_raises_all_errors():
    _, record = parse_json_event(valid("pauzeknop_stop"), now=NOW)
    record["reden"] = None
    record["gemeentecode"] = "GM1"
    with pytest.raises(InvalidEvent) as exc:
        check("pauzeknop", record, now=NOW)
    assert reasons(exc.value.errors) == {("REDEN_VERPLICHT", "reden"), ("GEMEENTECODE_ONGELDIG", "gemeentecode")}


def test_statusbericht_rules():
    obj = {k: v for k, v in valid("statusbericht").items() if k != "type"}
    json_to_record("statusbericht", obj, now=NOW)
    with pytest.raises(InvalidEvent) as exc:
        json_to_record("statusbericht", dict(obj, status="INVALID"), now=NOW)
    assert ("REDEN_VERPLICHT", "reden") in reasons(exc.value.errors)
    with pytest.raises(InvalidEvent) as exc:
        json_to_record("statusbericht", dict(obj, status="VERWERKT"), now=NOW)
    assert ("VELD_ONTBREEKT", "ack_id") in reasons(exc.value.errors)
    with pytest.raises(InvalidEvent) as exc:
        json_to_record("statusbericht", dict(obj, reden="bsn 999990019"), now=NOW)
    assert ("REDENCODE_ONGELDIG", "reden") in reasons(exc.value.errors)
    with pytest.raises(InvalidEvent) as exc:
        json_to_record("statusbericht", dict(obj, status="DUPLICATE"), now=NOW)
    assert ("REDEN_VERPLICHT", "reden") in reasons(exc.value.errors)
    with pytest.raises(InvalidEvent) as exc:
        json_to_record("statusbericht", dict(obj, doelen=[]), now=NOW)
    assert ("VELD_ONTBREEKT", "doelen") in reasons(exc.value.errors)
    with pytest.raises(InvalidEvent) as exc:
        json_to_record("statusbericht", dict(obj, event_id=None), now=NOW)
    assert ("VELD_ONTBREEKT", "event_id") in reasons(exc.value.errors)
    # Unreadable input has no event id, yet still gets its INVALID receipt.
    json_to_record("statusbericht", dict(obj, status="INVALID", reden="MARKER_ONGELDIG", event_id=None, doelen=[]),
                   now=NOW)


def test_routed_subject_must_look_like_a_pseudonym():
    obj = {k: v for k, v in valid("gerouteerde_overdracht").items() if k != "type"}
    for subject in ("999990019999990019", "testa@example.org", "kort"):
        with pytest.raises(InvalidEvent) as exc:
            json_to_record("gerouteerde_overdracht", dict(obj, subject=subject), now=NOW)
        assert ("PSEUDONIEM_ONGELDIG", "subject") in reasons(exc.value.errors)


def test_encode_refuses_wrong_shape_without_domain_rules():
    _, record = parse_json_event(valid("erkenning"), now=NOW)
    encode("erkenning", dict(record, gemeentecode="GM1"))  # shape fine: domain rules are validate's
    with pytest.raises(InvalidEvent) as exc:
        encode("erkenning", dict(record, extra=1))
    assert exc.value.reason == "VELD_ONBEKEND"
    with pytest.raises(InvalidEvent):
        encode("erkenning", dict(record, volgnummer="3"))
