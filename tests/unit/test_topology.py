from herstelbus.core.topology import (
    AUDIT, DAY_MS, DEADLETTER, INGEST, STATUS, UNROUTABLE, TopicPolicy, gemeente_acks_topic,
    gemeente_events_topic, topic_specs,
)


def test_every_topic_once_with_two_per_gemeente() -> None:
    specs = topic_specs(["GM0363", "GM0599", "GM0363"])
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    assert set(names) == {*INGEST, STATUS, DEADLETTER, UNROUTABLE, AUDIT,
                          "herstelbus-router-gezien-changelog", "herstelbus-router-betrokken-changelog",
                          "gemeente.GM0363.events.v1", "gemeente.GM0363.acks.v1",
                          "gemeente.GM0599.events.v1", "gemeente.GM0599.acks.v1"}
    assert gemeente_events_topic("GM0363") == "gemeente.GM0363.events.v1"
    assert gemeente_acks_topic("GM0363") == "gemeente.GM0363.acks.v1"


def test_plaintext_ingest_is_kept_24_hours_and_gemeente_topics_long() -> None:
    by_name = {s.name: s for s in topic_specs(["GM0363"])}
    for name in INGEST:
        assert by_name[name].configs["retention.ms"] == str(DAY_MS)
    assert int(by_name["gemeente.GM0363.events.v1"].configs["retention.ms"]) >= 365 * DAY_MS
    assert by_name[AUDIT].configs["retention.ms"] == "-1"


def test_policy_carries_production_settings() -> None:
    specs = topic_specs(["GM0363"], TopicPolicy(min_insync_replicas=2, ingest_partitions=6))
    assert all(s.configs["min.insync.replicas"] == "2" for s in specs)
    assert {s.partitions for s in specs if s.name in INGEST} == {6}
