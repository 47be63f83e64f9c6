"""What the ops commands share on the Kafka side: reading topics and single positions without a
consumer group (nothing committed, no worker disturbed), ``--since``, who acted, the exchange's
CloudEvents source, audit records, the ops private key, and sending copies back to their source
topic with their audit records (redrive and reroute)."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from herstelbus.kafkaclient import security
from herstelbus.core.ops import deadletter as d
from herstelbus.core.ops.replay import AFGEBROKEN, BROKERFOUT
from herstelbus.core.routing.refs import KafkaRef
from herstelbus.errors import HerstelbusError

WACHT_S = 60.0  # how long the broker may take to acknowledge what was sent
LEES_S = 300.0  # how long reading the topics may take


class OpsFout(HerstelbusError):
    """An ops command that cannot read, open or write what it must (one line: ids and codes only)."""


class OpsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HERSTELBUS_", frozen=True, extra="ignore")

    ops_private_key_file: Path | None = Field(default=None, description=(
        "Ops' private key (PEM, x25519 or hybrid mlkem768x25519), the pair of HERSTELBUS_OPS_PUBLIC_KEY_FILE: opens the sealed "
        "originals of dead letters and held events for redrive and reroute. Only ops hold it."))

    @field_validator("ops_private_key_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value


def ops_private_key(settings: OpsSettings | None = None) -> Any:
    """Fails closed, in one line, when the key is not configured, unreadable or no X25519 key."""
    from herstelbus.core.privacy import PrivacyError
    from herstelbus.core.privacy.keys import load_gemeente_private_key

    path = (settings or OpsSettings()).ops_private_key_file
    if path is None:
        raise OpsFout("ops private key not configured: set HERSTELBUS_OPS_PRIVATE_KEY_FILE "
                      "(herstelbus dev up writes .herstelbus/dev/ops.pem)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OpsFout(f"ops private key unreadable at {path}: {exc.strerror}") from None
    try:
        return load_gemeente_private_key(data)
    except PrivacyError as exc:
        raise OpsFout(f"ops private key at {path} is no ops private key in PEM (x25519 or mlkem768x25519) ({exc})") from None


# -- options and values every ops command uses -------------------------------------------------------
def parse_time(value: str) -> datetime:
    """ISO 8601; a time without an offset is UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("not an ISO 8601 time, e.g. 2025-06-02T10:00:00+02:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def since_option(help: str) -> Callable:
    return click.option("--since", metavar="TIME", default=None, help=help,
                        callback=lambda _c, _p, v: None if v is None else parse_time(v))


def quiet_logging() -> None:
    import logging

    from herstelbus.logs import configure_logging

    configure_logging()
    logging.getLogger("kafka").setLevel(logging.WARNING)  # its INFO is per connection


def ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def nu() -> datetime:
    return datetime.now(timezone.utc)


def actor_of(actor: str | None) -> str:
    """``--actor``, or ``cli:<OS user>``: one rule for who acted, as erase records it."""
    if actor:
        return actor
    from herstelbus.keystore.cli import os_actor

    return os_actor()


def exchange_source() -> str:
    """The exchange's CloudEvents source (HERSTELBUS_OIN, HERSTELBUS_SYSTEEM), as the router's."""
    from herstelbus.core.contracts import source_urn
    from herstelbus.router.settings import RouterSettings

    exchange = RouterSettings()
    return source_urn(exchange.oin, exchange.systeem)


# -- reading -----------------------------------------------------------------------------------------
def consumer(bootstrap: str, client_id: str) -> KafkaConsumer:
    try:
        return KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", client_id=client_id, bootstrap_timeout_ms=10_000,
                             **security())
    except KafkaError:
        raise OpsFout(f"no Kafka broker answers on {bootstrap}") from None


