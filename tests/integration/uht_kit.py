"""Helpers for the UHT publisher and outbox tests: fresh event ids per run (the broker and its
topics are shared, and may already hold an earlier run's events) and reading the ingest topics."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import defaultdict

from kafka import KafkaConsumer, TopicPartition

from herstelbus.connectors.uht.synthetic import generate
from herstelbus.core.topology import INGEST
from herstelbus.settings import get_settings
from herstelbus.topics import provision, wanted_topics


def provision_topics(bootstrap: str) -> None:
    provision(bootstrap, wanted_topics(get_settings().topic_policy(), dt.date(2025, 1, 1)), 1)


def fresh_events(count: int, seed: int) -> list[dict]:
    """Synthetic events with new random event ids; a duplicate keeps sharing its original's id."""
    new_ids: dict[str, str] = defaultdict(lambda: str(uuid.uuid4()))
    return [dict(e, event_id=new_ids[e["event_id"]]) for e in generate(count, seed=seed)]


def read_ingest(bootstrap: str, timeout: float = 180) -> dict[str, list]:
    """event_id -> messages, over every ingest topic from the start up to its end now."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(t, p) for t in INGEST for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        by_id: dict[str, list] = defaultdict(list)
        deadline = time.monotonic() + timeout
        while any(consumer.position(p) < end[p] for p in parts):
            assert time.monotonic() < deadline, "ingest topics not read to their end in time"
            for batch in consumer.poll(timeout_ms=500).values():
                for message in batch:
                    ce_id = dict(message.headers or ()).get("ce_id")  # other tests send corrupt records too
                    if ce_id:
                        by_id[ce_id.decode(errors="replace")].append(message)
        return by_id
    finally:
        consumer.close()
