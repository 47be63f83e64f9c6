"""Publishing UHT events to the ingest topics: Avro single-object encoding, CloudEvents headers,
keyed by dossiernummer so one dossier's events stay in order on one partition.

`herstelbus uht publish FILE` (connectors/uht/cli.py) and the outbox relay (outbox.py) build on this.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kafka import KafkaProducer

from herstelbus.kafkaclient import security
from herstelbus.core import contracts

UHT_OIN = "00000001003214345000"  # placeholder OIN in ce_source for local use and tests


def ingest_record(record_type: str, record: dict[str, Any], source: str) -> tuple[str, bytes, bytes, list]:
    """(topic, key, value, headers) of one UHT event."""
    return (f"uht.{record_type}.v1", record["dossiernummer"].encode(), contracts.encode(record_type, record),
            contracts.headers_for(record_type, record, source=source))


def new_producer(bootstrap: str) -> KafkaProducer:
    """acks=all and idempotence: a retried send neither duplicates nor reorders within a partition."""
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                         **security())


def send(producer: KafkaProducer, records: Iterable[tuple[str, dict[str, Any]]],
         source: str | None = None) -> list:
    """Send (record_type, record) pairs and flush; returns their futures, in order, all completed."""
    source = source or contracts.source_urn(UHT_OIN, "uht")
    futures = []
    for record_type, record in records:
        topic, key, value, headers = ingest_record(record_type, record, source)
        futures.append(producer.send(topic, key=key, value=value, headers=headers))
    producer.flush()
    return futures


def publish(bootstrap: str, records: Iterable[tuple[str, dict[str, Any]]],
            source: str | None = None) -> list[tuple[str, int, int]]:
    """Send (record_type, record) pairs; returns each one's (topic, partition, offset) once acknowledged."""
    producer = new_producer(bootstrap)
    try:
        return [(m.topic, m.partition, m.offset) for m in (f.get() for f in send(producer, records, source))]
    finally:
        producer.close()
