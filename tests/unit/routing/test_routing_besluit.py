"""The routing decision, one test per rule (issue 5, rules 2-4 and 6)."""

from __future__ import annotations

import datetime as dt

import pytest

from herstelbus.core import gemeenten
from herstelbus.core.routing import (
    BUITENLAND, EERDER_BETROKKEN, GEEN_GEMEENTECODE, HERINDELING, SPLITSING, VOW, WOONGEMEENTE, Routed, Target,
    Unroutable, decide, peildatum,
)
from routing_helpers import event

IN_2023 = dt.date(2023, 5, 1)


def test_woongemeente() -> None:
    besluit = decide("overdracht", event("overdracht"), on=IN_2023)
    assert besluit == Routed(targets=(Target("GM0363", WOONGEMEENTE, "GM0363", None),), urgent=True)


def test_herindeling_names_the_original_and_its_opvolger() -> None:
    weesp = event("pauzeknop", gemeentecode="GM0457")
    assert decide("pauzeknop", weesp, on=IN_2023).targets == (Target("GM0363", HERINDELING, "GM0457", "GM0363"),)
    # The day before Amsterdam took over, Weesp was still itself.
    assert decide("pauzeknop", weesp, on=dt.date(2022, 3, 23)).targets == (
        Target("GM0457", WOONGEMEENTE, "GM0457", None),)


def test_split_is_unroutable() -> None:
    haaren = gemeenten.get("GM0788")
    assert haaren.naam == "Haaren" and haaren.einddatum == dt.date(2021, 1, 1) and len(haaren.opvolgers) == 4
    record = event("erkenning", gemeentecode="GM0788")
    assert decide("erkenning", record, on=dt.date(2021, 1, 1)) == Unroutable(SPLITSING)
    assert decide("erkenning", record, on=dt.date(2020, 12, 31)).targets[0].gemeentecode == "GM0788"


@pytest.mark.parametrize("code, on, reason", [
    ("GM9999", IN_2023, "ONBEKEND"),
    ("GM1992", dt.date(2022, 6, 1), "NOG_NIET_BESTAAND"),  # Voorne aan Zee exists from 2023
])
def test_unknown_code_is_unroutable_with_the_resolvers_reason(code, on, reason) -> None:
    assert decide("overdracht", event("overdracht", gemeentecode=code), on=on) == Unroutable(reason)


@pytest.mark.parametrize("woonsituatie", [VOW, BUITENLAND])
def test_vow_and_buitenland_have_no_woongemeente(woonsituatie) -> None:
    for code in (None, "GM0363"):  # a stale code does not make them live there
        record = event("overdracht", woonsituatie=woonsituatie, gemeentecode=code)
        assert decide("overdracht", record, on=IN_2023) == Unroutable(woonsituatie)


def test_no_gemeentecode() -> None:
    assert decide("pauzeknop", event("pauzeknop", gemeentecode=None), on=IN_2023) == Unroutable(GEEN_GEMEENTECODE)


@pytest.mark.parametrize("record_type", ["pauzeknop", "erkenning"])
def test_fan_out_to_eerder_betrokken_gemeenten(record_type) -> None:
    record = event(record_type, gemeentecode="GM0363")
    besluit = decide(record_type, record, on=IN_2023, eerder=frozenset({"GM0599", "GM0014", "GM0363"}))
    assert besluit.targets == (
        Target("GM0363", WOONGEMEENTE, "GM0363", None),  # woongemeente first, not twice
        Target("GM0014", EERDER_BETROKKEN, "GM0014", None),
        Target("GM0599", EERDER_BETROKKEN, "GM0599", None),
    )


def test_no_fan_out_for_an_overdracht() -> None:
    besluit = decide("overdracht", event("overdracht"), on=IN_2023, eerder=frozenset({"GM0599", "GM0014"}))
    assert besluit.gemeentecodes == ("GM0363",)
    vow = event("overdracht", woonsituatie=VOW, gemeentecode=None)
    assert decide("overdracht", vow, on=IN_2023, eerder=frozenset({"GM0599"})) == Unroutable(VOW)


