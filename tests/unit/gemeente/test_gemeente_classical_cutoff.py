"""HERSTELBUS_GEMEENTE_CLASSICAL_UNTIL: after its move to the hybrid suite a gemeente refuses new
classical key epochs (the keyring's ``classical_until``); a bad value is one clear line."""

from __future__ import annotations

import datetime as dt

import pytest

from herstelbus.connectors.gemeente.sdk import ConfigFout, _classical_until


def test_unset_means_no_cutoff(monkeypatch) -> None:
    monkeypatch.delenv("HERSTELBUS_GEMEENTE_CLASSICAL_UNTIL", raising=False)
    assert _classical_until() is None


def test_an_aware_time_is_the_cutoff(monkeypatch) -> None:
    monkeypatch.setenv("HERSTELBUS_GEMEENTE_CLASSICAL_UNTIL", "2027-01-01T00:00:00+01:00")
    assert _classical_until() == dt.datetime(2026, 12, 31, 23, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("value", ["2027-01-01T00:00:00", "next year"])
def test_a_naive_or_unreadable_time_is_refused(monkeypatch, value: str) -> None:
    monkeypatch.setenv("HERSTELBUS_GEMEENTE_CLASSICAL_UNTIL", value)
    with pytest.raises(ConfigFout, match="HERSTELBUS_GEMEENTE_CLASSICAL_UNTIL"):
        _classical_until()
