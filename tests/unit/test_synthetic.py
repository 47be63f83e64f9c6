"""The synthetic UHT batch: reproducible, valid where meant to be, and full of the edge cases."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import pytest

from herstelbus.connectors.uht.synthetic import DISSOLVED, SPLIT, generate
from herstelbus.core.contracts import InvalidEvent, parse_json_event
from herstelbus.core.gemeenten import gemeenten_on


@pytest.fixture(scope="module")
def batch() -> list[dict]:
    return list(generate(3000, seed=7))


def test_same_seed_same_events_other_seed_other_events() -> None:
    first = [json.dumps(e, sort_keys=True) for e in generate(300, seed=3)]
    assert first == [json.dumps(e, sort_keys=True) for e in generate(300, seed=3)]
    assert first != [json.dumps(e, sort_keys=True) for e in generate(300, seed=4)]


def test_every_event_is_valid_except_the_deliberately_broken(batch: list[dict]) -> None:
    reasons = Counter()
    for event in batch:
        try:
            parse_json_event(event)
        except InvalidEvent as invalid:
            reasons.update({e.reason for e in invalid.errors})
    assert set(reasons) == {"BSN_ONGELDIG"} and 0 < reasons["BSN_ONGELDIG"] < len(batch) * 0.02


def test_all_gemeenten_and_every_edge_case_appear(batch: list[dict]) -> None:
    existing = {g.code for g in gemeenten_on(date(2025, 1, 6))}
    overdrachten = [e for e in batch if e["type"] == "overdracht"]
    assert existing <= {e["gemeentecode"] for e in overdrachten}
    codes = Counter(e["gemeentecode"] for e in overdrachten)
    assert any(codes[c] for c in DISSOLVED) and codes[SPLIT] and codes["GM9999"]
    assert {"VOW", "BUITENLAND"} <= {e["woonsituatie"] for e in overdrachten}
    assert any(e["contactwens"] == "NEE" for e in overdrachten)
    assert any(e["urgentie"]["urgent"] for e in overdrachten)
    assert any(e["toeslagpartner"] and e["toeslagpartner"]["gemeentecode"] != e["gemeentecode"]
               for e in overdrachten)
    assert {e["rol"] for e in batch if e["type"] == "pauzeknop"} == {"OUDER", "TOESLAGPARTNER"}
    assert {e["actie"] for e in batch if e["type"] == "pauzeknop"} == {"START", "STOP"}
    ids = Counter(e["event_id"] for e in batch)
    assert any(n == 2 for n in ids.values())  # UHT publishing an event twice
