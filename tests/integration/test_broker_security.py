"""Broker security on the real broker's SASL_SSL listener (issue 8): `herstelbus topics provision
--principals` makes the SCRAM users, their credential files and ACLs; then each party connects with
its own credentials and the broker, default deny, allows exactly what services/core/acls.py says.

Every denial asserted is the broker's own: its authorization error codes as kafka-python raises them
(TopicAuthorizationFailedError, GroupAuthorizationFailedError); for a wrong password or no
credentials, a client that never gets connected plus the broker's "Failed authentication" log line
with its reason (kafka-python shows the SASL error 58 only when it reads the answer before the close).
kafka-python's poll() logs an unauthorized topic instead of raising, so reading is asserted on the
offset requests, which the broker refuses with TOPIC_AUTHORIZATION_FAILED.

Records written here are harmless to the other tests sharing the broker: UHT's event is a VOW
overdracht (the router answers UNROUTABLE, no gemeente gets it) and gemeente A's ack is a valid
ontvangstbevestiging for an event that was never routed (the acks relay refuses it, audited).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import (
    GroupAuthorizationFailedError, KafkaTimeoutError, SaslAuthenticationFailedError, TopicAuthorizationFailedError,
)

from herstelbus.connectors.uht.publish import send
from herstelbus.core import acls, contracts
from herstelbus.core.bsn import is_valid_bsn
from herstelbus.core.gemeenten import gemeenten_vanaf
from herstelbus.core.topology import INGEST, OVERDRACHT, STATUS, gemeente_acks_topic, gemeente_events_topic
from herstelbus.kafkaclient import client_options
from herstelbus.topics import credentials_file

pytestmark = pytest.mark.kafka

A, B = "GM0363", "GM0599"
VECTORS = Path(__file__).resolve().parents[1] / "unit" / "contracts" / "vectors"
FAST = {"request_timeout_ms": 15000, "bootstrap_timeout_ms": 15000}


def _herstelbus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "herstelbus", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def secured(kafka, tmp_path_factory: pytest.TempPathFactory):
    if kafka.sasl_bootstrap is None or not kafka.started_by_tests:
        # A broker started elsewhere: its SCRAM users' passwords must not be replaced by a test's.
        pytest.skip("needs the SASL_SSL listener of a broker this test session started")
    tmp = tmp_path_factory.mktemp("security")
    env = {"HERSTELBUS_DATA_DIR": str(tmp / "data"), "HERSTELBUS_BOOTSTRAP_SERVERS": kafka.bootstrap,
           "HERSTELBUS_KAFKA_SASL_BOOTSTRAP": kafka.sasl_bootstrap, "HERSTELBUS_KAFKA_SSL_CAFILE": str(kafka.ca_file)}

    dry = _herstelbus(env, "topics", "provision", "--principals", "--dry-run", "--on", "2025-01-01")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert not (tmp / "data" / "credentials").exists()  # a dry run writes nothing

    first = _herstelbus(env, "topics", "provision", "--principals", "--on", "2025-01-01")
    assert first.returncode == 0, first.stderr[-3000:]
    creds = tmp / "data" / "credentials"
    contents = {p.name: p.read_bytes() for p in creds.glob("*.json")}
    second = _herstelbus(env, "topics", "provision", "--principals", "--on", "2025-01-01")
    assert second.returncode == 0, second.stderr[-3000:]
    yield creds, contents, (dry, first, second)


def _options(creds: Path, principal: str, **changes) -> dict:
    return {**client_options(credentials_file(creds, principal)), **FAST, **changes}


def _consumer(creds: Path, principal: str, *topics: str, **kwargs) -> KafkaConsumer:
    return KafkaConsumer(*topics, **_options(creds, principal), enable_auto_commit=False, **kwargs)


def _producer(creds: Path, principal: str) -> KafkaProducer:
    return KafkaProducer(**_options(creds, principal), acks="all", max_block_ms=15000)


def _drain(consumer: KafkaConsumer, timeout_s: float = 60) -> int:
    """Poll until every assigned partition is read to the end it had at the start; records read."""
    deadline = time.monotonic() + timeout_s
    while not consumer.assignment():
        assert time.monotonic() < deadline, "no partitions assigned"
        consumer.poll(timeout_ms=500)
    ends = consumer.end_offsets(list(consumer.assignment()))
    count = 0
    while any(consumer.position(tp) < end for tp, end in ends.items()):
        assert time.monotonic() < deadline, "did not read to the end"
        count += sum(len(batch) for batch in consumer.poll(timeout_ms=500).values())
    return count


def _fresh_bsn() -> str:
    while not is_valid_bsn(bsn := str(random.randrange(999_900_000, 999_950_000))):
        pass
    return bsn


# -- provisioning ---------------------------------------------------------------------------------
def test_provisioning_writes_one_owner_only_file_per_principal_and_keeps_passwords(secured) -> None:
    creds, contents, (dry, first, second) = secured
    codes = [g.code for g in gemeenten_vanaf(dt.date(2025, 1, 1))]
    assert set(contents) == {f"{p}.json" for p in acls.principals(codes)}
    assert stat.S_IMODE(os.stat(creds).st_mode) == 0o700
    for path in creds.glob("*.json"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    data = json.loads(contents[f"{acls.gemeente_principal(A)}.json"])
    assert (data["principal"], data["security_protocol"], data["sasl_mechanism"]) == (
        "User:gemeente-gm0363", "SASL_SSL", "SCRAM-SHA-512")
    assert "would create 346" in dry.stdout and "346 principals: created 346" in first.stdout
    assert "346 principals: created 0, 346 kept" in second.stdout and "ACLs: created 0," in second.stdout
    assert {p.name: p.read_bytes() for p in creds.glob("*.json")} == contents  # the same passwords
    passwords = [json.loads(c)["sasl_plain_password"] for c in contents.values()]
    assert len(set(passwords)) == len(passwords)
    for run in (dry, first, second):
        said = run.stdout + run.stderr
        assert not any(pw in said for pw in passwords)  # never printed (and not shown on failure)


# -- gemeente A -----------------------------------------------------------------------------------
def test_gemeente_reads_its_own_topic_with_its_own_group_and_writes_its_own_acks(secured) -> None:
    creds, _, _ = secured
    a = acls.gemeente_principal(A)
    group = f"{acls.gemeente_group_prefix(A)}-securitytest-{uuid.uuid4().hex[:8]}"
    consumer = _consumer(creds, a, gemeente_events_topic(A), group_id=group, auto_offset_reset="earliest")
    try:
        topic_partitions = [TopicPartition(gemeente_events_topic(A), p)
                            for p in consumer.partitions_for_topic(gemeente_events_topic(A))]
        held = sum(e - b for b, e in zip(consumer.beginning_offsets(topic_partitions).values(),
                                         consumer.end_offsets(topic_partitions).values()))
        assert _drain(consumer) == held
        consumer.commit()  # the group is its own: offsets may be stored
    finally:
        consumer.close()

    ack = {"ack_id": str(uuid.uuid4()), "event_id": str(uuid.uuid4()), "gemeentecode": A, "status": "ONTVANGEN",
           "reden": None, "toelichting": None, "at": dt.datetime.now(dt.timezone.utc)}
    producer = _producer(creds, a)
    try:
        meta = producer.send(gemeente_acks_topic(A), key=ack["event_id"].encode(),
                             value=contracts.encode("ontvangstbevestiging", ack)).get(timeout=30)
    finally:
        producer.close()
    assert meta.topic == gemeente_acks_topic(A)


def test_gemeente_a_cannot_read_b_events(secured) -> None:
    creds, _, _ = secured
    consumer = _consumer(creds, acls.gemeente_principal(A), group_id=None)
    try:
        b_events = TopicPartition(gemeente_events_topic(B), 0)
        with pytest.raises(TopicAuthorizationFailedError):
            consumer.beginning_offsets([b_events])
        with pytest.raises(TopicAuthorizationFailedError):
            consumer.end_offsets([b_events])
        # Listing topics shows only what A may see at all: its own two.
        assert {t for t in consumer.topics() if t.startswith("gemeente.")} == {
            gemeente_events_topic(A), gemeente_acks_topic(A)}
    finally:
        consumer.close()


def test_gemeente_a_cannot_join_b_group(secured) -> None:
    creds, _, _ = secured
    consumer = _consumer(creds, acls.gemeente_principal(A), gemeente_events_topic(A),
                         group_id=acls.gemeente_group_prefix(B))
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            consumer.poll(timeout_ms=10000)
    finally:
        consumer.close()


@pytest.mark.parametrize("topic", [gemeente_acks_topic(B), gemeente_events_topic(A), *INGEST])
def test_gemeente_a_cannot_write_b_acks_its_own_events_or_ingest(secured, topic: str) -> None:
    creds, _, _ = secured
    producer = _producer(creds, acls.gemeente_principal(A))
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(topic, key=b"k", value=b"not allowed").get(timeout=30)
    finally:
        producer.close(timeout=5)


# -- UHT ------------------------------------------------------------------------------------------
def test_uht_writes_ingest_and_reads_status(secured) -> None:
    creds, _, _ = secured
    event = json.loads((VECTORS / "overdracht_minimaal.json").read_text())  # VOW: unroutable, harmless
    event.update(event_id=str(uuid.uuid4()), dossiernummer=f"UHT-2025-{random.randrange(10**6):06d}")
    event["persoon"]["bsn"] = _fresh_bsn()
    producer = _producer(creds, acls.UHT)
    try:
        (future,) = send(producer, [contracts.parse_json_event(event)])
        assert future.get(timeout=30).topic == OVERDRACHT
    finally:
        producer.close()

    consumer = _consumer(creds, acls.UHT, STATUS, group_id=f"{acls.UHT_GROUP_PREFIX}securitytest-{uuid.uuid4().hex[:8]}",
                         auto_offset_reset="latest")
    try:
        _drain(consumer)  # joins its group and reaches the end of every partition
    finally:
        consumer.close()


@pytest.mark.parametrize("topic", [gemeente_events_topic(A), gemeente_acks_topic(B)])
def test_uht_cannot_read_a_gemeente_topic(secured, topic: str) -> None:
    creds, _, _ = secured
    consumer = _consumer(creds, acls.UHT, group_id=None)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            consumer.beginning_offsets([TopicPartition(topic, 0)])
        assert not [t for t in consumer.topics() if t.startswith("gemeente.")]
    finally:
        consumer.close()


def test_uht_cannot_forge_a_gemeente_ack(secured) -> None:
    creds, _, _ = secured
    producer = _producer(creds, acls.UHT)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(gemeente_acks_topic(A), value=b"forged").get(timeout=30)
    finally:
        producer.close(timeout=5)


# -- the broker's view equals the pure model --------------------------------------------------------
@pytest.mark.parametrize("principal", [acls.gemeente_principal(A), acls.UHT, acls.ROUTER, acls.ACKS, acls.OPS])
def test_each_principal_sees_exactly_the_topics_its_bindings_name(secured, kafka, principal: str) -> None:
    creds, _, _ = secured
    codes = [g.code for g in gemeenten_vanaf(dt.date(2025, 1, 1))]
    rules = acls.bindings_for(principal, codes)
    consumer = _consumer(creds, principal, group_id=None)
    try:
        visible = consumer.topics()
    finally:
        consumer.close()
    plaintext = KafkaConsumer(bootstrap_servers=kafka.bootstrap)  # the dev super user sees every topic
    try:
        every = plaintext.topics()
    finally:
        plaintext.close()
    expected = {t for t in every if any(
        r.resource_type == acls.TOPIC and (t == r.resource_name if r.pattern_type == acls.LITERAL
                                           else t.startswith(r.resource_name)) for r in rules)}
    assert visible == expected


# -- no or wrong credentials ----------------------------------------------------------------------
class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _broker_log_lines(kafka, text: str) -> int:
    path = kafka.logs_dir / "server.log"
    return path.read_text(errors="replace").count(text) if path.exists() else 0


def _wait_for_more(kafka, text: str, before: int) -> bool:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if _broker_log_lines(kafka, text) > before:
            return True
        time.sleep(0.2)
    return False


def test_wrong_password_is_refused_by_the_brokers_sasl_check(secured, kafka) -> None:
    creds, _, _ = secured
    options = _options(creds, acls.gemeente_principal(A), sasl_plain_password="not-the-password",
                       bootstrap_timeout_ms=10000)
    reason = "invalid credentials with SASL mechanism SCRAM-SHA-512"
    before = _broker_log_lines(kafka, reason)
    seen = _Records()
    kafka_log = logging.getLogger("kafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.WARNING)  # each failed try is logged at WARNING or ERROR
    kafka_log.addHandler(seen)
    try:
        # kafka-python raises the broker's error 58 when its connection task recorded it before the
        # bootstrap loop looks again; else it retries until the timeout, logging each try's error.
        with pytest.raises((SaslAuthenticationFailedError, KafkaTimeoutError)) as refused:
            KafkaConsumer(**options)
    finally:
        kafka_log.removeHandler(seen)
        kafka_log.setLevel(level)
    errors = [refused.value, *(a for r in seen.records for a in (r.args if isinstance(r.args, tuple) else ())
                               if isinstance(a, Exception))]
    # The broker answers SaslAuthenticate with error 58 and then closes the connection; kafka-python
    # sometimes meets the close first (KafkaConnectionError), or on a busy machine its request
    # timeout. So: the client never got a connection, any SASL error it did read is the broker's ...
    assert all(reason in str(e) for e in errors if isinstance(e, SaslAuthenticationFailedError))
    # ... and the broker's own word on why: "Failed authentication with /127.0.0.1 (...) (Authentication
    # failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512)".
    assert _wait_for_more(kafka, reason, before)


@pytest.mark.parametrize("protocol", ["SSL", "PLAINTEXT"])
def test_a_client_without_credentials_is_refused(secured, kafka, protocol: str) -> None:
    # SSL: TLS but no SASL handshake; PLAINTEXT: not even TLS. The broker closes the connection
    # before answering anything, and says why in its log.
    reason = {"SSL": "during SASL handshake", "PLAINTEXT": "(SSL handshake failed)"}[protocol]
    before = _broker_log_lines(kafka, reason)
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        KafkaConsumer(bootstrap_servers=kafka.sasl_bootstrap, security_protocol=protocol, ssl_cafile=str(kafka.ca_file),
                      bootstrap_timeout_ms=8000)
    assert _wait_for_more(kafka, reason, before)


def test_the_router_works_as_its_own_principal_over_sasl_ssl(secured, kafka, tmp_path) -> None:
    """The worker side of the ACLs: `herstelbus router` with HERSTELBUS_KAFKA_CLIENT_CONFIG (its
    credentials file) on the SASL_SSL listener consumes ingest, keeps its tables, writes the
    gemeente topic and the receipt: its bindings are enough, and default deny does not stop it."""
    from herstelbus.core.acls import ROUTER
    from herstelbus.processes import stop
    from tests.integration.kafka_read import bron_of
    from tests.integration.router_world import AMSTERDAM, World, _event, start_router

    creds, _, _ = secured
    world = World(tmp_path, kafka.bootstrap)
    world.env.update({"HERSTELBUS_BOOTSTRAP_SERVERS": kafka.sasl_bootstrap,
                      "HERSTELBUS_KAFKA_CLIENT_CONFIG": str(credentials_file(creds, ROUTER))})
    log = tmp_path / "router.log"
    proc = start_router(world, log)
    try:
        (position,) = world.publish([_event("overdracht_volledig", gemeentecode=AMSTERDAM)])  # as UHT, plaintext
        seen = world.read(STATUS, lambda got: proc.poll() is not None or position in {
            bron_of(contracts.decode(m.value)[1]) for m in got}, timeout=120)
    finally:
        exit_code = stop(proc, timeout_s=30)
    [receipt] = [r for r in (contracts.decode(m.value)[1] for m in seen) if bron_of(r) == position]
    assert receipt["status"] == "ROUTED" and receipt["doelen"][0]["gemeentecode"] == AMSTERDAM, log.read_text()[-3000:]
    assert exit_code == 0, log.read_text()[-3000:]
    assert "sasl_plain_password" not in log.read_text() and "password" not in log.read_text().lower()
    world.store.close()
