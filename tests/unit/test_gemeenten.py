"""Gemeente reference data and the herindeling resolver (herstelbus.core.gemeenten)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herstelbus.core import gemeenten
from herstelbus.core.gemeenten import (
    GEEN_OPVOLGER,
    NOG_NIET_BESTAAND,
    ONBEKEND,
    ONGELDIG_FORMAAT,
    ONGELDIGE_DATUM,
    Resolved,
    Split,
    Unknown,
    gemeenten_on,
    get,
    resolve,
)

# Gemeenten existing on each date, per the CBS lists (schemas/reference/README.md).
EXPECTED_COUNTS = {
    date(2018, 12, 31): 380,
    date(2019, 1, 1): 355,
    date(2020, 1, 1): 355,
    date(2021, 1, 1): 352,
    date(2022, 1, 1): 345,
    date(2022, 3, 23): 345,
    date(2022, 3, 24): 344,  # Weesp into Amsterdam
    date(2023, 1, 1): 342,
    date(2024, 1, 1): 342,
    date(2025, 1, 1): 342,
    date(2026, 1, 1): 342,
    date(2026, 12, 31): 342,
}


@pytest.fixture
def reference_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point the loader at a scratch directory; restore the real data afterwards."""
    monkeypatch.setenv(gemeenten.REFERENCE_DIR_ENV, str(tmp_path))
    gemeenten._tabel.cache_clear()
    yield tmp_path
    gemeenten._tabel.cache_clear()


def _write(directory: Path, *rows: str) -> None:
    header = ",".join(gemeenten.KOLOMMEN)
    (directory / gemeenten.BESTAND).write_text("\n".join((header, *rows)) + "\n", encoding="utf-8")


def _alle() -> tuple[gemeenten.Gemeente, ...]:
    return tuple(gemeenten._tabel().values())


def _get(code: str) -> gemeenten.Gemeente:
    g = get(code)
    assert g is not None, code
    return g


# --- the data ------------------------------------------------------------------------------


@pytest.mark.parametrize(("on", "count"), sorted(EXPECTED_COUNTS.items()))
def test_count_of_gemeenten_on_date(on: date, count: int) -> None:
    assert len(gemeenten_on(on)) == count


def test_reference_data_is_read_from_the_repo_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(gemeenten.REFERENCE_DIR_ENV, raising=False)
    assert (
        gemeenten.reference_dir() == Path(__file__).resolve().parents[2] / "schemas" / "reference"
    )


def test_every_dissolved_gemeente_has_an_opvolger_existing_on_its_einddatum() -> None:
    dissolved = [g for g in _alle() if g.einddatum is not None]
    assert len(dissolved) == 52
    for g in dissolved:
        assert g.opvolgers, g.code
        for o in g.opvolgers:
            opvolger = get(o)
            assert opvolger is not None and opvolger.bestaat_op(g.einddatum), (g.code, o)


def test_existing_gemeenten_have_no_opvolgers() -> None:
    assert all(not g.opvolgers for g in _alle() if g.einddatum is None)


def test_each_code_has_one_well_ordered_period() -> None:
    codes = [g.code for g in _alle()]
    assert len(codes) == len(set(codes))
    for g in _alle():
        if g.begindatum and g.einddatum:
            assert g.begindatum < g.einddatum, g.code


def test_successor_chains_terminate() -> None:
    alle = _alle()
    for g in alle:
        seen = {g.code}
        frontier = list(g.opvolgers)
        for _ in range(len(alle)):
            if not frontier:
                break
            assert seen.isdisjoint(frontier), f"cycle in the chain from {g.code}"
            seen.update(frontier)
            frontier = [o for code in frontier for o in _get(code).opvolgers]
        assert not frontier, f"chain from {g.code} does not end"


def test_splits_are_exactly_winsum_and_haaren() -> None:
    splits = {g.code: g.opvolgers for g in _alle() if len(g.opvolgers) > 1}
    assert splits == {
        "GM0053": ("GM1966", "GM1969"),
        "GM0788": ("GM0757", "GM0824", "GM0855", "GM0865"),
    }


def test_get() -> None:
    weesp = get("GM0457")
    assert weesp is not None
    assert (weesp.naam, weesp.einddatum, weesp.opvolgers) == (
        "Weesp",
        date(2022, 3, 24),
        ("GM0363",),
    )
    assert get("GM9999") is None
    assert get(None) is None  # type: ignore[arg-type]


