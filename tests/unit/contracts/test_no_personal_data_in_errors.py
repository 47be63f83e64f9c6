"""No error, in its str, repr, args or chained context, ever carries a value from the input."""

from __future__ import annotations

import copy
import json

import pytest

from herstelbus.core.contracts import (
    ContractError,
    InvalidEvent,
    cloudevent_headers,
    decode,
    encode,
    parse_cloudevent_headers,
    parse_json_event,
    validate,
)
from contracts_helpers import NOW, valid

BSN = "999990018"  # fails the 11-proef
GOOD_BSN = "999990019"
NAME = "Fictivia\u0007Proefpersoonsma"
POSTCODE = "1234 SA"
EMAIL = "fictivia.proef@@example.org"
SECRETS = [BSN, GOOD_BSN, "Fictivia", "Proefpersoonsma", "1234 SA", "fictivia.proef", "example.org"]


def bad_event() -> dict:
    obj = copy.deepcopy(valid("overdracht_volledig"))
    obj["persoon"]["bsn"] = BSN
    obj["persoon"]["voornamen"] = NAME
    obj["toeslagpartner"]["bsn"] = GOOD_BSN  # same as parent after the next line
    obj["persoon"]["achternaam"] = "Proefpersoonsma" * 20  # too long
    obj["adres"]["postcode"] = POSTCODE
    obj["email"] = EMAIL
    obj["telefoon"] = GOOD_BSN
    obj[GOOD_BSN] = "Fictivia"  # a key that is a BSN
    obj["fictivia.proef@example.org"] = 1
    obj["adres"]["Proefpersoonsma"] = GOOD_BSN
    return obj


def everything_said(err: BaseException) -> str:
    parts = [str(err), repr(err), repr(err.args)]
    if isinstance(err, InvalidEvent):
        parts += [str(e) for e in err.errors] + [repr(e) for e in err.errors]
        parts.append(repr(err.errors))
    for chained in (err.__cause__, err.__context__):
        if chained is not None:
            parts.append(everything_said(chained))
    return "\n".join(parts)


def assert_clean(err: BaseException) -> None:
    said = everything_said(err)
    for secret in SECRETS:
        assert secret not in said, f"{secret!r} leaked into an error"
    assert err.__cause__ is None and err.__context__ is None


def test_invalid_event_errors_hold_no_values():
    obj = bad_event()
    with pytest.raises(InvalidEvent) as exc:
        parse_json_event(obj, now=NOW)
    err = exc.value
    reasons = {e.reason for e in err.errors}
    assert {"BSN_ONGELDIG", "TEKEN_ONGELDIG", "TE_LANG", "POSTCODE_ONGELDIG", "EMAIL_ONGELDIG",
            "TELEFOON_ONGELDIG", "VELD_ONBEKEND"} <= reasons
    assert_clean(err)


def test_invalid_json_line_holds_no_values():
    line = json.dumps(bad_event())[:-3]  # broken JSON: json's own message would quote the text
    with pytest.raises(InvalidEvent) as exc:
        parse_json_event(line, now=NOW)
    assert exc.value.reason == "JSON_ONGELDIG"
    assert_clean(exc.value)


def test_validate_list_holds_no_values():
    _, record = parse_json_event(valid("overdracht_volledig"), now=NOW)
    record["persoon"] = dict(record["persoon"], bsn=BSN, achternaam="Proefpersoonsma\n")
    record["adres"] = dict(record["adres"], postcode=POSTCODE)
    errs = validate("overdracht", record, now=NOW)
    assert len(errs) == 3
    said = repr(errs) + str([str(e) for e in errs])
    for secret in SECRETS:
        assert secret not in said


def test_encode_and_decode_errors_hold_no_values():
    _, record = parse_json_event(valid("overdracht_volledig"), now=NOW)
    record["persoon"] = dict(record["persoon"], bsn=12345)  # wrong type: shape check refuses
    with pytest.raises(ContractError) as exc:
        encode("overdracht", record)
    assert_clean(exc.value)
    good = encode("overdracht", parse_json_event(valid("overdracht_volledig"), now=NOW)[1])
    for broken in (good[:40], good[:10] + b"\xff" * 30, good + b"Fictivia"):
        with pytest.raises(ContractError) as exc:
            decode(broken)
        assert_clean(exc.value)


def test_envelope_errors_hold_no_values():
    from datetime import datetime, timezone

    with pytest.raises(ContractError) as exc:
        cloudevent_headers("overdracht", id="3f2a9c1e-7b4d-4e8a-9f10-2c3d4e5f6a7b",
                           source="urn:nld:oin:00000001234567890000:systeem:uht",
                           time=datetime(2025, 1, 1, tzinfo=timezone.utc), subject=GOOD_BSN)
    assert exc.value.reason == "SUBJECT_ONGELDIG"
    assert_clean(exc.value)
    with pytest.raises(ContractError) as exc:
        parse_cloudevent_headers([("ce_subject", EMAIL.encode())])
    assert_clean(exc.value)
