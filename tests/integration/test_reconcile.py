"""``herstelbus reconcile`` on the real broker with the real router: events published and routed
reconcile to 0 unaccounted; receipts really deleted, or pointing at a gemeente record that is not
there, are reported and fail the check.

Why the defects are made on a copy of the status topic, not on uht.status.v1: Kafka deletes only a
prefix of a partition (``delete_records`` up to an offset), so deleting one of our receipts on the
shared topic would delete every earlier receipt of every test on that partition (and, on a broker that
was already running, the dev stack's), and the acks relay consumes uht.status.v1 as a strict topic
(faustpatch) where such a jump is an alarm. Fake receipts there would open acks state for events
that were never routed so. So the tests copy their own receipts into a private topic, delete from
that one for real (``delete_records``) or put altered receipts in it, and reconcile against it with
``run(status_topic=...)``; the command itself always reads uht.status.v1 (its first test).
Scope: ``--since`` the moment before publishing, so only this module's ingest records count.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from click.testing import CliRunner
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from herstelbus.cli import main
from herstelbus.core import contracts
from herstelbus.core.ops.reconcile import (
    DOEL_ANDER_EVENT, DOEL_ONTBREEKT, GEEN_ONTVANGSTBEVESTIGING, TEGENSTRIJDIG,
)
from herstelbus.core.routing.refs import KafkaRef
from herstelbus.core.topology import STATUS
from herstelbus.ops.reconcile import run
from herstelbus.processes import stop
from herstelbus.settings import get_settings
from herstelbus.topics import provision, wanted_topics
from tests.integration.kafka_read import bron_of
from tests.integration.router_world import VECTORS, WEESP, ROTTERDAM, World, _event, start_router

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def routed(kafka, tmp_path_factory: pytest.TempPathFactory):
    provision(kafka.bootstrap, wanted_topics(get_settings().topic_policy(), dt.date(2025, 1, 1)), 1)
    world = World(tmp_path_factory.mktemp("reconcile"), kafka.bootstrap)
    log = world.tmp / "router.log"
    partner = json.loads((VECTORS / "overdracht_volledig.json").read_text())["toeslagpartner"]
    events = {
        "urgent": _event("overdracht_volledig"),
        "weesp": _event("overdracht_volledig", gemeentecode=WEESP, dossiernummer="UHT-2021-000877"),
        "nee": _event("overdracht_volledig", contactwens="NEE", dossiernummer="UHT-2021-000879"),
        "vow": _event("overdracht_volledig", woonsituatie="VOW", gemeentecode=None, adres=None,
                      dossiernummer="UHT-2021-000878"),
        "partner": _event("pauzeknop_start", rol="TOESLAGPARTNER", gemeentecode=ROTTERDAM,
                          persoon={k: partner[k] for k in ("bsn", "voornamen", "voorvoegsel", "achternaam",
                                                           "geboortedatum")}),
    }
    events["dubbel"] = dict(events["urgent"])
    names = [*events, "kapot"]
    proc = start_router(world, log)
    try:
        since = dt.datetime.now(dt.timezone.utc)  # the records' timestamps are taken after this
        positions = world.publish([*events.values(), b"\x00 geen avro"])
        seen = world.read(STATUS, lambda seen: proc.poll() is not None or {
            bron_of(contracts.decode(m.value)[1]) for m in seen} >= set(positions))
    finally:
        exit_code = stop(proc, timeout_s=30)
    by_position = dict(zip(positions, names, strict=True))
    receipts: dict[str, list] = {name: [] for name in names}  # the messages, as the router wrote them
    for message in seen:
        bron = bron_of(contracts.decode(message.value)[1])
        if bron in by_position:
            receipts[by_position[bron]].append(message)
    assert all(receipts.values()), (exit_code, log.read_text()[-4000:])
    yield world, events, dict(zip(names, positions, strict=True)), receipts, since
    world.store.close()


@pytest.fixture
def status_copy(kafka):
    """A private status topic (1 partition) and a producer for it; removed afterwards."""
    name = f"reconcile.test.status.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics([NewTopic(name, 1, 1)])
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")

    def send(values: list[tuple[bytes | None, bytes, list]]) -> None:
        for key, value, headers in values:
            producer.send(name, key=key, value=value, headers=headers)
        producer.flush()

    try:
        yield name, send, admin
    finally:
        producer.close()
        admin.delete_topics([name])
        admin.close()


def _raw(message) -> tuple[bytes | None, bytes, list]:
    return message.key, message.value, list(message.headers or ())


def _receipt(message) -> dict:
    return contracts.decode(message.value)[1]


def _altered(message, **changes) -> tuple[bytes | None, bytes, list]:
    return message.key, contracts.encode("statusbericht", {**_receipt(message), **changes}), []


def test_every_event_is_accounted_for(routed) -> None:
    world, events, positions, receipts, since = routed
    assert {n: _receipt(m[0])["status"] for n, m in receipts.items()} == {
        "urgent": "ROUTED", "weesp": "ROUTED", "nee": "ROUTED", "vow": "UNROUTABLE", "partner": "ROUTED",
        "dubbel": "DUPLICATE", "kapot": "INVALID"}
    result = CliRunner().invoke(main, ["reconcile", "--since", since.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    counts = ("ingest_records", "accounted", "unaccounted", "orphan_receipts")
    assert tuple(report[k] for k in counts) == (7, 7, 0, 0)
    assert report["statuses"] == {"DUPLICATE": 1, "INVALID": 1, "ROUTED": 4, "UNROUTABLE": 1}

    text = CliRunner().invoke(main, ["reconcile", "--since", since.isoformat()])
    assert text.exit_code == 0 and text.output.splitlines()[0] == (
        "reconcile: 7 ingest records, 7 accounted for, 0 unaccounted")
    for event in events.values():  # positions, ids and codes only
        assert event["persoon"]["bsn"] not in text.output + result.output
        assert event["persoon"]["achternaam"] not in text.output + result.output


def test_deleted_receipts_are_unaccounted(routed, status_copy, kafka) -> None:
    world, events, positions, receipts, since = routed
    topic, send, admin = status_copy
    gone = ["weesp", "vow"]
    send([_raw(m) for name in gone for m in receipts[name]])
    send([_raw(m) for name, ms in receipts.items() if name not in gone for m in ms])
    deleted = sum(len(receipts[name]) for name in gone)
    admin.delete_records({TopicPartition(topic, 0): deleted})  # a real deletion: the log starts after them
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap)
    assert consumer.beginning_offsets([TopicPartition(topic, 0)])[TopicPartition(topic, 0)] == deleted
    consumer.close()

    report = run(kafka.bootstrap, since=since, status_topic=topic, timeout_s=120)
    assert not report.ok and (report.ingest_records, report.accounted) == (7, 5)
    assert {(d.bron, d.reden, d.event_id) for d in report.unaccounted} == {
        (KafkaRef(*positions[name]), GEEN_ONTVANGSTBEVESTIGING, events[name]["event_id"]) for name in gone}
    assert report.summary() == "reconcile: 7 ingest records, 5 accounted for, 2 unaccounted"


def test_receipts_that_point_nowhere_or_disagree_are_unaccounted(routed, status_copy, kafka) -> None:
    world, events, positions, receipts, since = routed
    topic, send, _ = status_copy
    weesp, nee, urgent = (_receipt(receipts[n][0]) for n in ("weesp", "nee", "urgent"))
    (weesp_doel,) = weesp["doelen"]
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap)
    tp = TopicPartition(weesp_doel["topic"], weesp_doel["partition"])
    nowhere = consumer.end_offsets([tp])[tp] + 1000
    consumer.close()
    altered = {
        # a ROUTED receipt whose gemeente record does not exist
        "weesp": [_altered(receipts["weesp"][0], doelen=[{**weesp_doel, "offset": nowhere}])],
        # one that points at the record of another event
        "nee": [_altered(receipts["nee"][0], doelen=[{**nee["doelen"][0], **{
            k: urgent["doelen"][0][k] for k in ("topic", "partition", "offset")}}])],
        # two different terminal receipts for one record
        "partner": [_raw(m) for m in receipts["partner"]] + [_altered(
            receipts["partner"][0], status="UNROUTABLE", reden="VOW", doelen=[], status_id=str(uuid.uuid4()))],
        # the same receipt again (at-least-once): no defect
        "urgent": [_raw(receipts["urgent"][0])] * 2,
    }
    send([v for name, ms in receipts.items() for v in altered.get(name, [_raw(m) for m in ms])])

    report = run(kafka.bootstrap, since=since, status_topic=topic, timeout_s=120)
    assert {(d.bron, d.reden) for d in report.unaccounted} == {
        (KafkaRef(*positions["weesp"]), DOEL_ONTBREEKT), (KafkaRef(*positions["nee"]), DOEL_ANDER_EVENT),
        (KafkaRef(*positions["partner"]), TEGENSTRIJDIG)}
    missing = next(d for d in report.unaccounted if d.reden == DOEL_ONTBREEKT)
    assert missing.doel == KafkaRef(weesp_doel["topic"], weesp_doel["partition"], nowhere)
    assert missing.event_id == events["weesp"]["event_id"]
    assert report.repeated >= 1 and report.accounted == 4 and not report.ok
    assert report.statuses == {"DUPLICATE": 1, "INVALID": 1, "ROUTED": 1, "UNROUTABLE": 1}
