"""The acknowledgement relay on the real broker (issue 6): ROUTED receipts and gemeente acks in,
relayed statuses, audit and unroutable records and one OVERDUE notice out; `herstelbus status`."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import uuid

import pytest
from kafka import KafkaProducer

from herstelbus.core import contracts
from herstelbus.core.privacy import generate_gemeente_key
from herstelbus.core.privacy.keys import public_key_to_pem
from herstelbus.core.topology import AUDIT, STATUS, UNROUTABLE, gemeente_acks_topic, gemeente_events_topic
from herstelbus.processes import stop
from herstelbus.settings import get_settings
from herstelbus.topics import provision, wanted_topics
from tests.integration.kafka_read import read_until, wait_for_line
from tests.integration.router_world import supervised

pytestmark = pytest.mark.kafka

GM, ANDER = "GM1680", "GM0599"  # a gemeente few other tests use, and another one
NOW = dt.datetime.now(dt.timezone.utc)


FAR = 10**15 + uuid.uuid4().int % 10**12


def _receipt(event_id: str, event_type: str, gm: str, offset: int, urgent: bool = False) -> dict:
    return {"status_id": str(uuid.uuid4()), "event_id": event_id, "event_type": event_type, "status": "ROUTED",
            "reden": None, "gemeentecode": None, "ack_id": None, "geminimaliseerd": False, "urgent": urgent, "overgeslagen": [],
            "doelen": [{"gemeentecode": gm, "reden": "WOONGEMEENTE", "oorspronkelijke_gemeentecode": None,
                        "opvolger_gemeentecode": None, "topic": gemeente_events_topic(gm), "partition": 0,
                        "offset": offset}],
            # A position no real ingest record has: other tests match router receipts by position.
            "at": NOW, "bron": {"topic": "uht.overdracht.v1", "partition": 0, "offset": FAR + offset}, "doel": None}


def _ack(event_id: str, status: str, reden: str | None = None) -> dict:
    return {"ack_id": str(uuid.uuid4()), "event_id": event_id, "gemeentecode": GM, "status": status,
            "reden": reden, "toelichting": "geheim vrij tekstveld", "at": dt.datetime.now(dt.timezone.utc)}


def _send(bootstrap: str, items: list[tuple[str, str, dict]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for topic, record_type, record in items:
        producer.send(topic, key=str(record["event_id"]).encode(), value=contracts.encode(record_type, record))
        producer.flush()  # in order: ONTVANGEN before VERWERKT
    producer.close()


def _records(bootstrap: str, topic: str, ids: set[str], until) -> list[dict]:
    def ours(seen: list) -> list[dict]:
        out = []
        for m in seen:
            try:
                record = contracts.decode(m.value)[1]
            except contracts.ContractError:
                continue
            if str(record.get("event_id")) in ids:
                out.append(record)
        return out
    return ours(read_until(bootstrap, topic, lambda seen: until(ours(seen)), timeout=120))


def test_acks_relay(kafka, tmp_path) -> None:
    provision(kafka.bootstrap, wanted_topics(get_settings().topic_policy(), dt.date(2025, 1, 1)), 1)
    ops = generate_gemeente_key()
    (tmp_path / "ops.pub.pem").write_bytes(public_key_to_pem(ops.public_key()))
    env = {**kafka.env, "HERSTELBUS_DATA_DIR": str(tmp_path / "data"),
           "HERSTELBUS_OPS_PUBLIC_KEY_FILE": str(tmp_path / "ops.pub.pem"),
           "HERSTELBUS_ACKS_TERMIJNEN": "ERKENNING=VERWERKT/2s,OVERDRACHT:URGENT=ONTVANGEN/2s", "HERSTELBUS_ACKS_OVERDUE_INTERVAL_S": "0.5",
           "HERSTELBUS_ACKS_GRACE_S": "2"}
    a, b, c, d, e = (str(uuid.uuid4()) for _ in range(5))
    _send(kafka.bootstrap, [(STATUS, "statusbericht", _receipt(a, "OVERDRACHT", GM, 1)),
                            (STATUS, "statusbericht", _receipt(b, "OVERDRACHT", ANDER, 2)),
                            (STATUS, "statusbericht", _receipt(c, "OVERDRACHT", GM, 3)),
                            (STATUS, "statusbericht", _receipt(d, "ERKENNING", GM, 4)),
                            (STATUS, "statusbericht", _receipt(e, "OVERDRACHT", GM, 5, urgent=True))])
    log = tmp_path / "acks.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(supervised("acks"), env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for_line(log, "Worker ready", alive=lambda: proc.poll() is None)
        acks = gemeente_acks_topic(GM)
        _send(kafka.bootstrap, [(acks, "ontvangstbevestiging", _ack(a, "ONTVANGEN")),
                                (acks, "ontvangstbevestiging", _ack(a, "VERWERKT")),
                                (acks, "ontvangstbevestiging", _ack(b, "ONTVANGEN")),  # not routed to GM
                                (acks, "ontvangstbevestiging", _ack(c, "GEWEIGERD", "NIET_ONZE_INWONER"))])

        def relays(records: list[dict]) -> set:
            return {(str(r["event_id"]), r["status"]) for r in records if r["status"] != "ROUTED"}

        # e: an urgent overdracht nobody acknowledged (its urgent deadline here 2 s).
        wanted = {(a, "ONTVANGEN"), (a, "VERWERKT"), (c, "GEWEIGERD"), (d, "OVERDUE"), (e, "OVERDUE")}
        statuses = _records(kafka.bootstrap, STATUS, {a, b, c, d, e}, lambda rs: relays(rs) >= wanted)
        assert relays(statuses) >= wanted, log.read_text()[-3000:]
        for r in statuses:
            if r["status"] != "ROUTED":
                assert r["gemeentecode"] == GM
        [geweigerd] = [r for r in statuses if r["status"] == "GEWEIGERD"]
        assert geweigerd["reden"] == "NIET_ONZE_INWONER" and "geheim" not in repr(geweigerd)

        [audit] = _records(kafka.bootstrap, AUDIT, {b}, bool)
        assert (audit["reden"], audit["gemeentecode"]) == ("NIET_GEROUTEERD_AAN_GEMEENTE", GM)
        [held] = _records(kafka.bootstrap, UNROUTABLE, {c}, bool)
        assert held["reden"] == "NIET_ONZE_INWONER" and held["component"] == "acks"

        time.sleep(3)  # several more overdue checks: still one notice
        statuses = _records(kafka.bootstrap, STATUS, {a, b, c, d, e}, lambda rs: len(relays(rs)) >= 5)
        assert [r["reden"] for r in statuses if str(r["event_id"]) == d and r["status"] == "OVERDUE"] == [
            "VERWERKT_TE_LAAT"]
        [urgent_overdue] = [r for r in statuses if str(r["event_id"]) == e and r["status"] == "OVERDUE"]
        assert (urgent_overdue["reden"], urgent_overdue["urgent"]) == ("ONTVANGEN_TE_LAAT", True)
        assert not [r for r in statuses if str(r["event_id"]) in (a, c) and r["status"] == "OVERDUE"]
        assert not [r for r in statuses if str(r["event_id"]) == b and r["status"] != "ROUTED"]
        assert "geheim" not in log.read_text()

        shown = subprocess.run([sys.executable, "-m", "herstelbus", "status", "--gemeente", GM, "--json"], env=env,
                               capture_output=True, text=True, check=True)
        [row] = json.loads(shown.stdout)
        assert row["gemeentecode"] == GM and row["routed"] >= 3
        assert row["verwerkt"] >= 1 and row["geweigerd"] >= 1 and row["overdue"] >= 2
    finally:
        stop(proc)


def test_acks_wait_for_a_backlog_of_receipts(kafka, tmp_path) -> None:
    """The relay restarted onto a backlog: the acks topic is read long before the ROUTED receipt
    queued behind hundreds of others on uht.status.v1. The ack must wait for it, not be refused
    (it once was, once its grace counted from its publication had passed)."""
    provision(kafka.bootstrap, wanted_topics(get_settings().topic_policy(), dt.date(2025, 1, 1)), 1)
    ops = generate_gemeente_key()
    (tmp_path / "ops.pub.pem").write_bytes(public_key_to_pem(ops.public_key()))
    env = {**kafka.env, "HERSTELBUS_DATA_DIR": str(tmp_path / "data"),
           "HERSTELBUS_OPS_PUBLIC_KEY_FILE": str(tmp_path / "ops.pub.pem"), "HERSTELBUS_ACKS_GRACE_S": "2"}
    x = str(uuid.uuid4())
    backlog = [(STATUS, "statusbericht", _receipt(str(uuid.uuid4()), "OVERDRACHT", ANDER, 10_000 + i))
               for i in range(600)]
    _send(kafka.bootstrap, [*backlog, (STATUS, "statusbericht", _receipt(x, "OVERDRACHT", GM, 9_999)),
                            (gemeente_acks_topic(GM), "ontvangstbevestiging", _ack(x, "ONTVANGEN"))])
    time.sleep(3)  # longer ago than the grace when the relay starts
    log = tmp_path / "acks.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(supervised("acks"), env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        statuses = _records(kafka.bootstrap, STATUS, {x}, lambda rs: any(r["status"] != "ROUTED" for r in rs))
        assert [r["status"] for r in statuses if r["status"] != "ROUTED"] == ["ONTVANGEN"], log.read_text()[-3000:]
        refused = [line for line in log.read_text().splitlines() if x in line and '"geweigerd"' in line]
        assert not refused, refused
    finally:
        stop(proc)