@contextmanager
def reading(bootstrap: str, client_id: str, timeout_s: float = LEES_S) -> Iterator[tuple[KafkaConsumer, float]]:
    """A consumer without a group and the deadline for reading; a broker failure is one line."""
    c = consumer(bootstrap, client_id)
    try:
        yield c, time.monotonic() + timeout_s
    except KafkaError as exc:
        raise OpsFout(f"Kafka on {bootstrap}: {type(exc).__name__}") from None
    finally:
        c.close()


def partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        raise OpsFout(f"topic {topic} does not exist (herstelbus topics provision creates it)")
    return [TopicPartition(topic, p) for p in sorted(parts)]


def read(consumer: KafkaConsumer, ranges: dict[TopicPartition, tuple[int, int]], handle: Callable,
         deadline: float) -> None:
    """Every record in [start, end) of each partition, in offset order per partition."""
    pending = {tp: r for tp, r in ranges.items() if r[0] < r[1]}
    if not pending:
        return
    consumer.assign(list(pending))
    for tp, (start, _) in pending.items():
        consumer.seek(tp, start)
    while pending:
        if time.monotonic() > deadline:
            late = ", ".join(sorted(f"{tp.topic}/{tp.partition}" for tp in pending)[:5])
            raise OpsFout(f"reading did not reach the end offsets in time ({late}); try --timeout")
        for tp, messages in consumer.poll(timeout_ms=500).items():
            end = ranges[tp][1]
            for message in messages:
                if message.offset < end:
                    handle(message)
        for tp in [tp for tp in pending if consumer.position(tp) >= pending[tp][1]]:
            del pending[tp]
            consumer.pause(tp)
    consumer.unsubscribe()


def read_topic(consumer: KafkaConsumer, topic: str, handle: Callable, deadline: float) -> None:
    """The whole topic as it is now, from its log start to its end."""
    parts = partitions(consumer, topic)
    starts, ends = consumer.beginning_offsets(parts), consumer.end_offsets(parts)
    read(consumer, {tp: (starts[tp], ends[tp]) for tp in parts}, handle, deadline)


def read_positions(consumer: KafkaConsumer, positions: Collection[KafkaRef], handle: Callable,
                   deadline: float) -> None:
    """``handle(message)`` for the record at each position that still holds one."""
    wanted: dict[TopicPartition, set[int]] = defaultdict(set)
    existing = consumer.topics() if positions else set()
    for ref in positions:
        if ref.topic in existing and ref.partition in (consumer.partitions_for_topic(ref.topic) or ()):
            wanted[TopicPartition(ref.topic, ref.partition)].add(ref.offset)
    if not wanted:
        return
    parts = list(wanted)
    starts, ends = consumer.beginning_offsets(parts), consumer.end_offsets(parts)
    ranges = {}
    for tp, offsets in wanted.items():
        held = [o for o in offsets if starts[tp] <= o < ends[tp]]
        if held:
            ranges[tp] = (min(held), max(held) + 1)
    read(consumer, ranges, lambda m: m.offset in wanted[TopicPartition(m.topic, m.partition)] and handle(m), deadline)


def ref_of(message: Any) -> KafkaRef:
    return KafkaRef(message.topic, message.partition, message.offset)


def read_kopieen(consumer: KafkaConsumer, deadline: float) -> list[d.Kopie]:
    """The copies earlier redrive and reroute runs sent, from their audit records on herstel.audit.v1."""
    from herstelbus.core import contracts
    from herstelbus.core.topology import AUDIT

    kopieen: list[d.Kopie] = []

    def handle(message: Any) -> None:
        try:
            record_type, record = contracts.decode(message.value or b"")
        except contracts.ContractError:
            return  # not an audit record: none of ours
        kopie = d.kopie_uit_audit(record) if record_type == "audit" else None
        if kopie is not None:
            kopieen.append(kopie)

    read_topic(consumer, AUDIT, handle, deadline)
    return kopieen


# -- writing -----------------------------------------------------------------------------------------
def producer(bootstrap: str, client_id: str) -> KafkaProducer:
    try:
        return KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                             client_id=client_id, **security())
    except KafkaError:
        raise OpsFout(f"no Kafka broker answers on {bootstrap}") from None


