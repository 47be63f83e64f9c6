"""The router's input order across topics (core.routing.volgorde): a pauzeknop or erkenning waits
for older records elsewhere, an overdracht never waits, a partition keeps its own order."""

from __future__ import annotations

from hypothesis import given, strategies as st

from herstelbus.core.routing.volgorde import Stand, Wachtend, kies

O, P, E = ("uht.overdracht.v1", 0), ("uht.pauzeknop.v1", 0), ("uht.erkenning.v1", 0)
NU = 100.0


def w(partitie, offset, ts, ontvangen=NU) -> Wachtend:
    return Wachtend(partitie, offset, ts, partitie != O, ontvangen)


def stand(volgende=10, einde=10, gepeild=10_000, laatste_ts=None, ontvangen=NU) -> Stand:
    return Stand(volgende, einde, gepeild, laatste_ts, ontvangen)


def offsets(gekozen) -> list:
    return [(x.partitie, x.offset) for x in gekozen]


def test_a_pauzeknop_waits_while_the_overdracht_partition_still_has_records_to_deliver() -> None:
    pauze = w(P, 0, 5_000)
    lagging = stand(volgende=3, einde=9)  # six records not received yet, none newer seen
    assert kies({P: [pauze]}, {P: stand(), O: lagging}, NU, wacht_s=5) == []


def test_it_goes_once_the_older_overdracht_arrived_and_after_it() -> None:
    pauze, overdracht = w(P, 0, 5_000), w(O, 3, 4_000)
    gekozen = kies({P: [pauze], O: [overdracht]}, {P: stand(), O: stand(volgende=4, einde=4)}, NU, 5)
    assert offsets(gekozen) == [(O, 3), (P, 0)]


def test_a_caught_up_partition_holds_nothing_back_but_only_with_an_end_offset_fetched_after_the_record() -> None:
    pauze = w(P, 0, 5_000)
    assert kies({P: [pauze]}, {P: stand(), O: stand(gepeild=5_001)}, NU, 5) == [pauze]
    # the end offset predates the pauzeknop: an overdracht published just before may be unseen
    assert kies({P: [pauze]}, {P: stand(), O: stand(gepeild=4_999)}, NU, 5) == []


def test_a_partition_that_delivered_something_newer_holds_nothing_back() -> None:
    pauze = w(P, 0, 5_000)
    assert kies({P: [pauze]}, {P: stand(), O: stand(volgende=3, einde=9, laatste_ts=5_000)}, NU, 5) == [pauze]


def test_a_silent_partition_holds_a_pause_back_only_for_wacht_s() -> None:
    pauze = w(P, 0, 5_000, ontvangen=NU - 4)
    silent = stand(volgende=3, einde=9, ontvangen=NU - 60)
    assert kies({P: [pauze]}, {P: stand(), O: silent}, NU, 5) == []
    assert kies({P: [pauze]}, {P: stand(), O: silent}, NU + 1, 5) == [pauze]
    # ...counted from the later of the two: a partition that delivers keeps the pause waiting
    busy = stand(volgende=3, einde=9, ontvangen=NU)
    assert kies({P: [pauze]}, {P: stand(), O: busy}, NU + 4.9, 5) == []


def test_an_overdracht_never_waits_and_a_waiting_head_holds_its_own_partition_back() -> None:
    pauze, pauze_uit = w(P, 0, 5_000), w(P, 1, 9_000)
    overdracht = w(O, 9, 7_000)
    standen = {P: stand(), O: stand(volgende=10, einde=10, gepeild=1), E: stand(volgende=0, einde=4)}
    gekozen = kies({P: [pauze, pauze_uit], O: [overdracht]}, standen, NU, 5)
    assert offsets(gekozen) == [(O, 9)]


def test_an_older_waiting_head_elsewhere_holds_a_younger_one_back() -> None:
    erkenning, pauze = w(E, 0, 4_000), w(P, 0, 5_000)
    lagging = stand(volgende=3, einde=9)
    gekozen = kies({E: [erkenning], P: [pauze]}, {E: stand(), P: stand(), O: lagging}, NU, 5)
    assert gekozen == []


def test_same_millisecond_overdracht_first_and_two_equal_pauses_do_not_wait_for_each_other() -> None:
    overdracht, pauze, erkenning = w(O, 0, 5_000), w(P, 0, 5_000), w(E, 0, 5_000)
    standen = {O: stand(volgende=1, einde=1, gepeild=5_000), P: stand(), E: stand()}
    gekozen = kies({P: [pauze], E: [erkenning], O: [overdracht]}, standen, NU, 5)
    assert offsets(gekozen)[0] == (O, 0) and set(offsets(gekozen)) == {(O, 0), (P, 0), (E, 0)}


def test_wacht_s_zero_is_ordering_off() -> None:
    pauze = w(P, 0, 5_000)
    assert kies({P: [pauze]}, {P: stand(), O: stand(volgende=0, einde=99)}, NU, 0) == [pauze]


records = st.lists(st.tuples(st.sampled_from([O, P, E]), st.integers(0, 50)), max_size=30)


@given(records, st.booleans())
def test_a_partition_keeps_its_order_and_nothing_is_taken_twice(spec, caught_up) -> None:
    rijen: dict = {}
    for partitie, ts in spec:
        rij = rijen.setdefault(partitie, [])
        rij.append(w(partitie, len(rij), ts))
    einde = 0 if caught_up else 99
    standen = {p: stand(volgende=0, einde=einde, gepeild=10_000) for p in (O, P, E)}
    gekozen = kies(rijen, standen, NU, 5)
    assert len(set(offsets(gekozen))) == len(gekozen)
    for partitie, rij in rijen.items():
        mine = [x.offset for x in gekozen if x.partitie == partitie]
        assert mine == list(range(len(mine)))  # a prefix of the partition, in order
        if caught_up:
            assert len(mine) == len(rij)  # nothing elsewhere to wait for: everything goes
    overdrachten = [x for x in gekozen if x.partitie == O]
    assert len(overdrachten) == len(rijen.get(O, []))  # an overdracht never waits
