"""The pure part of `herstelbus reroute` (issue 7): which held events go through the routing rules
again, from herstel.unroutable.v1 or from the ingest topics, and which are skipped and why."""

from __future__ import annotations

import datetime as dt
import uuid

from herstelbus.core.ops import deadletter as d
from herstelbus.core.ops import reroute as rr
from herstelbus.core.ops.reconcile import IngestRecord
from herstelbus.core.routing.deadletter import OVERGESLAGEN
from herstelbus.core.routing.refs import KafkaRef
from tests.unit.ops.test_deadletter import NOW, OVERDRACHT, letter, rcpt

GEEN_SLEUTEL = "GEEN_GEMEENTESLEUTEL"
T0 = int(NOW.timestamp() * 1000)


def _sent(besluiten) -> dict[str, str | None]:
    return {b.kandidaat.herkomst: b.overslaan for b in besluiten}


def test_held_events_go_again_but_not_overgeslagen_records_nor_what_was_routed_since() -> None:
    held = letter(kind="unroutable", fouten=[(GEEN_SLEUTEL, "gemeentecode")])
    vow = letter(kind="unroutable", fouten=[("VOW", "woonsituatie")])
    info = letter(kind="overgeslagen")
    routed = letter(kind="unroutable", fouten=[(GEEN_SLEUTEL, "gemeentecode")])
    older = letter(kind="unroutable", fouten=[(GEEN_SLEUTEL, "gemeentecode")], at=NOW - dt.timedelta(hours=1))
    later = letter(kind="unroutable", fouten=[(GEEN_SLEUTEL, "gemeentecode")], event_id=older.event_id)
    waiting = letter(kind="unroutable", fouten=[(GEEN_SLEUTEL, "gemeentecode")])
    copy = KafkaRef(OVERDRACHT, 2, 70)
    st = d.stand([rcpt(routed.event_id)], [d.Kopie(d.REROUTE, str(uuid.uuid4()), waiting.event_id, copy)])
    letters = [held, vow, info, routed, older, later, waiting]
    assert _sent(rr.kies_vastgehouden(letters, d.Selectie(), st)) == {
        held.deadletter_id: None, vow.deadletter_id: None, info.deadletter_id: OVERGESLAGEN,
        routed.deadletter_id: d.AL_GEROUTEERD, older.deadletter_id: d.DUBBEL, later.deadletter_id: None,
        waiting.deadletter_id: d.ONDERWEG}
    only = rr.kies_vastgehouden(letters, d.Selectie(reden=GEEN_SLEUTEL, since_ms=T0), st)
    assert {b.kandidaat.herkomst for b in only} == {held.deadletter_id, routed.deadletter_id, later.deadletter_id,
                                                    waiting.deadletter_id}
    # Its copy got a receipt (UNROUTABLE again): the next reroute may send it again, e.g. after another fix.
    st = d.stand([rcpt(waiting.event_id, "UNROUTABLE", copy)], [d.Kopie(d.REROUTE, "a", waiting.event_id, copy)])
    assert _sent(rr.kies_vastgehouden([waiting], d.Selectie(), st)) == {waiting.deadletter_id: None}


def _ingest(offset: int, event_id: str | None = None, ts: int = T0) -> IngestRecord:
    return IngestRecord(KafkaRef(OVERDRACHT, 0, offset), ts, event_id or str(uuid.uuid4()))


def test_from_ingest_only_records_whose_receipt_is_unroutable() -> None:
    held, routed, invalid, pending = _ingest(1), _ingest(2), _ingest(3), _ingest(4)
    first = _ingest(5)
    again = _ingest(6, first.event_id, T0 + 1)  # the same event published again, also held
    later_routed = _ingest(7)
    receipts = [rcpt(held.event_id, "UNROUTABLE", held.ref), rcpt(routed.event_id, "ROUTED", routed.ref),
                rcpt(invalid.event_id, "INVALID", invalid.ref), rcpt(first.event_id, "UNROUTABLE", first.ref),
                rcpt(again.event_id, "UNROUTABLE", again.ref),
                rcpt(later_routed.event_id, "UNROUTABLE", later_routed.ref),
                rcpt(later_routed.event_id, "ROUTED", KafkaRef(OVERDRACHT, 1, 9))]
    records = [held, routed, invalid, pending, first, again, later_routed]
    besluiten = rr.kies_ingest(records, receipts, d.stand(receipts, []))
    assert _sent(besluiten) == {rr.herkomst(held): None, rr.herkomst(first): d.DUBBEL, rr.herkomst(again): None,
                                rr.herkomst(later_routed): d.AL_GEROUTEERD}
    assert rr.herkomst(held) == f"{OVERDRACHT}/0/1"
    assert rr.kies_ingest(records, receipts, d.stand(receipts, []), reden="VOW") == []
    # Retention took one between deciding and reading it.
    assert _sent(rr.zonder(besluiten, [rr.herkomst(again)])) == {
        rr.herkomst(held): d.NIET_MEER_BEWAARD, rr.herkomst(first): d.DUBBEL, rr.herkomst(again): None,
        rr.herkomst(later_routed): d.AL_GEROUTEERD}


def test_contradicting_receipts_are_reconciles_to_report_not_a_reroute() -> None:
    rec = _ingest(1)
    receipts = [rcpt(rec.event_id, "UNROUTABLE", rec.ref), rcpt(rec.event_id, "INVALID", rec.ref)]
    assert rr.kies_ingest([rec], receipts, d.stand([], [])) == []


def test_an_ingest_record_is_named_by_its_position_once_in_the_summary() -> None:
    rec = _ingest(3)
    besluiten = rr.kies_ingest([rec], [rcpt(rec.event_id, "UNROUTABLE", rec.ref)], d.Stand())
    text = d.samenvatting(d.REROUTE, d.Tellingen.van(1, besluiten), besluiten, {rr.herkomst(rec): KafkaRef(OVERDRACHT, 0, 9)})
    assert text.splitlines()[1] == f"  {OVERDRACHT}/0/3  -> {OVERDRACHT}/0/9  event {rec.event_id}  UNROUTABLE"
