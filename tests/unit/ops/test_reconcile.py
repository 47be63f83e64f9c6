"""The reconciliation core (issue 7): one terminal receipt per ingest record, every ROUTED receipt's
gemeente record where it says, retention and --since apart; and the command around it."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from herstelbus.core import contracts
from herstelbus.core.ops import reconcile as rc
from herstelbus.core.ops.reconcile import (
    BRON_BESTAAT_NIET, BRON_ONTBREEKT, DOEL_ANDER_EVENT, DOEL_ONTBREEKT, DOEL_VERKEERD_TOPIC,
    GEEN_ONTVANGSTBEVESTIGING, ROUTED_ZONDER_DOELEN, TEGENSTRIJDIG, Doel, IngestLog, IngestRecord, Receipt,
)
from herstelbus.core.routing.refs import KafkaRef

VECTORS = Path(__file__).resolve().parents[1] / "contracts" / "vectors"
OVERDRACHT, STATUS = "uht.overdracht.v1", "uht.status.v1"
T0 = 1_750_000_000_000  # ms
GM = "GM0363"
GM_TOPIC = f"gemeente.{GM}.events.v1"


def log(partition: int = 0, *, start: int = 0, read_from: int | None = None, end: int = 10,
        end_after: int | None = None, topic: str = OVERDRACHT) -> IngestLog:
    return IngestLog(topic, partition, start, start if read_from is None else read_from, end,
                     end if end_after is None else end_after)


def record(offset: int, partition: int = 0, ts: int = T0) -> IngestRecord:
    event_id = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{partition}/{offset}"))
    return IngestRecord(KafkaRef(OVERDRACHT, partition, offset), ts, event_id)


_positions = iter(range(10**9))


def receipt(rec: IngestRecord | KafkaRef | None, status: str = "UNROUTABLE", *, status_id: str | None = None,
            doelen: tuple[Doel, ...] = (), event_id: str | None = None, at: int = T0 + 5) -> Receipt:
    bron = rec.ref if isinstance(rec, IngestRecord) else rec
    eid = event_id or (rec.event_id if isinstance(rec, IngestRecord) else str(uuid.uuid4()))
    return Receipt(KafkaRef(STATUS, 0, next(_positions)), status_id or f"{bron}/{status}", eid, status, bron, at,
                   doelen=doelen)


def doel(offset: int, gm: str = GM, topic: str | None = None) -> Doel:
    return Doel(gm, KafkaRef(topic or f"gemeente.{gm}.events.v1", 0, offset))


def check(logs, records, receipts, routed=None, since_ms=None) -> rc.Report:
    asked = rc.doelen_to_check(logs, records, receipts, since_ms)
    routed = routed or {}
    # The adapter only looks up what the core asks for.
    return rc.reconcile(logs, records, receipts, {k: v for k, v in routed.items() if k in asked}, since_ms=since_ms)


def reasons(report: rc.Report) -> dict[tuple, str]:
    return {(d.bron.offset if d.bron else None, d.reden) for d in (*report.unaccounted, *report.orphans)}


# -- the rules, one by one -----------------------------------------------------------------------------
def test_every_terminal_status_accounts_for_its_record_and_the_routed_record_is_checked() -> None:
    recs = [record(i) for i in range(4)]
    receipts = [receipt(recs[0], "ROUTED", doelen=(doel(7), doel(3, "GM0599"))), receipt(recs[1], "INVALID"),
                receipt(recs[2], "UNROUTABLE"), receipt(recs[3], "DUPLICATE")]
    routed = {KafkaRef(GM_TOPIC, 0, 7): recs[0].event_id,
              KafkaRef("gemeente.GM0599.events.v1", 0, 3): recs[0].event_id}
    report = check([log(end=4)], recs, receipts, routed)
    assert report.ok and report.statuses == {"ROUTED": 1, "INVALID": 1, "UNROUTABLE": 1, "DUPLICATE": 1}
    assert report.summary() == "reconcile: 4 ingest records, 4 accounted for, 0 unaccounted"


def test_invalid_without_event_id_still_accounts_for_its_bron() -> None:
    (rec,) = [IngestRecord(KafkaRef(OVERDRACHT, 0, 0), T0, None)]  # bytes that were no event, no ce_id
    invalid = Receipt(KafkaRef(STATUS, 0, 1), "s", None, "INVALID", rec.ref, T0)
    assert check([log(end=1)], [rec], [invalid]).ok


def test_a_record_without_receipt_is_unaccounted() -> None:
    recs = [record(0), record(1)]
    report = check([log(end=2)], recs, [receipt(recs[0])])
    assert not report.ok and reasons(report) == {(1, GEEN_ONTVANGSTBEVESTIGING)}
    (missing,) = report.unaccounted
    assert missing.event_id == recs[1].event_id
    assert report.summary() == "reconcile: 2 ingest records, 1 accounted for, 1 unaccounted"


def test_a_redelivered_identical_receipt_is_no_defect_two_different_ones_are() -> None:
    recs = [record(0), record(1)]
    same = receipt(recs[0], "ROUTED", doelen=(doel(1),))
    again = Receipt(KafkaRef(STATUS, 2, 99), same.status_id, same.event_id, "ROUTED", same.bron, same.at_ms + 1000,
                    doelen=(doel(2),))  # a redelivery that re-routed: its new position must hold the event too
    routed = {KafkaRef(GM_TOPIC, 0, 1): recs[0].event_id, KafkaRef(GM_TOPIC, 0, 2): recs[0].event_id}
    conflict = [receipt(recs[1], "UNROUTABLE"), receipt(recs[1], "ROUTED", doelen=(doel(3),))]
    report = check([log(end=2)], recs, [same, again, *conflict], routed)
    assert reasons(report) == {(1, TEGENSTRIJDIG)} and report.repeated == 1
    assert report.unaccounted[0].statuses == ("ROUTED", "UNROUTABLE")
    assert report.statuses == {"ROUTED": 1}


def test_acks_statuses_are_not_routing_receipts() -> None:
    rec = record(0)
    acks = [receipt(rec, s) for s in ("ONTVANGEN", "VERWERKT", "GEWEIGERD", "OVERDUE", "HELD")]
    report = check([log(end=1)], [rec], acks)
    assert reasons(report) == {(0, GEEN_ONTVANGSTBEVESTIGING)} and report.ignored == 5


@pytest.mark.parametrize(("routed", "doelen", "expected"), [
    ({}, (doel(5),), DOEL_ONTBREEKT),
    ({KafkaRef(GM_TOPIC, 0, 5): str(uuid.uuid4())}, (doel(5),), DOEL_ANDER_EVENT),
    ({KafkaRef(GM_TOPIC, 0, 5): None}, (doel(5),), DOEL_ANDER_EVENT),  # a record there without ce_id
    ({}, (doel(5, topic="gemeente.GM0599.events.v1"),), DOEL_VERKEERD_TOPIC),
    ({}, (), ROUTED_ZONDER_DOELEN),
])
def test_a_routed_receipt_must_point_at_its_event(routed, doelen, expected) -> None:
    rec = record(0)
    report = check([log(end=1)], [rec], [receipt(rec, "ROUTED", doelen=doelen)], routed)
    assert reasons(report) == {(0, expected)} and not report.ok
    assert report.unaccounted[0].doel == (doelen[0].ref if doelen else None)


def test_records_gone_by_retention_are_counted_apart() -> None:
    recs = [record(i) for i in range(5, 8)]
    old = [receipt(KafkaRef(OVERDRACHT, 0, i)) for i in range(5)]  # their records went after 24 h
    report = check([log(start=5, end=8)], recs, [*old, *(receipt(r) for r in recs)])
    assert report.ok and report.no_longer_held == 5 and report.ingest_records == 3
    assert report.summary().endswith("; 5 no longer held (ingest retention, not counted)")


def test_since_limits_the_records_and_their_receipts() -> None:
    since = T0 + 1000
    recs = [record(0, ts=T0), record(1, ts=since - 1), record(2, ts=since), record(3, ts=since + 5)]
    logs = [log(start=0, read_from=1, end=4)]  # offsets_for_times found 1: timestamps need not be ordered
    receipts = [receipt(KafkaRef(OVERDRACHT, 0, 0)), receipt(recs[2])]
    report = check(logs, recs[1:], receipts, since_ms=since)
    assert report.ingest_records == 2 and reasons(report) == {(3, GEEN_ONTVANGSTBEVESTIGING)}
    # a receipt for a record retention took: counted only when the router wrote it at/after --since
    gone = [log(start=2, read_from=2, end=4)]
    expired = [receipt(KafkaRef(OVERDRACHT, 0, 0), at=since - 1), receipt(KafkaRef(OVERDRACHT, 0, 1), at=since)]
    assert check(gone, recs[2:], [*expired, receipt(recs[2]), receipt(recs[3])], since_ms=since).no_longer_held == 1


def test_receipts_that_name_no_ingest_record() -> None:
    recs = [record(0), record(2)]  # nothing at offset 1
    logs = [log(end=3, end_after=5)]
    receipts = [receipt(r) for r in recs] + [
        receipt(KafkaRef(OVERDRACHT, 0, 1)),  # a gap: no record there
        receipt(KafkaRef(OVERDRACHT, 0, 4)),  # newer than the check: ignored
        receipt(KafkaRef(OVERDRACHT, 0, 10**15)),  # beyond the end even after reading: never existed
        receipt(KafkaRef("uht.onbekend.v1", 0, 0)),
        receipt(None),
    ]
    report = check(logs, recs, receipts)
    assert reasons(report) == {(1, BRON_BESTAAT_NIET), (10**15, BRON_BESTAAT_NIET), (0, BRON_BESTAAT_NIET),
                               (None, BRON_ONTBREEKT)}
    assert report.accounted == 2 and not report.ok
    assert all(d.receipt is not None for d in report.orphans)
    assert "; 4 receipts name no ingest record" in report.summary()


def test_only_doelen_of_records_in_scope_are_looked_up() -> None:
    recs = [record(1, ts=T0), record(2, ts=T0 + 10)]
    receipts = [receipt(recs[0], "ROUTED", doelen=(doel(1),)), receipt(recs[1], "ROUTED", doelen=(doel(2),)),
                receipt(KafkaRef(OVERDRACHT, 0, 0), "ROUTED", doelen=(doel(0),)),  # expired
                receipt(recs[1], "ROUTED", doelen=(doel(9, topic="elders"),), status_id="x")]
    assert rc.doelen_to_check([log(start=1, end=3)], recs, receipts, since_ms=T0 + 10) == {KafkaRef(GM_TOPIC, 0, 2)}


def test_a_real_statusbericht_becomes_a_receipt() -> None:
    obj = json.loads((VECTORS / "statusbericht.json").read_text())
    obj.pop("type")
    _, record = contracts.decode(contracts.encode("statusbericht", contracts.json_to_record("statusbericht", obj)))
    at = KafkaRef(STATUS, 1, 42)
    got = rc.receipt_from_statusbericht(record, at)
    assert got == Receipt(at, obj["status_id"], obj["event_id"], "ROUTED", KafkaRef("uht.pauzeknop.v1", 3, 12345),
                          int(dt.datetime(2025, 3, 4, 9, 16, 1, 7000, tzinfo=dt.timezone.utc).timestamp() * 1000),
                          doelen=(Doel("GM1980", KafkaRef("gemeente.GM1980.events.v1", 0, 678)),
                                  Doel("GM0363", KafkaRef("gemeente.GM0363.events.v1", 0, 91))))
    ack = dict(copy.deepcopy(record), status="ONTVANGEN", bron=None, gemeentecode=GM)
    assert rc.receipt_from_statusbericht(ack, at) is None


def test_event_ids_are_echoed_only_when_they_are_ids() -> None:
    assert rc.canonical_id(b"5A4B3C2D-1E0F-4A9B-8C7D-6E5F4A3B2C1D") == "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
    assert rc.canonical_id(b"111222333") is None and rc.canonical_id("Jansen") is None and rc.canonical_id(None) is None


def test_output_holds_positions_ids_statuses_and_codes_only() -> None:
    rec = record(0)
    report = check([log(end=2)], [rec, record(1)], [receipt(rec, "ROUTED", doelen=(doel(1),))])
    data = report.as_json()
    assert set(data) == {"ok", "ingest_records", "accounted", "unaccounted", "orphan_receipts", "no_longer_held",
                         "repeated_receipts", "ignored_statuses", "unreadable_status_records", "since_ms",
                         "statuses", "differences", "partitions", "summary"}
    assert {tuple(sorted(d)) for d in data["differences"]} == {
        ("bron", "doel", "event_id", "receipt", "reden", "statuses")}
    text = report.as_text()
    assert text.splitlines()[0] == report.summary() == "reconcile: 2 ingest records, 0 accounted for, 2 unaccounted"
    assert f"{DOEL_ONTBREEKT}" in text and f"{OVERDRACHT}/0/0" in text and f"doel {GM_TOPIC}/0/1" in text


# -- the property ------------------------------------------------------------------------------------
OUTCOMES = ["none", "INVALID", "UNROUTABLE", "DUPLICATE", "routed", "routed_missing", "routed_other", "conflict"]
EXPECTED = {"none": GEEN_ONTVANGSTBEVESTIGING, "routed_missing": DOEL_ONTBREEKT, "routed_other": DOEL_ANDER_EVENT,
            "conflict": TEGENSTRIJDIG}


@st.composite
def worlds(draw):
    partitions = draw(st.integers(1, 3))
    log_start = draw(st.lists(st.integers(0, 3), min_size=partitions, max_size=partitions))
    outcomes = draw(st.lists(st.tuples(st.integers(0, partitions - 1), st.sampled_from(OUTCOMES), st.integers(1, 3)),
                             max_size=25))
    expired = draw(st.lists(st.integers(0, partitions - 1), max_size=5))
    acks = draw(st.integers(0, 4))
    return partitions, log_start, outcomes, expired, acks, draw(st.randoms(use_true_random=False))


@settings(max_examples=200, deadline=None)
@given(worlds())
def test_every_record_is_classified_exactly_as_its_receipts_say(world) -> None:
    partitions, log_start, outcomes, expired, acks, rnd = world
    nxt = list(log_start)
    records, receipts, routed, expected, gm_offset = [], [], {}, {}, iter(range(10**6))
    for partition, outcome, copies in outcomes:
        rec = record(nxt[partition], partition)
        nxt[partition] += 1
        records.append(rec)
        if outcome in EXPECTED:
            expected[rec.ref] = EXPECTED[outcome]
        if outcome == "none":
            continue
        if outcome == "conflict":
            receipts += [receipt(rec, "UNROUTABLE"), receipt(rec, "ROUTED", doelen=(doel(next(gm_offset)),))]
            continue
        status = outcome if outcome.isupper() else "ROUTED"
        doelen = (doel(next(gm_offset)),) if status == "ROUTED" else ()
        one = receipt(rec, status, doelen=doelen)
        receipts += [one] * copies  # at-least-once: the same receipt again
        for d in doelen:
            if outcome == "routed":
                routed[d.ref] = rec.event_id
            elif outcome == "routed_other":
                routed[d.ref] = str(uuid.uuid4())
    for partition in expired:  # receipts of records retention already took
        if log_start[partition]:
            receipts.append(receipt(KafkaRef(OVERDRACHT, partition, rnd.randrange(log_start[partition]))))
    receipts += [receipt(rnd.choice(records) if records else None, "ONTVANGEN") for _ in range(acks)]
    logs = [log(p, start=log_start[p], end=nxt[p]) for p in range(partitions)]

    shuffled = list(receipts)
    rnd.shuffle(shuffled)
    report = check(logs, records, receipts, routed)
    assert report == check(logs, records, shuffled, routed)  # order of the status topic does not matter
    assert {d.bron: d.reden for d in report.unaccounted} == expected
    assert report.orphans == () and report.ok == (not expected)
    assert report.accounted + report.unaccounted_records == report.ingest_records == len(records)
    assert report.ignored == acks
    assert sum(report.statuses.values()) == report.accounted
    assert report.repeated == sum(c - 1 for _, o, c in outcomes if o not in ("none", "conflict"))
    assert report.no_longer_held == len({r.bron for r in receipts if r.status != "ONTVANGEN"
                                         and r.bron.offset < log_start[r.bron.partition]})


# -- the command -----------------------------------------------------------------------------------------
def test_command_exits_1_on_a_difference_and_prints_one_line_on_an_error(monkeypatch) -> None:
    from herstelbus.cli import main
    from herstelbus.ops import reconcile as adapter
    from herstelbus.ops.common import OpsFout

    rec = record(0)
    seen = {}

    def fake_run(bootstrap, *, since=None, timeout_s):
        seen["since"] = since
        return check([log(end=1)], [rec], [])

    monkeypatch.setattr(adapter, "run", fake_run)
    result = CliRunner().invoke(main, ["reconcile", "--since", "2025-06-02T10:00:00+02:00"])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[0] == "reconcile: 1 ingest records, 0 accounted for, 1 unaccounted"
    assert seen["since"] == dt.datetime(2025, 6, 2, 8, tzinfo=dt.timezone.utc)
    result = CliRunner().invoke(main, ["reconcile", "--json", "--since", "2025-06-02T08:00:00"])
    assert result.exit_code == 1 and json.loads(result.output)["unaccounted"] == 1
    assert seen["since"] == dt.datetime(2025, 6, 2, 8, tzinfo=dt.timezone.utc)  # no offset: UTC

    monkeypatch.setattr(adapter, "run", lambda *a, **k: check([log(end=1)], [rec], [receipt(rec)]))
    assert CliRunner().invoke(main, ["reconcile"]).exit_code == 0

    def broken(*a, **k):
        raise OpsFout("no Kafka broker answers on 127.0.0.1:1")

    monkeypatch.setattr(adapter, "run", broken)
    result = CliRunner().invoke(main, ["reconcile"])
    assert (result.exit_code, result.output) == (1, "herstelbus: error: no Kafka broker answers on 127.0.0.1:1\n")
    assert CliRunner().invoke(main, ["reconcile", "--since", "gisteren"]).exit_code == 2