def test_gemeenten_on_is_sorted_and_all_exist() -> None:
    on = date(2024, 6, 1)
    result = gemeenten_on(on)
    assert [g.code for g in result] == sorted(g.code for g in result)
    assert all(g.bestaat_op(on) for g in result)
    assert gemeenten_on("2024-06-01") == ()  # type: ignore[arg-type]


# --- resolve -------------------------------------------------------------------------------


def test_merger_resolves_to_opvolger() -> None:
    assert resolve("GM0457", date(2022, 6, 1)) == Resolved(
        code="GM0363", naam="Amsterdam", requested_code="GM0457", via=("GM0457", "GM0363")
    )


def test_same_code_before_the_merger_resolves_to_itself() -> None:
    assert resolve("GM0457", date(2022, 3, 23)) == Resolved(
        "GM0457", "Weesp", "GM0457", ("GM0457",)
    )


def test_herindelingsdatum_itself_belongs_to_the_opvolger() -> None:
    weesp = resolve("GM0457", date(2022, 3, 24))
    brielle = resolve("GM0501", date(2023, 1, 1))
    assert isinstance(weesp, Resolved) and weesp.code == "GM0363"
    assert isinstance(brielle, Resolved) and brielle.code == "GM1992"


def test_merger_into_a_new_gemeente() -> None:
    r = resolve("GM0398", date(2024, 2, 1))
    assert r == Resolved("GM1980", "Dijk en Waard", "GM0398", ("GM0398", "GM1980"))


def test_existing_gemeente_resolves_to_itself() -> None:
    assert resolve("GM0363", date(2025, 5, 5)) == Resolved(
        "GM0363", "Amsterdam", "GM0363", ("GM0363",)
    )


def test_haarlemmerliede_is_a_merger_not_a_split() -> None:
    r = resolve("GM0393", date(2020, 1, 1))
    assert isinstance(r, Resolved) and r.code == "GM0394"


def test_split_resolves_to_split() -> None:
    assert resolve("GM0788", date(2021, 6, 1)) == Split(
        requested_code="GM0788", successors=("GM0757", "GM0824", "GM0855", "GM0865")
    )
    assert resolve("GM0053", date(2019, 1, 1)) == Split("GM0053", ("GM1966", "GM1969"))


def test_split_code_before_the_split_resolves_to_itself() -> None:
    assert resolve("GM0788", date(2020, 12, 31)) == Resolved(
        "GM0788", "Haaren", "GM0788", ("GM0788",)
    )


def test_unknown_code() -> None:
    assert resolve("GM9999", date(2024, 1, 1)) == Unknown("GM9999", ONBEKEND)


@pytest.mark.parametrize(
    "code", ["", "0363", "gm0363", "GM363", "GM03630", " GM0363", "GM0363\n", "GM٠٣٦٣"]
)
def test_malformed_code(code: str) -> None:
    assert resolve(code, date(2024, 1, 1)) == Unknown(code, ONGELDIG_FORMAAT)


def test_new_gemeente_before_it_existed() -> None:
    assert resolve("GM1992", date(2022, 12, 31)) == Unknown("GM1992", NOG_NIET_BESTAAND)


def test_datetime_is_taken_as_its_calendar_day() -> None:
    r = resolve("GM0457", datetime(2022, 3, 24, 0, 30))
    assert isinstance(r, Resolved) and r.code == "GM0363"


def test_not_a_date() -> None:
    not_a_date: Any = "2024-01-01"
    not_a_code: Any = None
    assert resolve("GM0363", not_a_date) == Unknown("GM0363", ONGELDIGE_DATUM)
    assert resolve(not_a_code, date(2024, 1, 1)) == Unknown("None", ONGELDIG_FORMAAT)


@given(code=st.one_of(st.text(), st.from_regex(r"GM[0-9]{4}", fullmatch=True)), on=st.dates())
def test_resolve_never_raises(code: str, on: date) -> None:
    r = resolve(code, on)
    assert isinstance(r, Resolved | Split | Unknown)
    assert r.requested_code == code
    if isinstance(r, Resolved):
        assert r.via[0] == code and r.via[-1] == r.code
        assert _get(r.code).bestaat_op(on)
    if isinstance(r, Split):
        assert len(r.successors) > 1
        assert all(_get(s).bestaat_op(on) for s in r.successors)