def send_audit(producer: KafkaProducer, source: str, records: Sequence[dict[str, Any]]) -> None:
    """Audit records to herstel.audit.v1, each acknowledged; a KafkaError when the broker refuses."""
    from herstelbus.core import contracts
    from herstelbus.core.topology import AUDIT

    futures = [producer.send(AUDIT, key=str(r["audit_id"]).encode(), value=contracts.encode("audit", r),
                             headers=contracts.headers_for("audit", r, source=source)) for r in records]
    for future in futures:
        future.get(timeout=WACHT_S)


@dataclass(frozen=True)
class Zending:
    """A copy to send: the original record as read, headers marked (``d.kopie_headers``)."""

    besluit: d.Besluit
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass
class Uitkomst:
    geschreven: dict[str, KafkaRef] = field(default_factory=dict)  # herkomst -> where its copy went
    audit_id: str | None = None  # None for a dry run


def send_again(bootstrap: str, actie: str, zendingen: Sequence[Zending], tellingen: d.Tellingen, *, actor: str,
               source: str, topic: str | None) -> Uitkomst:
    """Each copy to its original's topic and partition; then, for the copies the broker took, one
    audit record each, and one for the run (also when it stopped early). A crash between a copy
    and its audit record sends that copy again next time: at least once, as everywhere here."""
    uitkomst = Uitkomst(audit_id=str(uuid.uuid4()))
    prod = producer(bootstrap, f"herstelbus-{actie}")
    reden = fout = None
    futures = []
    try:
        try:
            for z in zendingen:
                bron = z.besluit.kandidaat.bron
                futures.append((z, prod.send(bron.topic, key=z.key, value=z.value, headers=z.headers,
                                             partition=bron.partition)))
            prod.flush(timeout=WACHT_S)
        except KeyboardInterrupt:
            reden, fout = AFGEBROKEN, "interrupted"
        except KafkaError as exc:
            reden, fout = BROKERFOUT, type(exc).__name__
        for z, future in futures:
            if future.is_done and future.succeeded():
                meta = future.value
                uitkomst.geschreven[z.besluit.kandidaat.herkomst] = KafkaRef(meta.topic, meta.partition, meta.offset)
            elif reden is None:
                reden, fout = BROKERFOUT, type(future.exception).__name__ if future.is_done else "not acknowledged"
        tellingen.opnieuw = len(uitkomst.geschreven)
        at = nu()
        kopieen = [d.kopie_audit(actie, z.besluit.kandidaat, uitkomst.geschreven[z.besluit.kandidaat.herkomst],
                                 actor=actor, at=at) for z in zendingen if z.besluit.kandidaat.herkomst in uitkomst.geschreven]
        run = d.run_audit(audit_id=uitkomst.audit_id, at=at, actor=actor, actie=actie, topic=topic,
                          tellingen=tellingen, reden=reden)
        try:
            send_audit(prod, source, [*kopieen, run])
        except KafkaError as exc:
            raise OpsFout(f"{actie}: {tellingen.opnieuw} sent again, but their audit records were not written to "
                          f"herstel.audit.v1 ({type(exc).__name__}): a next run would send them once more") from None
    finally:
        prod.close(timeout=WACHT_S)
    if fout is not None:
        raise OpsFout(f"{actie} stopped ({fout}): {tellingen.opnieuw} of {len(zendingen)} sent again; "
                      f"audit {uitkomst.audit_id}")
    return uitkomst


__all__ = [
    "LEES_S", "OpsFout", "OpsSettings", "Uitkomst", "WACHT_S", "Zending", "actor_of", "consumer", "exchange_source",
    "ms", "nu", "ops_private_key", "quiet_logging", "parse_time", "partitions", "producer", "read", "read_kopieen", "read_positions",
    "read_topic", "reading", "ref_of", "send_again", "send_audit", "since_option",
]
