"""Deadlines: working days, configuration, once-only OVERDUE notices."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from herstelbus.core import contracts
from herstelbus.core.acks import (
    DEFAULT_TERMIJNEN, GEWEIGERD, ONTVANGEN, VERWERKT, Doel, Termijn, due, parse_termijnen, plus_werkdagen,
)
from herstelbus.core.routing.refs import KafkaRef

UTC = timezone.utc


def doel(event_type: str = "OVERDRACHT", routed_at: datetime = datetime(2025, 3, 3, 9, tzinfo=UTC), **kw) -> Doel:
    return Doel(event_id=str(uuid.uuid4()), gemeentecode="GM0363", event_type=event_type, routed_at=routed_at,
                doel=KafkaRef("gemeente.GM0363.events.v1", 0, 1), **kw)


@pytest.mark.parametrize(("start", "n", "end"), [
    (datetime(2025, 3, 3, 9, tzinfo=UTC), 2, datetime(2025, 3, 5, 9, tzinfo=UTC)),   # Mon -> Wed
    (datetime(2025, 3, 7, 9, tzinfo=UTC), 2, datetime(2025, 3, 11, 9, tzinfo=UTC)),  # Fri -> Tue
    (datetime(2025, 3, 8, 9, tzinfo=UTC), 1, datetime(2025, 3, 10, 9, tzinfo=UTC)),  # Sat -> Mon
    (datetime(2025, 3, 9, 9, tzinfo=UTC), 5, datetime(2025, 3, 14, 9, tzinfo=UTC)),  # Sun -> Fri
    (datetime(2025, 3, 3, 9, tzinfo=UTC), 10, datetime(2025, 3, 17, 9, tzinfo=UTC)),  # two weeks
    (datetime(2025, 3, 3, 9, tzinfo=UTC), 0, datetime(2025, 3, 3, 9, tzinfo=UTC)),
    (datetime(2026, 4, 24, 9, tzinfo=UTC), 1, datetime(2026, 4, 28, 9, tzinfo=UTC)),  # Fri -> Tue: Koningsdag
    (datetime(2026, 12, 24, 9, tzinfo=UTC), 2, datetime(2026, 12, 29, 9, tzinfo=UTC)),  # over both Kerstdagen
    (datetime(2025, 5, 2, 9, tzinfo=UTC), 2, datetime(2025, 5, 7, 9, tzinfo=UTC)),  # Bevrijdingsdag 2025 (lustrum)
    (datetime(2026, 5, 13, 9, tzinfo=UTC), 1, datetime(2026, 5, 15, 9, tzinfo=UTC)),  # Hemelvaartsdag
])
def test_working_days(start, n, end) -> None:
    assert plus_werkdagen(start, n) == end


def test_working_days_use_amsterdam_dates() -> None:
    # Friday 23:30 UTC is Saturday 00:30 in Amsterdam: counting starts from Monday.
    assert plus_werkdagen(datetime(2025, 3, 7, 23, 30, tzinfo=UTC), 1) == datetime(2025, 3, 9, 23, 30, tzinfo=UTC)


def test_default_deadlines() -> None:
    assert DEFAULT_TERMIJNEN["OVERDRACHT", True] == Termijn(ONTVANGEN, duur=timedelta(hours=4))
    assert DEFAULT_TERMIJNEN["OVERDRACHT", False] == Termijn(ONTVANGEN, werkdagen=2)
    assert DEFAULT_TERMIJNEN["PAUZEKNOP", False] == Termijn(VERWERKT, werkdagen=5)
    assert DEFAULT_TERMIJNEN["ERKENNING", False] == Termijn(VERWERKT, werkdagen=10)


def test_overdracht_over_a_weekend() -> None:
    friday = datetime(2025, 3, 7, 9, tzinfo=UTC)
    d = doel(routed_at=friday)
    assert due([d], datetime(2025, 3, 10, 9, tzinfo=UTC)) == []  # Monday: one working day later
    [late] = due([d], datetime(2025, 3, 11, 9, tzinfo=UTC))  # Tuesday 09:00: two
    assert late.deadline == datetime(2025, 3, 11, 9, tzinfo=UTC)
    assert (late.status["status"], late.status["reden"]) == ("OVERDUE", "ONTVANGEN_TE_LAAT")
    assert contracts.validate("statusbericht", late.status) == []


def test_urgent_overdracht_after_four_hours() -> None:
    d = doel(urgent=True)
    assert due([d], d.routed_at + timedelta(hours=3, minutes=59)) == []
    assert len(due([d], d.routed_at + timedelta(hours=4))) == 1


@pytest.mark.parametrize(("state", "late"), [("ROUTED", True), (ONTVANGEN, True), (VERWERKT, False),
                                             (GEWEIGERD, False)])
def test_pauzeknop_needs_verwerkt(state: str, late: bool) -> None:
    d = doel("PAUZEKNOP", state=state)
    got = due([d], d.routed_at + timedelta(days=30))
    assert bool(got) is late
    if late:
        assert got[0].status["reden"] == "VERWERKT_TE_LAAT"


def test_ontvangen_meets_the_overdracht_deadline() -> None:
    assert due([doel(state=ONTVANGEN)], datetime(2026, 1, 1, tzinfo=UTC)) == []


def test_overdue_once_per_event_gemeente_and_deadline() -> None:
    d = doel("ERKENNING")
    later = d.routed_at + timedelta(days=30)
    [first] = due([d], later)
    assert first.status["status_id"] == due([d], later + timedelta(hours=1))[0].status["status_id"]
    notified = replace(d, gemeld=d.gemeld | {first.termijn.status})
    assert due([notified], later + timedelta(days=1)) == []


def test_parse_deadlines() -> None:
    got = parse_termijnen("OVERDRACHT=ONTVANGEN/2s, ERKENNING:URGENT=VERWERKT/3wd")
    assert got["OVERDRACHT", False] == got["OVERDRACHT", True] == Termijn(ONTVANGEN, duur=timedelta(seconds=2))
    assert got["ERKENNING", True] == Termijn(VERWERKT, werkdagen=3)
    assert got["ERKENNING", False] == DEFAULT_TERMIJNEN["ERKENNING", False]
    assert parse_termijnen("") == DEFAULT_TERMIJNEN
    with pytest.raises(ValueError):
        parse_termijnen("OVERDRACHT=KLAAR/2d")