@given(code=st.from_regex(r"GM[0-9]{4}", fullmatch=True), on=st.datetimes())
def test_resolve_never_raises_on_datetimes(code: str, on: datetime) -> None:
    assert isinstance(resolve(code, on), Resolved | Split | Unknown)


# --- loading and chains, on small synthetic data -------------------------------------------


def test_chain_is_followed_and_recorded(reference_dir: Path) -> None:
    _write(
        reference_dir,
        "GM0001,A,,2019-01-01,GM0002",
        "GM0002,B,2019-01-01,2021-01-01,GM0003",
        "GM0003,C,2021-01-01,,",
    )
    assert resolve("GM0001", date(2022, 1, 1)) == Resolved(
        "GM0003", "C", "GM0001", ("GM0001", "GM0002", "GM0003")
    )
    assert resolve("GM0001", date(2020, 1, 1)) == Resolved(
        "GM0002", "B", "GM0001", ("GM0001", "GM0002")
    )


def test_split_parts_that_merge_again_resolve(reference_dir: Path) -> None:
    _write(
        reference_dir,
        "GM0001,A,,2019-01-01,GM0002 GM0003",
        "GM0002,B,,2021-01-01,GM0004",
        "GM0003,C,,2021-01-01,GM0004",
        "GM0004,D,2021-01-01,,",
    )
    assert isinstance(resolve("GM0001", date(2020, 1, 1)), Split)
    r = resolve("GM0001", date(2021, 1, 1))
    assert isinstance(r, Resolved) and r.code == "GM0004" and r.via[0] == "GM0001"


def test_split_after_a_merger_names_the_current_parts(reference_dir: Path) -> None:
    _write(
        reference_dir,
        "GM0001,A,,2019-01-01,GM0002",
        "GM0002,B,,2021-01-01,GM0003 GM0004",
        "GM0003,C,,,",
        "GM0004,D,,,",
    )
    assert resolve("GM0001", date(2022, 1, 1)) == Split("GM0001", ("GM0003", "GM0004"))


def test_env_override_and_inconsistent_data_fails_at_load(reference_dir: Path) -> None:
    _write(reference_dir, "GM0001,A,,2019-01-01,GM0002", "GM0002,B,2020-01-01,,")
    with pytest.raises(ValueError, match="does not exist on 2019-01-01"):
        resolve("GM0001", date(2022, 1, 1))


@pytest.mark.parametrize(
    "rows",
    [
        ("GM0001,A,,,", "GM0001,A,,,"),  # listed twice
        ("GM0001,A,2020-01-01,2019-01-01,GM0002", "GM0002,B,,,"),  # ends before it begins
        ("GM0001,A,,2019-01-01,GM0009",),  # opvolger not in the table
        ("GM0001,A,,,GM0002", "GM0002,B,,,"),  # opvolger while still existing
        ("GM001,A,,,",),  # malformed code
    ],
)
def test_bad_reference_data_is_rejected(reference_dir: Path, rows: tuple[str, ...]) -> None:
    _write(reference_dir, *rows)
    with pytest.raises(ValueError):
        gemeenten_on(date(2022, 1, 1))


def test_dissolved_without_opvolger_is_geen_opvolger(reference_dir: Path) -> None:
    _write(
        reference_dir, "GM0001,A,,2020-01-01,", "GM0002,B,,2019-01-01,GM0001 GM0003", "GM0003,C,,,"
    )
    assert resolve("GM0001", date(2019, 12, 31)) == Resolved("GM0001", "A", "GM0001", ("GM0001",))
    assert resolve("GM0001", date(2020, 1, 1)) == Unknown("GM0001", GEEN_OPVOLGER)
    assert resolve("GM0002", date(2019, 6, 1)) == Split("GM0002", ("GM0001", "GM0003"))
    # Once a branch of the split ends without opvolger, the rest cannot be routed either.
    assert resolve("GM0002", date(2021, 1, 1)) == Unknown("GM0002", GEEN_OPVOLGER)


def test_gemeenten_vanaf_includes_today_and_later_but_not_dissolved() -> None:
    from herstelbus.core.gemeenten import gemeenten_vanaf

    codes = {g.code for g in gemeenten_vanaf(date(2024, 6, 1))}
    assert len(codes) == 342
    assert "GM0363" in codes and "GM0457" not in codes  # Weesp merged into Amsterdam in 2022
    assert len(gemeenten_vanaf(date(2019, 1, 1))) > len(gemeenten_vanaf(date(2024, 1, 1)))
