"""The dashboard's pure core (counts, view model) and its page and chart (issue 7).

Records go through the real contracts (encode, then decode) so they look exactly as the reader
sees them: UUIDs as ``uuid.UUID``, timestamps as aware datetimes, sealed bytes as bytes."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from herstelbus.core import contracts
from herstelbus.core.acks import Doel, audit_record, overdue_status, relay_status
from herstelbus.core.ops.dashboard import (
    GEMEENTE_UITKOMSTEN, UITKOMSTEN, Overzicht, dagreeks, gemeente_rijen, leeftijd, reden_rijen, view,
)
from herstelbus.core.routing.deadletter import deadletter_record, unroutable_record
from herstelbus.core.routing.refs import KafkaRef
from herstelbus.core.routing.status import duplicate_receipt, invalid_receipt, unroutable_receipt
from herstelbus.core.topology import AUDIT, DEADLETTER, STATUS, UNROUTABLE, gemeente_events_topic
from herstelbus.dashboard.chart import staafdiagram
from herstelbus.dashboard.page import render

AMS = ZoneInfo("Europe/Amsterdam")
AT = datetime(2025, 3, 3, 12, 0, tzinfo=timezone.utc)
SEALED = b"\x01VERZEGELD-ORIGINEEL-NIET-TONEN"
_offset = iter(range(10**6))


def bron() -> KafkaRef:
    return KafkaRef("uht.overdracht.v1", 0, next(_offset))


def decoded(record_type: str, record: dict) -> tuple[str, dict]:
    return contracts.decode(contracts.encode(record_type, record))


def routed(gemeenten: list[str], at: datetime = AT, event_id: str | None = None) -> dict:
    b = bron()
    return {"status_id": str(uuid.uuid4()), "event_id": event_id or str(uuid.uuid4()), "event_type": "OVERDRACHT",
            "status": "ROUTED", "reden": None, "gemeentecode": None, "ack_id": None, "geminimaliseerd": False,
            "urgent": False, "overgeslagen": [], "at": at, "bron": b.as_record(), "doel": None,
            "doelen": [{"gemeentecode": gm, "reden": "WOONGEMEENTE", "oorspronkelijke_gemeentecode": None,
                        "opvolger_gemeentecode": None, "topic": gemeente_events_topic(gm), "partition": 0,
                        "offset": i} for i, gm in enumerate(gemeenten)]}


def doel(gm: str) -> Doel:
    return Doel(event_id=str(uuid.uuid4()), gemeentecode=gm, event_type="OVERDRACHT", routed_at=AT,
                doel=KafkaRef(gemeente_events_topic(gm), 0, next(_offset)))


def ack(d: Doel, status: str) -> dict:
    return {"ack_id": str(uuid.uuid4()), "event_id": d.event_id, "gemeentecode": d.gemeentecode, "status": status}


def fold(*items: tuple[str, str, dict]) -> Overzicht:
    o = Overzicht(tz=AMS)
    for topic, record_type, record in items:
        o.verwerk(topic, *decoded(record_type, record))
    return o


def test_receipts_per_day_and_outcome_in_dutch_days() -> None:
    late = datetime(2025, 3, 3, 23, 30, tzinfo=timezone.utc)  # 4 March in Amsterdam
    o = fold((STATUS, "statusbericht", routed(["GM0363"])),
             (STATUS, "statusbericht", routed(["GM0363", "GM0599"], at=late)),
             (STATUS, "statusbericht", invalid_receipt("overdracht", None, "MARKER_ONGELDIG", bron=bron(),
                                                       doel=None, at=AT)),
             (STATUS, "statusbericht", unroutable_receipt("overdracht", uuid.uuid4(), "VOW", bron=bron(),
                                                          doel=None, at=AT)),
             (STATUS, "statusbericht", duplicate_receipt("overdracht", uuid.uuid4(), bron=bron(), at=AT)))
    snap = o.momentopname()
    assert snap.per_dag == {date(2025, 3, 3): {"ROUTED": 1, "INVALID": 1, "UNROUTABLE": 1, "DUPLICATE": 1},
                            date(2025, 3, 4): {"ROUTED": 1}}
    assert snap.per_dag_gemeente == {"GM0363": {date(2025, 3, 3): {"ROUTED": 1}, date(2025, 3, 4): {"ROUTED": 1}},
                                     "GM0599": {date(2025, 3, 4): {"ROUTED": 1}}}
    assert snap.gelezen == 5


def test_acks_and_overdue_count_per_gemeente_not_as_receipts() -> None:
    d = doel("GM0014")
    o = fold((STATUS, "statusbericht", relay_status(ack(d, "ONTVANGEN"), d, bron=bron(), at=AT)),
             (STATUS, "statusbericht", relay_status(ack(d, "VERWERKT"), d, bron=bron(), at=AT)),
             (STATUS, "statusbericht", overdue_status(d, "VERWERKT", at=AT)))
    snap = o.momentopname()
    assert snap.per_dag == {}  # the chart of input events counts terminal receipts only
    assert snap.per_dag_gemeente == {"GM0014": {date(2025, 3, 3): {"ONTVANGEN": 1, "VERWERKT": 1, "OVERDUE": 1}}}


def test_a_record_seen_again_counts_once() -> None:
    r = routed(["GM0363"])
    dl = deadletter_record([("BSN_ONGELDIG", "persoon.bsn")], bron=bron(), origineel=SEALED, sleutel_id="ops", at=AT)
    o = fold((STATUS, "statusbericht", r), (STATUS, "statusbericht", r),
             (DEADLETTER, "deadletter", dl), (DEADLETTER, "deadletter", dl))
    snap = o.momentopname()
    assert snap.per_dag[AT.date()] == {"ROUTED": 1}
    assert sum(snap.redenen.values()) == 1 and snap.gelezen == 2


def test_reasons_per_topic_without_the_sealed_original() -> None:
    ingest = KafkaRef("uht.pauzeknop.v1", 2, 9)
    items = [(DEADLETTER, "deadletter", deadletter_record([("BSN_ONGELDIG", "persoon.bsn")], bron=bron(),
                                                          origineel=SEALED, sleutel_id="ops", at=AT))
             for _ in range(2)]
    items.append((DEADLETTER, "deadletter", deadletter_record([("MARKER_ONGELDIG", "")], bron=ingest,
                                                              origineel=SEALED, sleutel_id="ops", at=AT)))
    items.append((UNROUTABLE, "deadletter", unroutable_record("overdracht", uuid.uuid4(), "VOW", bron=bron(),
                                                              origineel=SEALED, sleutel_id="ops", at=AT)))
    snap = fold(*items).momentopname()
    assert reden_rijen(snap.redenen, DEADLETTER) == [
        {"reden": "BSN_ONGELDIG", "component": "router", "bron_topic": "uht.overdracht.v1", "aantal": 2},
        {"reden": "MARKER_ONGELDIG", "component": "router", "bron_topic": "uht.pauzeknop.v1", "aantal": 1}]
    assert reden_rijen(snap.redenen, UNROUTABLE) == [
        {"reden": "VOW", "component": "router", "bron_topic": "uht.overdracht.v1", "aantal": 1}]
    assert b"VERZEGELD" not in repr(snap).encode() and "persoon.bsn" not in repr(snap)


def test_audit_newest_first_without_actor_or_subject_and_filtered_per_gemeente() -> None:
    def audit(gm: str, n: int) -> dict:
        r = audit_record({"event_id": str(uuid.uuid4())}, "NIET_GEROUTEERD_AAN_GEMEENTE", topic_gemeente=gm,
                         topic=f"gemeente.{gm}.acks.v1", bron=bron(), at=AT + timedelta(minutes=n))
        return {**r, "actor": "ops-account-42", "subject": "pseudoniem-xyz", "aantallen": {"gelezen": n}}

    snap = fold(*[(AUDIT, "audit", audit(gm, n)) for n, gm in enumerate(["GM0363", "GM0599", "GM0363"])]).momentopname()
    assert [a.gemeentecode for a in snap.audit] == ["GM0363", "GM0599", "GM0363"]
    assert snap.audit[0].at > snap.audit[1].at > snap.audit[2].at
    assert "ops-account-42" not in repr(snap) and "pseudoniem-xyz" not in repr(snap)
    v = view([], snap, gemeente="GM0599", vandaag=AT.date())
    assert [(a["gemeentecode"], a["aantallen"]) for a in v["audit"]] == [("GM0599", {"gelezen": 1})]
    assert len(view([], snap, gemeente=None, vandaag=AT.date(), audit_limiet=2)["audit"]) == 2


def test_another_contract_on_a_topic_is_counted_unreadable() -> None:
    o = Overzicht(tz=AMS)
    d = deadletter_record([("X", "")], bron=bron(), origineel=SEALED, sleutel_id="ops", at=AT)
    assert not o.verwerk(STATUS, *decoded("deadletter", d))
    o.onleesbaar(AUDIT)
    snap = o.momentopname()
    assert snap.onleesbaar == {STATUS: 1, AUDIT: 1} and snap.redenen == {} and snap.gelezen == 0


def test_day_series_has_every_day_of_the_window() -> None:
    reeks = dagreeks({date(2025, 3, 3): {"ROUTED": 4, "INVALID": 1}, date(2025, 2, 1): {"ROUTED": 9}},
                     date(2025, 3, 4), 3, UITKOMSTEN)
    assert [d["dag"] for d in reeks] == ["2025-03-02", "2025-03-03", "2025-03-04"]
    assert reeks[1]["aantallen"] == {"ROUTED": 4, "INVALID": 1, "UNROUTABLE": 0, "DUPLICATE": 0}
    assert sum(reeks[0]["aantallen"].values()) == sum(reeks[2]["aantallen"].values()) == 0


def test_age_text() -> None:
    assert [leeftijd(s) for s in (None, 0, 59 * 60, 3 * 3600 + 5 * 60, 2 * 86400 + 4 * 3600 + 59)] == [
        "-", "0m", "59m", "3u05m", "2d04u"]


ROWS = [{"gemeentecode": "GM0363", "routed": 53, "ontvangen": 50, "verwerkt": 3, "geweigerd": 0, "overdue": 1,
         "oudste_open_s": 7200},
        {"gemeentecode": "GM0014", "routed": 14, "ontvangen": 14, "verwerkt": 0, "geweigerd": 0, "overdue": 0,
         "oudste_open_s": None}]


def test_view_filters_to_one_gemeente_and_switches_the_chart() -> None:
    snap = fold((STATUS, "statusbericht", routed(["GM0363"])), (STATUS, "statusbericht", routed(["GM0014"])),
                (STATUS, "statusbericht", invalid_receipt("overdracht", None, "MARKER_ONGELDIG", bron=bron(),
                                                          doel=None, at=AT))).momentopname()
    alle = view(ROWS, snap, gemeente=None, vandaag=AT.date())
    assert [r["gemeentecode"] for r in alle["gemeenten"]] == ["GM0363", "GM0014"]
    assert alle["gemeenten"][0]["naam"] == "Amsterdam" and alle["gemeenten"][0]["oudste_open"] == "2u00m"
    assert alle["totalen"] == {"routed": 67, "ontvangen": 64, "verwerkt": 3, "geweigerd": 0, "overdue": 1}
    assert alle["grafiek"]["uitkomsten"] == list(UITKOMSTEN)
    assert alle["grafiek"]["dagen"][-1]["aantallen"] == {"ROUTED": 2, "INVALID": 1, "UNROUTABLE": 0, "DUPLICATE": 0}
    een = view(ROWS, snap, gemeente="GM0014", vandaag=AT.date())
    assert [r["gemeentecode"] for r in een["gemeenten"]] == ["GM0014"] and een["totalen"]["routed"] == 14
    assert een["grafiek"]["uitkomsten"] == list(GEMEENTE_UITKOMSTEN)
    assert een["grafiek"]["dagen"][-1]["aantallen"]["ROUTED"] == 1
    assert gemeente_rijen(ROWS, "GM9999") == []


def test_chart_segments_carry_day_outcome_and_count() -> None:
    svg = staafdiagram({"uitkomsten": ["ROUTED", "INVALID"], "dagen": [
        {"dag": "2025-03-02", "aantallen": {"ROUTED": 0, "INVALID": 0}},
        {"dag": "2025-03-03", "aantallen": {"ROUTED": 7, "INVALID": 2}}]})
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert re.findall(r'data-uitkomst="(\w+)" data-aantal="(\d+)"', svg) == [("ROUTED", "7"), ("INVALID", "2")]
    assert "<title>2025-03-03 ROUTED: 7</title>" in svg


def test_page_is_escaped_self_contained_and_links_each_gemeente() -> None:
    snap = fold((DEADLETTER, "deadletter", deadletter_record([("BSN_ONGELDIG", "persoon.bsn")], bron=bron(),
                                                             origineel=SEALED, sleutel_id="ops", at=AT))).momentopname()
    rows = [*ROWS, {**ROWS[1], "gemeentecode": "GM0<b>"}]  # cannot come from the store; escaped all the same
    html = render(view(rows, snap, gemeente=None, vandaag=AT.date()), {"bijgewerkt": True, "fout": "<x>"})
    assert 'href="/?gemeente=GM0363"' in html and 'href="/?gemeente=GM0014"' in html
    assert "GM0&lt;b&gt;" in html and "<b>" not in html and "&lt;x&gt;" in html
    assert 'data-reden="BSN_ONGELDIG"' in html and "VERZEGELD" not in html
    assert "<script" not in html and not re.search(r'(src|href)="(https?:)?//', html)
