"""`herstelbus topics provision` against the real broker: everything once, then nothing."""

from __future__ import annotations

from datetime import date

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from herstelbus.core.topology import DAY_MS, OVERDRACHT
from herstelbus.settings import get_settings
from herstelbus.topics import provision, wanted_topics

pytestmark = pytest.mark.kafka


def test_provision_creates_all_then_nothing(kafka) -> None:
    settings = get_settings()
    specs = wanted_topics(settings.topic_policy(), date(2025, 1, 1))
    assert len(specs) == 9 + 2 * 342

    first = provision(kafka.bootstrap, specs, replication_factor=1)
    second = provision(kafka.bootstrap, specs, replication_factor=1)
    assert len(first.created) + len(first.existing) == len(specs)
    assert second.created == [] and sorted(second.existing) == sorted(s.name for s in specs)

    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        assert {s.name for s in specs} <= set(admin.list_topics())
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, OVERDRACHT)])
        assert configs["topic"][OVERDRACHT]["retention.ms"]["value"] == str(DAY_MS)  # plaintext: 24 h
    finally:
        admin.close()
