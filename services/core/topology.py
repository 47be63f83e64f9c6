"""The topics of herstelbus, declared once: names, partitions and retention.

Pure: which topics must exist for which gemeenten, and with which settings. Creating them is the
adapter's job (``herstelbus topics provision``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

# UHT's ingest topics hold plaintext persoonsgegevens: short retention by design.
OVERDRACHT = "uht.overdracht.v1"
PAUZEKNOP = "uht.pauzeknop.v1"
ERKENNING = "uht.erkenning.v1"
INGEST = (OVERDRACHT, PAUZEKNOP, ERKENNING)
STATUS = "uht.status.v1"
DEADLETTER = "herstel.deadletter.v1"
UNROUTABLE = "herstel.unroutable.v1"
AUDIT = "herstel.audit.v1"

# The router's faust tables (event ids seen, gemeenten involved per pseudonym) live in compacted
# changelog topics named by faust as <app id>-<table>-changelog; herstelbus creates them itself.
ROUTER_APP_ID = "herstelbus-router"
ROUTER_TABLES = ("gezien", "betrokken")

# Kafka's default record limit, pinned on every topic but the two ops topics, so an input never
# exceeds it whatever the broker's default. A dead letter or held event carries its input sealed plus
# the reasons (about 1 KiB more): the ops topics take twice as much, so every input's dead letter
# fits, and the workers' producers may send that much.
MAX_MESSAGE_BYTES = 1_048_588
OPS_MAX_MESSAGE_BYTES = 2 * MAX_MESSAGE_BYTES

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def changelog_topic(app_id: str, table: str) -> str:
    return f"{app_id}-{table}-changelog"


def gemeente_events_topic(gemeentecode: str) -> str:
    return f"gemeente.{gemeentecode}.events.v1"


def gemeente_acks_topic(gemeentecode: str) -> str:
    return f"gemeente.{gemeentecode}.acks.v1"


@dataclass(frozen=True)
class TopicPolicy:
    """What an operator may tune; the defaults suit a local single-node broker."""

    replication_factor: int = 1
    min_insync_replicas: int = 1
    ingest_partitions: int = 3
    gemeente_partitions: int = 1
    ingest_retention_ms: int = DAY_MS  # plaintext: 24 hours, no longer
    gemeente_retention_ms: int = 5 * 365 * DAY_MS  # replay window; erasure is by crypto-shredding
    acks_retention_ms: int = 90 * DAY_MS
    status_retention_ms: int = 365 * DAY_MS
    ops_retention_ms: int = 365 * DAY_MS  # dead letters and held events wait for ops
    audit_retention_ms: int = -1  # provability: kept


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def _spec(name: str, partitions: int, retention_ms: int, policy: TopicPolicy) -> TopicSpec:
    return TopicSpec(name, partitions, {
        "retention.ms": str(retention_ms),
        "min.insync.replicas": str(policy.min_insync_replicas),
        "cleanup.policy": "delete",
        "max.message.bytes": str(OPS_MAX_MESSAGE_BYTES if name in (DEADLETTER, UNROUTABLE) else MAX_MESSAGE_BYTES),
    })


def topic_specs(gemeentecodes: Iterable[str], policy: TopicPolicy = TopicPolicy()) -> list[TopicSpec]:
    """Every topic herstelbus needs: ingest, status, ops, and two per gemeente."""
    specs = [_spec(name, policy.ingest_partitions, policy.ingest_retention_ms, policy) for name in INGEST]
    specs.append(_spec(STATUS, policy.ingest_partitions, policy.status_retention_ms, policy))
    specs += [_spec(name, 1, policy.ops_retention_ms, policy) for name in (DEADLETTER, UNROUTABLE)]
    specs.append(_spec(AUDIT, 1, policy.audit_retention_ms, policy))
    for table in ROUTER_TABLES:  # same partition count as the ingest topics (faust requires it)
        specs.append(TopicSpec(changelog_topic(ROUTER_APP_ID, table), policy.ingest_partitions, {
            "cleanup.policy": "compact", "min.insync.replicas": str(policy.min_insync_replicas),
            "max.message.bytes": str(MAX_MESSAGE_BYTES)}))
    for code in sorted(set(gemeentecodes)):
        specs.append(_spec(gemeente_events_topic(code), policy.gemeente_partitions,
                           policy.gemeente_retention_ms, policy))
        specs.append(_spec(gemeente_acks_topic(code), policy.gemeente_partitions,
                           policy.acks_retention_ms, policy))
    return specs
