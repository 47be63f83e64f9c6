"""Property: for any validated UHT event, any date and any routing memory, ``decide`` never raises,
and every record it routes goes to a gemeente that exists on that date, once."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from herstelbus.core import gemeenten
from herstelbus.core.contracts import encode, validate
from herstelbus.core.routing import (
    EERDER_BETROKKEN, FAN_OUT, KafkaRef, Routed, Unroutable, decide, routed_receipt, unroutable_receipt,
)
from routing_helpers import NOW, event

ALL_CODES = sorted(g.code for g in gemeenten.gemeenten_vanaf(dt.date(1900, 1, 1)))
BRON = KafkaRef("uht.pauzeknop.v1", 0, 1)

codes = st.one_of(st.sampled_from(ALL_CODES), st.from_regex(r"GM[0-9]{4}", fullmatch=True))
urgenties = st.one_of(st.none(), st.just({"urgent": False, "reden": None}),
                      st.builds(lambda r: {"urgent": True, "reden": r},
                                st.sampled_from([None, "GEZONDHEID", "DREIGENDE_HUISUITZETTING"])))


@st.composite
def events(draw) -> tuple[str, dict]:
    record_type = draw(st.sampled_from(["overdracht", "pauzeknop", "erkenning"]))
    changes = {"woonsituatie": draw(st.sampled_from(["BINNENLAND", "VOW", "BUITENLAND"])),
               "gemeentecode": draw(st.one_of(st.none(), codes))}
    if record_type == "overdracht":
        changes |= {"urgentie": draw(urgenties), "contactwens": draw(st.sampled_from(["JA", "NEE", "ONBEKEND"]))}
    return record_type, event(record_type, **changes)


@settings(max_examples=300, deadline=None)
@given(events(), st.dates(dt.date(2018, 1, 1), dt.date(2027, 12, 31)), st.frozensets(codes, max_size=6))
def test_decide_never_raises_and_targets_exist_on_the_date(ev, on, eerder) -> None:
    record_type, record = ev
    assert validate(record_type, record, now=NOW) == []
    besluit = decide(record_type, record, on=on, eerder=eerder)
    if isinstance(besluit, Unroutable):
        receipt = unroutable_receipt(record_type, record["event_id"], besluit.reason, bron=BRON, doel=None, at=NOW)
        encode("statusbericht", receipt)  # every reason is a valid reason code
        return
    assert isinstance(besluit, Routed) and besluit.targets
    codes_ = besluit.gemeentecodes
    assert len(set(codes_)) == len(codes_)
    assert all(gemeenten.get(code).bestaat_op(on) for code in codes_)
    primary = [t for t in besluit.targets if t.reden != EERDER_BETROKKEN]
    fan_out = [t for t in besluit.targets if t.reden == EERDER_BETROKKEN]
    assert len(primary) == (0 if besluit.unroutable_primary else 1)
    assert list(besluit.targets) == primary + fan_out  # the woongemeente first
    assert [t.gemeentecode for t in fan_out] == sorted(t.gemeentecode for t in fan_out)
    if record_type not in FAN_OUT:
        assert len(codes_) == 1 and besluit.unroutable_primary is None
    geschreven = {code: KafkaRef(f"gemeente.{code}.events.v1", 0, 0) for code in codes_}
    encode("statusbericht", routed_receipt(record_type, record["event_id"], besluit, geschreven, bron=BRON, at=NOW))
