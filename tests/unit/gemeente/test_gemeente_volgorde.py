"""Per dossier in sequence order (volgnummer counts per dossier, whoever the event is about); gaps and
late events reported by event id and pseudonym, never by dossier."""

from __future__ import annotations

import dataclasses

import pytest

from herstelbus.connectors.gemeente.openen import Opener
from herstelbus.connectors.gemeente.resultaat import Geopend, Geweigerd, Positie, Weigercode
from herstelbus.connectors.gemeente.volgorde import Gat, Volgorde, orden, reekssleutel

from .kit import GM, Exchange, event

P = Positie("t", 0, 0)
D1, D2 = "UHT-2021-000123", "UHT-2022-004711"


def _ev(subject: str, seq: int, eid: str, dossier: str = D1) -> Geopend:
    return Geopend(eid, "pauzeknop", GM, subject, "WOONGEMEENTE", seq, {"dossiernummer": dossier}, {}, "normaal",
                   False, None, P)


def test_each_dossier_is_put_in_sequence_order_in_its_own_slots_across_its_persons() -> None:
    refused = Geweigerd(None, Weigercode.UNDECODABLE, None, None, None, P)
    # D1: ouder "a" and toeslagpartner "p", interleaved and out of order; D2: one person "b".
    batch = [_ev("a", 3, "a3"), _ev("b", 2, "b2", D2), refused, _ev("p", 2, "p2"), _ev("b", 1, "b1", D2),
             _ev("a", 1, "a1")]
    assert [getattr(r, "event_id", None) for r in orden(batch)] == ["a1", "b1", None, "p2", "b2", "a3"]


def test_orden_does_not_mix_two_dossiers_of_one_person() -> None:
    # One person in two dossiers: each dossier's numbers are its own, so nothing moves.
    batch = [_ev("a", 5, "x5", D1), _ev("a", 1, "y1", D2)]
    assert [r.event_id for r in orden(batch)] == ["x5", "y1"]  # type: ignore[union-attr]


def test_two_persons_of_one_dossier_with_interleaved_volgnummers_have_no_gap() -> None:
    v = Volgorde()
    seen = [v.volg(e) for e in (_ev("ouder", 1, "e1"), _ev("ouder", 2, "e2"), _ev("partner", 3, "e3"),
                                  _ev("ouder", 4, "e4"), _ev("partner", 5, "e5"))]
    assert seen == [None] * 5
    assert list(v.laatste.values()) == [5]


def test_a_missing_volgnummer_in_a_dossier_is_one_gap_naming_the_event_and_its_person() -> None:
    v = Volgorde()
    assert v.volg(_ev("ouder", 1, "e1")) is None
    assert v.volg(_ev("partner", 2, "e2")) is None
    assert v.volg(_ev("b", 7, "f7", D2)) is None  # another dossier: its own baseline
    assert v.volg(_ev("ouder", 4, "e4")) == Gat("e4", "ouder", 3, 4, "gat")
    assert v.volg(_ev("partner", 5, "e5")) is None
    assert v.volg(_ev("b", 8, "f8", D2)) is None


def test_a_late_event_is_te_laat_and_does_not_move_the_series_back() -> None:
    v = Volgorde()
    assert v.volg(_ev("ouder", 1, "e1")) is None
    assert v.volg(_ev("ouder", 3, "e3")) == Gat("e3", "ouder", 2, 3, "gat")
    assert v.volg(_ev("partner", 2, "e2")) == Gat("e2", "partner", 4, 2, "te_laat")
    assert v.volg(_ev("ouder", 4, "e4")) is None


def test_first_event_of_a_dossier_sets_the_baseline_and_state_can_be_given() -> None:
    v = Volgorde()
    assert v.pas_toe("e1", "p", 4, reeks="r") is None  # joined the dossier midway: no gap
    assert v.pas_toe("e2", "q", 5, reeks="r") is None
    assert v.pas_toe("e3", "p", 7, reeks="r") == Gat("e3", "p", 6, 7, "gat")
    assert v.laatste == {"r": 7}
    assert Volgorde({"s": 1}).pas_toe("e5", "q", 3, reeks="s") == Gat("e5", "q", 2, 3, "gat")
    with pytest.raises(TypeError):
        v.pas_toe("e6", "p", 8)  # type: ignore[call-arg]  # the old per-subject call: no silent fallback


def test_a_gat_holds_no_dossiernummer_and_no_series_key() -> None:
    v = Volgorde()
    v.volg(_ev("ouder", 1, "e1"))
    gat = v.volg(_ev("partner", 3, "e3"))
    assert gat is not None
    assert [f.name for f in dataclasses.fields(gat)] == ["event_id", "subject", "verwacht", "gekregen", "soort"]
    shown = repr(gat) + str(dataclasses.asdict(gat))
    for secret in (D1, "000123", reekssleutel(GM, D1)):
        assert secret not in shown


def test_reeks_is_a_fixed_width_digest_per_gemeente_and_dossier() -> None:
    r = reekssleutel(GM, D1)
    assert len(r) == 32 and int(r, 16) >= 0 and D1 not in r
    assert r == _ev("x", 1, "e").reeks == reekssleutel(GM, D1)
    assert len({r, reekssleutel(GM, D2), reekssleutel("GM0344", D1)}) == 3
    with pytest.raises(TypeError) as exc:
        reekssleutel(GM, None)  # type: ignore[arg-type]
    assert D1 not in str(exc.value)
    e = _ev("x", 1, "e")
    assert D1 not in repr(e) and e.reeks not in repr(e)


def test_opened_events_of_two_persons_in_one_dossier_share_the_series() -> None:
    ex = Exchange()
    ouder = event("overdracht", volgnummer=1)
    partner = event("pauzeknop", dossiernummer=ouder["dossiernummer"], volgnummer=2)
    other = event("pauzeknop", volgnummer=2)  # a new dossier
    a, b, c = Opener(GM, ex.keyring(), ex.kluis).open_batch([ex.message(t, r) for t, r in (
        ("pauzeknop", partner), ("overdracht", ouder), ("pauzeknop", other))])
    assert isinstance(a, Geopend) and isinstance(b, Geopend) and isinstance(c, Geopend)
    assert a.subject != b.subject and a.reeks == b.reeks == reekssleutel(GM, ouder["dossiernummer"]) != c.reeks
    assert [r.event_id for r in orden([a, b, c])] == [b.event_id, a.event_id, c.event_id]  # type: ignore[union-attr]