def test_eerder_gemeente_merged_since_goes_to_its_opvolger() -> None:
    record = event("pauzeknop", gemeentecode="GM0599")
    besluit = decide("pauzeknop", record, on=IN_2023, eerder=frozenset({"GM0457"}))
    assert besluit.targets[1:] == (Target("GM0363", EERDER_BETROKKEN, "GM0457", "GM0363"),)
    # Weesp and Amsterdam both remembered: one record for Amsterdam, named as itself.
    both = decide("pauzeknop", record, on=IN_2023, eerder=frozenset({"GM0457", "GM0363"}))
    assert both.targets[1:] == (Target("GM0363", EERDER_BETROKKEN, "GM0363", None),)
    # Amsterdam is the woongemeente: Weesp's memory adds nothing.
    amsterdam = decide("pauzeknop", event("pauzeknop", gemeentecode="GM0363"), on=IN_2023,
                       eerder=frozenset({"GM0457"}))
    assert amsterdam.gemeentecodes == ("GM0363",)


@pytest.mark.parametrize("woonsituatie, code, reason", [
    (VOW, None, VOW), (BUITENLAND, None, BUITENLAND), ("BINNENLAND", None, GEEN_GEMEENTECODE),
    ("BINNENLAND", "GM9999", "ONBEKEND"), ("BINNENLAND", "GM0788", SPLITSING),
])
def test_no_woongemeente_but_eerder_betrokken_still_reaches_the_creditors(woonsituatie, code, reason) -> None:
    record = event("pauzeknop", woonsituatie=woonsituatie, gemeentecode=code)
    besluit = decide("pauzeknop", record, on=IN_2023, eerder=frozenset({"GM0599"}))
    assert besluit == Routed(targets=(Target("GM0599", EERDER_BETROKKEN, "GM0599", None),), unroutable_primary=reason)


def test_eerder_gemeente_split_since_is_skipped_not_guessed() -> None:
    record = event("erkenning", gemeentecode="GM0363")
    besluit = decide("erkenning", record, on=IN_2023, eerder=frozenset({"GM0788"}))
    assert besluit.gemeentecodes == ("GM0363",) and besluit.overgeslagen == (("GM0788", SPLITSING),)
    vow = event("erkenning", woonsituatie=VOW, gemeentecode=None)
    assert decide("erkenning", vow, on=IN_2023, eerder=frozenset({"GM0788"})) == Unroutable(VOW)


def test_urgent_flag_only_for_an_urgent_overdracht() -> None:
    assert decide("overdracht", event("overdracht"), on=IN_2023).urgent is True
    for urgentie in (None, {"urgent": False, "reden": None}):
        assert decide("overdracht", event("overdracht", urgentie=urgentie), on=IN_2023).urgent is False
    assert decide("pauzeknop", event("pauzeknop"), on=IN_2023).urgent is False


def test_order_does_not_depend_on_set_order() -> None:
    record = event("erkenning")
    codes = ["GM0599", "GM0014", "GM0457", "GM0344", "GM0034"]
    first = decide("erkenning", record, on=IN_2023, eerder=frozenset(codes))
    assert decide("erkenning", record, on=IN_2023, eerder=frozenset(reversed(codes))) == first
    assert list(first.gemeentecodes[1:]) == sorted(first.gemeentecodes[1:]) and first.overgeslagen == ()


def test_peildatum_is_the_dutch_calendar_day() -> None:
    # 23:30 UTC on New Year's Eve is already 1 January in the Netherlands: Brielle is Voorne aan Zee.
    record = event("overdracht", occurred_at="2022-12-31T23:30:00Z", gemeentecode="GM0501")
    assert peildatum(record) == dt.date(2023, 1, 1)
    assert decide("overdracht", record, on=peildatum(record)).targets == (
        Target("GM1992", HERINDELING, "GM0501", "GM1992"),)


def test_only_uht_events_are_routed() -> None:
    with pytest.raises(ValueError):
        decide("ontvangstbevestiging", {}, on=IN_2023)
