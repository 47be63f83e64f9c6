"""`herstelbus uht publish`'s pure half: JSON Lines and CSV read alike, line numbers, duplicates,
and a report that never holds a value from the file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from herstelbus.cli import main
from herstelbus.connectors.uht import bestand
from herstelbus.connectors.uht.synthetic import generate
from herstelbus.core.contracts import parse_json_event


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return list(generate(300, seed=2))  # holds deliberate duplicates and invalid BSNs


def write_jsonl(path: Path, events: list[dict], extra: list[str] = ()) -> Path:
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events) + "".join(extra))
    return path


def write_csv(path: Path, events: list[dict]) -> Path:
    rows = [bestand.csv_row(e) for e in events]
    columns = sorted({c for row in rows for c in row}, key=lambda c: (c != "type", c))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _expected(events: list[dict]) -> tuple[set[str], int, int]:
    valid, rejected, duplicates = set(), 0, 0
    for e in events:
        try:
            parse_json_event(e)
        except Exception:
            rejected += 1
            continue
        if e["event_id"] in valid:
            duplicates += 1
        valid.add(e["event_id"])
    return valid, rejected, duplicates


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_report_counts_and_second_pass_yields_exactly_the_valid_events_once(tmp_path, events, fmt) -> None:
    path = (write_jsonl if fmt == "jsonl" else write_csv)(tmp_path / f"e.{fmt}", events)
    rapport = bestand.valideer(path)
    valid, rejected, duplicates = _expected(events)
    assert (rapport.gelezen, rapport.geldig, len(rapport.afgewezen), len(rapport.dubbel)) == \
        (len(events), len(valid), rejected, duplicates)
    assert rejected and duplicates  # the fixture really exercises both
    published = [str(r["event_id"]) for _, r in bestand.geldige(path, rapport)]
    assert sorted(published) == sorted(valid)
    assert {a.fouten for a in rapport.afgewezen} == {(("BSN_ONGELDIG", "persoon.bsn"),)}


def test_jsonl_and_csv_report_the_same_lines_shifted_by_the_header(tmp_path, events) -> None:
    j = bestand.valideer(write_jsonl(tmp_path / "e.jsonl", events))
    c = bestand.valideer(write_csv(tmp_path / "e.csv", events))
    assert [a.regel + 1 for a in j.afgewezen] == [a.regel for a in c.afgewezen]
    assert [(d + 1, f + 1) for d, f in j.dubbel] == c.dubbel
    assert j.per_type == c.per_type


def test_line_numbers_count_blank_lines_and_name_every_broken_rule(tmp_path, events) -> None:
    good = events[0]
    broken = dict(good, event_id="00000000-0000-4000-8000-000000000001", rol="OOM", volgnummer=0)
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + "{not json\n" + json.dumps(broken) + "\n"
                    + json.dumps({"type": "ontvangstbevestiging"}) + "\n")
    rapport = bestand.valideer(path)
    by_line = {a.regel: {r for r, _ in a.fouten} for a in rapport.afgewezen}
    assert set(by_line) == {3, 4, 5}
    assert by_line[3] == {"JSON_ONGELDIG"}
    assert {"ENUM_ONGELDIG", "BUITEN_BEREIK"} <= by_line[4]
    assert by_line[5] == {bestand.TYPE_NIET_VAN_UHT}
    assert rapport.gelezen == 4 and rapport.te_publiceren == {1}


def test_same_event_id_other_content_is_rejected_not_silently_dropped(tmp_path, events) -> None:
    first = next(e for e in events if e["type"] == "erkenning")
    other = dict(first, besluit="AFGEWEZEN" if first["besluit"] == "ERKEND" else "ERKEND")
    rapport = bestand.valideer(write_jsonl(tmp_path / "e.jsonl", [first, first, other]))
    assert rapport.dubbel == [(2, 1)]
    assert rapport.afgewezen == [bestand.Afwijzing(3, ((bestand.EVENT_ID_HERGEBRUIKT, "event_id"),))]
    assert rapport.te_publiceren == {1}


def test_csv_empty_cells_are_null_and_all_empty_nested_record_is_null(tmp_path, events) -> None:
    vow = next(e for e in events if e["type"] == "overdracht" and e["adres"] is not None)
    vow = dict(vow, woonsituatie="VOW", gemeentecode=None, adres=None, toeslagpartner=None)
    row = bestand.csv_row(vow)
    row.update({"adres.straat": "", "adres.huisnummer": "", "adres.postcode": "", "adres.woonplaats": ""})
    obj = bestand.csv_object(row)
    assert obj["adres"] is None and obj["gemeentecode"] is None
    assert parse_json_event(obj) == parse_json_event(vow)
    assert isinstance(bestand.csv_object(bestand.csv_row(events[0]))["volgnummer"], int)


def test_csv_problems(tmp_path, events) -> None:
    path = write_csv(tmp_path / "e.csv", events[:3])
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, "overdracht,too,few"]) + "\n")
    rapport = bestand.valideer(path)
    assert rapport.afgewezen[-1] == bestand.Afwijzing(5, ((bestand.KOLOMMEN_ONGELDIG, ""),))
    (tmp_path / "geen_type.csv").write_text("persoon.bsn\n123456782\n")
    with pytest.raises(bestand.HerstelbusError, match="'type' column") as info:
        bestand.valideer(tmp_path / "geen_type.csv")
    assert "123456782" not in str(info.value)


def test_foreign_files_are_one_line_errors(tmp_path) -> None:
    (tmp_path / "e.txt").write_text("{}\n")
    (tmp_path / "bin.jsonl").write_bytes(b'{"a": 1}\n\xff\xfe\n')
    runner = CliRunner()
    for name, why in (("nope.jsonl", "no such file"), ("e.txt", "JSON Lines"), ("bin.jsonl", "line 2 is not UTF-8")):
        result = runner.invoke(main, ["uht", "publish", str(tmp_path / name), "--dry-run"])
        assert result.exit_code == 1, result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("herstelbus: error:")]
        assert len(errors) == 1 and why in errors[0] and not result.stdout


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_dry_run_report_holds_no_personal_data(tmp_path, events, fmt) -> None:
    # A BSN as an unknown column name and as a stray key must not leak either.
    rows = [dict(e) for e in events]
    rows[5]["999999990"] = "x"
    path = (write_jsonl if fmt == "jsonl" else write_csv)(tmp_path / f"e.{fmt}", rows)
    result = CliRunner().invoke(main, ["uht", "publish", str(path), "--dry-run"])
    assert result.exit_code == 1, result.output  # some rejected
    out = result.stdout + result.stderr
    assert "dry run: nothing published" in out and "line " in out
    personal = set()
    for e in events:
        for who in (e["persoon"], e.get("toeslagpartner") or {}):
            personal.update(v for k, v in who.items() if k in ("bsn", "voornamen", "achternaam", "geboortedatum"))
        personal.update(v for v in (e["dossiernummer"], e.get("email"), e.get("telefoon")) if v)
        if e.get("adres"):
            personal.update((e["adres"]["straat"], e["adres"]["postcode"]))
    personal.add("999999990")
    assert not [p for p in personal if p in out]


def test_all_valid_exits_0(tmp_path, events) -> None:
    seen: set[str] = set()
    clean = [e for e in events[:60]
             if _expected([e])[1] == 0 and not (e["event_id"] in seen or seen.add(e["event_id"]))]
    path = write_jsonl(tmp_path / "ok.jsonl", clean)
    result = CliRunner().invoke(main, ["uht", "publish", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "rejected         0" in result.stdout
