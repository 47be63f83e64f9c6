"""Per subject in sequence order; gaps and late events reported."""

from __future__ import annotations

from herstelbus.connectors.gemeente.resultaat import Geopend, Geweigerd, Positie, Weigercode
from herstelbus.connectors.gemeente.volgorde import Gat, Volgorde, orden

P = Positie("t", 0, 0)


def _ev(subject: str, seq: int, eid: str) -> Geopend:
    return Geopend(eid, "pauzeknop", "GM0363", subject, "WOONGEMEENTE", seq, {}, {}, "normaal", False, None, P)


def test_each_subject_is_put_in_sequence_order_in_its_own_slots() -> None:
    refused = Geweigerd(None, Weigercode.UNDECODABLE, None, None, None, P)
    batch = [_ev("a", 3, "a3"), _ev("b", 2, "b2"), refused, _ev("a", 1, "a1"), _ev("b", 1, "b1"), _ev("a", 2, "a2")]
    assert [getattr(r, "event_id", None) for r in orden(batch)] == ["a1", "b1", None, "a2", "b2", "a3"]


def test_gap_and_late_event_are_reported_first_event_sets_the_baseline() -> None:
    v = Volgorde()
    assert v.pas_toe("e1", "p", 4) is None  # joined the dossier midway: no gap
    assert v.pas_toe("e2", "p", 5) is None
    assert v.pas_toe("e3", "p", 7) == Gat("e3", "p", 6, 7, "gat")
    assert v.pas_toe("e4", "p", 6) == Gat("e4", "p", 8, 6, "te_laat")
    assert v.laatste == {"p": 7}
    assert Volgorde({"q": 1}).pas_toe("e5", "q", 3) == Gat("e5", "q", 2, 3, "gat")
