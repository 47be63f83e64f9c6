"""``herstelbus topics provision``: create every topic the exchange needs, idempotently."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from kafka import KafkaAdminClient
from kafka.errors import for_code

from herstelbus.core.gemeenten import gemeenten_vanaf
from herstelbus.core.topology import TopicPolicy, TopicSpec, topic_specs
from herstelbus.errors import HerstelbusError

_TOPIC_ALREADY_EXISTS = 36
_BATCH = 200  # topics per CreateTopics request: one request for 700 topics can time out


class ProvisionError(HerstelbusError):
    pass


@dataclass
class ProvisionReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


def wanted_topics(policy: TopicPolicy, on: date) -> list[TopicSpec]:
    """Topics for every gemeente that exists on ``on`` or comes into being later."""
    return topic_specs((g.code for g in gemeenten_vanaf(on)), policy)


def provision(bootstrap: str, specs: list[TopicSpec], replication_factor: int,
              dry_run: bool = False) -> ProvisionReport:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="herstelbus-topics")
    try:
        present = set(admin.list_topics())
        report = ProvisionReport(existing=[s.name for s in specs if s.name in present])
        missing = [s for s in specs if s.name not in present]
        if dry_run:
            report.created = [s.name for s in missing]
            return report
        failures: list[str] = []
        for start in range(0, len(missing), _BATCH):
            batch = missing[start:start + _BATCH]
            response = admin.create_topics(
                {s.name: {"num_partitions": s.partitions, "replication_factor": replication_factor,
                          "configs": s.configs} for s in batch},
                raise_errors=False, wait_for_metadata=True,
            )
            for topic in response["topics"]:
                code = topic["error_code"]
                if code == 0:
                    report.created.append(topic["name"])
                elif code == _TOPIC_ALREADY_EXISTS:  # created meanwhile by another provisioner
                    report.existing.append(topic["name"])
                else:
                    failures.append(f"{topic['name']}: {for_code(code).__name__}")
        if failures:
            raise ProvisionError(f"{len(failures)} topics could not be created: " + "; ".join(failures[:5]))
        return report
    finally:
        admin.close()
