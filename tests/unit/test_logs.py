"""No personal data reaches a log line, whichever way it is passed."""

from __future__ import annotations

import json
import logging

import pytest

from herstelbus.logs import REDACTED, configure_logging, get_logger, refuse_personal_data
from herstelbus.settings import Settings

# A fictional person; the BSN passes the 11-proef so a real-looking one is what we guard against.
BSN = "999990019"
PERSON = {
    "bsn": BSN, "voornamen": "Jantine Fictief", "achternaam": "Testpersoon", "geboortedatum": "1984-02-29",
    "postcode": "1234 AB", "telefoon": "0612345678", "email": "j.testpersoon@example.org",
}


def test_every_personal_data_key_is_refused() -> None:
    out = refuse_personal_data(None, "info", {"event": "overdracht ontvangen", **PERSON})
    for key in PERSON:
        assert out[key] == REDACTED
    assert out["event"] == "overdracht ontvangen"


def test_nested_and_compound_keys_are_refused() -> None:
    out = refuse_personal_data(None, "info", {
        "event": "x", "toeslagpartner_bsn": BSN, "persoon.achternaam": "Testpersoon",
        "record": {"adres": {"straat": "Nergensstraat"}, "gemeentecode": "GM0363", "items": [{"naam": "A"}]},
    })
    assert out["toeslagpartner_bsn"] == REDACTED
    assert out["persoon.achternaam"] == REDACTED
    assert out["record"]["adres"] == REDACTED
    assert out["record"]["items"][0]["naam"] == REDACTED
    assert out["record"]["gemeentecode"] == "GM0363"  # not personal: routing metadata stays readable


def test_bsn_and_email_inside_text_are_refused_but_ids_are_not() -> None:
    out = refuse_personal_data(None, "info", {
        "event": f"kon {BSN} niet routeren, mail {PERSON['email']}",
        "event_id": "3f1c2b9a-1d2e-4f00-9a7b-123456789012", "offset": 999990019, "count": "123456789",
    })
    assert BSN not in out["event"] and PERSON["email"] not in out["event"]
    assert out["event_id"] == "3f1c2b9a-1d2e-4f00-9a7b-123456789012"
    assert out["offset"] == 999990019  # numbers are offsets and counts, not text to scan
    assert out["count"] == "123456789"  # fails the 11-proef: not a BSN


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_structlog_and_stdlib_loggers_emit_no_personal_data(fmt: str, capsys: pytest.CaptureFixture) -> None:
    configure_logging(Settings(log_format=fmt, log_level="DEBUG"))
    get_logger("herstelbus.test").info("overdracht", event_id="e-1", **PERSON)
    logging.getLogger("faust.agent").warning("record for %s failed", BSN)  # a library logging a value
    err = capsys.readouterr().err
    assert "e-1" in err and "overdracht" in err
    for value in PERSON.values():
        assert value not in err
    if fmt == "json":
        lines = [json.loads(line) for line in err.strip().splitlines()]
        assert lines[0]["bsn"] == REDACTED and lines[0]["event_id"] == "e-1"
        assert lines[1]["logger"] == "faust.agent" and REDACTED in lines[1]["event"]
