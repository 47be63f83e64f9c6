"""Routing memory (rule 3): pseudonymous keys per person and per dossier, and a pure merge."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

import pytest

from herstelbus.core.privacy import InvalidIdentifier, PseudonymSecret, pseudonymise, pseudonymise_dossier
from herstelbus.core.routing import EERDER_BETROKKEN, Target, decide, eerder, memory_keys, remember
from routing_helpers import SECRET_B64, event

SECRET = PseudonymSecret.from_base64(SECRET_B64)


@pytest.mark.parametrize("record_type", ["overdracht", "pauzeknop", "erkenning"])
def test_memory_keys_are_pseudonyms_never_the_bsn_or_dossiernummer(record_type) -> None:
    record = event(record_type)
    subject, dossier = memory_keys(record_type, record, SECRET)
    assert subject == pseudonymise(record["persoon"]["bsn"], SECRET) and subject.startswith("p1:")
    assert dossier.startswith("d1:") and len(dossier) == 35
    plain = [record["persoon"]["bsn"], record["dossiernummer"], record["dossiernummer"].lower()]
    for key in (subject, dossier):
        assert not any(value in key for value in plain)
    assert memory_keys(record_type, record, SECRET) == (subject, dossier)  # stable: table keys
    assert memory_keys(record_type, record, PseudonymSecret.generate()) != (subject, dossier)  # keyed


def test_toeslagpartner_shares_the_dossier_key_not_the_subject_key() -> None:
    ouder = event("erkenning")  # 999990019, dossier UHT-2021-000123
    partner = event("pauzeknop")  # rol TOESLAGPARTNER: 999990020, the same dossier
    assert memory_keys("erkenning", ouder, SECRET)[1] == memory_keys("pauzeknop", partner, SECRET)[1]
    assert memory_keys("erkenning", ouder, SECRET)[0] != memory_keys("pauzeknop", partner, SECRET)[0]


def test_dossier_pseudonym_is_the_documented_hmac_and_domain_separated() -> None:
    raw = base64.b64decode(SECRET_B64)
    mac = hmac.new(raw, b"herstelbus/dossier-pseudonym/v1\x00UHT-2021-000123", hashlib.sha256).digest()
    expected = "d1:" + base64.b32encode(mac[:20]).decode().lower().rstrip("=")
    assert pseudonymise_dossier("UHT-2021-000123", SECRET) == expected
    # A dossiernummer that looks like a BSN still gets another pseudonym than that BSN.
    assert pseudonymise_dossier("999990019", SECRET)[3:] != pseudonymise("999990019", SECRET)[3:]


@pytest.mark.parametrize("bad", ["", " UHT-1", "UHT 1", "x" * 41, "UHT-1\n", "ÜHT-1", None])
def test_bad_dossiernummer_refused_without_echo(bad) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        pseudonymise_dossier(bad, SECRET)  # type: ignore[arg-type]
    if bad and bad.strip():
        assert bad.strip() not in str(exc.value) and bad.strip() not in repr(exc.value)


def test_remember_is_a_pure_merge_of_the_targets() -> None:
    current = frozenset({"GM0599"})
    targets = (Target("GM0363", "HERINDELING", "GM0457", "GM0363"), Target("GM0599", EERDER_BETROKKEN, "GM0599"))
    assert remember(current, targets) == {"GM0363", "GM0599"}  # the gemeente as it exists now
    assert current == {"GM0599"}
    assert remember(None, ()) == frozenset()
    assert eerder(frozenset({"GM0363"}), None, frozenset({"GM0014"})) == {"GM0363", "GM0014"}


def test_a_pause_for_the_partner_reaches_the_parents_gemeente_after_a_merger() -> None:
    """Overdracht to Weesp in 2021; Weesp joins Amsterdam; in 2023 the partner's pause (same dossier,
    another person, another gemeente) reaches Amsterdam as eerder betrokken."""
    memory: dict[str, frozenset[str]] = {}
    overdracht = event("overdracht", gemeentecode="GM0457")
    besluit = decide("overdracht", overdracht, on=dt.date(2021, 6, 1))
    for key in memory_keys("overdracht", overdracht, SECRET):
        memory[key] = remember(memory.get(key), besluit.targets)

    pauze = event("pauzeknop")  # the toeslagpartner, living in GM0599
    keys = memory_keys("pauzeknop", pauze, SECRET)
    besluit = decide("pauzeknop", pauze, on=dt.date(2023, 5, 1), eerder=eerder(*(memory.get(k) for k in keys)))
    assert besluit.targets[1:] == (Target("GM0363", EERDER_BETROKKEN, "GM0457", "GM0363"),)
    assert besluit.gemeentecodes == ("GM0599", "GM0363")
