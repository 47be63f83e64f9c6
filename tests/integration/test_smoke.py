"""The first end-to-end path on the real broker: kafka-python -> faust agent -> kafka-python."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer

from herstelbus.settings import get_settings
from herstelbus.smoke.app import HOP_HEADER
from herstelbus.smoke.run import run_smoke

pytestmark = pytest.mark.kafka


def test_faust_agent_relays_every_record_in_order_with_headers(kafka) -> None:
    result = run_smoke(get_settings(), count=25, timeout_s=120)

    # Read the sink again with a consumer of our own, independent of run_smoke's reader.
    consumer = KafkaConsumer(result.sink, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5000)
    records = list(consumer)
    consumer.close()

    assert [(r.key, r.value) for r in records] == [(k, v) for k, v, _ in result.sent]
    for record, (_, _, sent_headers) in zip(records, result.sent):
        headers = dict(record.headers)
        assert headers["ce_id"] == sent_headers["ce_id"]
        assert headers[HOP_HEADER].startswith(b"herstelbus-smoke-")
