"""Ask a broker who it is, with kafka-python's admin client (works for any cluster, not only ours)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.errors import KafkaError, RetriableError

# Only "nobody answers (yet)" means None; a misconfiguration must surface, not look like a down broker.
_NOT_ANSWERING = (RetriableError, OSError)


@dataclass(frozen=True)
class ClusterInfo:
    cluster_id: str
    controller_id: int
    brokers: tuple[tuple[int, str, int], ...]  # (node id, host, port)
    metadata_version_level: int | None  # the KRaft metadata.version feature level in force


def cluster_info(bootstrap: str, timeout_s: float = 5.0) -> ClusterInfo | None:
    """The cluster's answer to a metadata request, or None when nothing answers in time."""
    ms = int(timeout_s * 1000)
    quiet = logging.getLogger("kafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # connection-refused noise while a broker starts is expected
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=ms, bootstrap_timeout_ms=ms,
            client_id="herstelbus-probe",
        )
    except _NOT_ANSWERING:
        quiet.setLevel(level)
        return None
    try:
        cluster = admin.describe_cluster()
        try:
            features = admin.describe_features()
            level_in_force = features.get("metadata.version", {}).get("finalized", (None,))[0]
        except (KafkaError, AttributeError):
            level_in_force = None
        return ClusterInfo(
            cluster_id=cluster["cluster_id"],
            controller_id=cluster["controller_id"],
            brokers=tuple((b["broker_id"], b["host"], b["port"]) for b in cluster["brokers"]),
            metadata_version_level=level_in_force,
        )
    except _NOT_ANSWERING:
        return None
    finally:
        admin.close()
        quiet.setLevel(level)
