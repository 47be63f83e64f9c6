"""Kubernetes manifests for herstelbus on a Strimzi-managed Kafka cluster, as plain dicts.

Pure: from a topic policy, the gemeentecodes and a few options to the resources, grouped per file.
The topics are ``topology.topic_specs`` and the users' ACLs ``acls.bindings_for``, converted and
never restated, so the cluster cannot drift from what ``topics provision`` would create. The
workers' Deployments are in :mod:`herstelbus.deploy.workers`; writing files is the CLI's job.

Strimzi 1.2.0 serves its resources as ``kafka.strimzi.io/v1`` only (KRaft and node pools only).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import yaml

from herstelbus.core import acls
from herstelbus.core.topology import TopicPolicy, TopicSpec, topic_specs
from herstelbus.errors import HerstelbusError

STRIMZI_API = "kafka.strimzi.io/v1"
NODES = 3  # one pool of 3 broker+controller nodes: a KRaft quorum that survives one node down
REPLICAS = 3
MIN_INSYNC = 2  # with acks=all (every herstelbus producer) a write survives one broker down
CLIENT_PORT = 9093  # the only client listener: SCRAM-SHA-512 over TLS
# The one super user besides Strimzi's own operators (which it adds itself): for break-glass work
# with Kafka's tools. herstelbus itself never connects as it.
ADMIN = "herstelbus-admin"
FILES = ("kafka.yaml", "topics.yaml", "users.yaml", "workers.yaml")

# Kubernetes object names: lowercase RFC 1123 subdomains, at most 253 characters.
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # a namespace's name


class DeployError(HerstelbusError):
    pass


@dataclass(frozen=True)
class K8sOptions:
    namespace: str = "herstelbus"
    image: str = "herstelbus:latest"
    router_replicas: int = 2
    cluster: str = "herstelbus"  # the Kafka resource's name; Strimzi names its services after it

    @property
    def bootstrap(self) -> str:
        """Strimzi's bootstrap service, on the TLS listener."""
        return f"{self.cluster}-kafka-bootstrap.{self.namespace}.svc:{CLIENT_PORT}"

    @property
    def cluster_ca_secret(self) -> str:
        """The Secret Strimzi keeps the cluster CA certificate in (key ``ca.crt``): what clients trust."""
        return f"{self.cluster}-cluster-ca-cert"


def cluster_policy(policy: TopicPolicy, ingest_partitions: int, gemeente_partitions: int) -> TopicPolicy:
    """The operator's policy (retention from the settings) with this cluster's replication."""
    return replace(policy, replication_factor=REPLICAS, min_insync_replicas=MIN_INSYNC,
                   ingest_partitions=ingest_partitions, gemeente_partitions=gemeente_partitions)


def k8s_name(name: str) -> str:
    """A Kafka topic or user name as a Kubernetes object name: lowercased (``GM0363`` → ``gm0363``),
    ``_`` as ``-``. Refused when that is still no valid name."""
    safe = name.lower().replace("_", "-")
    if len(safe) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(safe):
        raise DeployError(f"{name!r} cannot be a Kubernetes object name")
    return safe


def check(policy: TopicPolicy, options: K8sOptions) -> None:
    if not _DNS1123_LABEL.fullmatch(options.namespace):
        raise DeployError(f"--namespace {options.namespace!r}: not a Kubernetes namespace name")
    if options.router_replicas > policy.ingest_partitions:
        raise DeployError(
            f"--router-replicas {options.router_replicas} is above the {policy.ingest_partitions} ingest "
            "partitions: a router beyond the partition count gets no partition and idles. Lower "
            "--router-replicas or raise --ingest-partitions (partitions can grow, never shrink).")
    if policy.replication_factor > NODES:
        raise DeployError(f"replication factor {policy.replication_factor} above the {NODES} Kafka nodes")


def _meta(name: str, options: K8sOptions, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": options.namespace}
    if labels:
        meta["labels"] = dict(labels)
    return meta


def _of_cluster(name: str, options: K8sOptions) -> dict[str, Any]:
    # The label tells Strimzi's operators which Kafka cluster a pool, topic or user belongs to.
    return _meta(name, options, **{"strimzi.io/cluster": options.cluster})


# -- the cluster ----------------------------------------------------------------------------------
def kafka_cluster(options: K8sOptions) -> list[dict[str, Any]]:
    pool = {
        "apiVersion": STRIMZI_API, "kind": "KafkaNodePool", "metadata": _of_cluster("dual-role", options),
        "spec": {
            "replicas": NODES, "roles": ["broker", "controller"],
            # deleteClaim false: deleting the Kafka resource never deletes the retained events.
            "storage": {"type": "jbod", "volumes": [{"id": 0, "type": "persistent-claim", "size": "100Gi",
                                                     "kraftMetadata": "shared", "deleteClaim": False}]},
            "resources": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"memory": "4Gi"}},
            "jvmOptions": {"-Xms": "2g", "-Xmx": "2g"},  # the rest of the memory is page cache
        },
    }
    kafka = {
        "apiVersion": STRIMZI_API, "kind": "Kafka", "metadata": _meta(options.cluster, options),
        "spec": {
            # No version: the operator's default Kafka; pin spec.kafka.version once the operator is chosen.
            "kafka": {
                # No plaintext listener: every party authenticates with its own SCRAM user over TLS.
                "listeners": [{"name": "tls", "port": CLIENT_PORT, "type": "internal", "tls": True,
                               "authentication": {"type": "scram-sha-512"}}],
                # simple = Kafka's StandardAuthorizer under KRaft: default deny, ACLs from the KafkaUsers.
                "authorization": {"type": "simple", "superUsers": [ADMIN]},
                "config": {
                    "auto.create.topics.enable": False,  # every topic is a KafkaTopic below
                    "allow.everyone.if.no.acl.found": False,
                    "default.replication.factor": REPLICAS,
                    "min.insync.replicas": MIN_INSYNC,
                    "offsets.topic.replication.factor": REPLICAS,
                    "transaction.state.log.replication.factor": REPLICAS,
                    "transaction.state.log.min.isr": MIN_INSYNC,
                    "unclean.leader.election.enable": False,  # never a lost write for availability
                    # A deleted KafkaTopic (kubectl delete, a prune) must not take five years of
                    # gemeente events or the audit trail with it: the topic operator cannot delete.
                    "delete.topic.enable": False,
                },
            },
            # The topic and user operators turn the KafkaTopics and KafkaUsers below into topics,
            # SCRAM users (a Secret each) and ACLs.
            "entityOperator": {"topicOperator": {}, "userOperator": {}},
        },
    }
    return [kafka, pool]


# -- topics ---------------------------------------------------------------------------------------
def kafka_topic(spec: TopicSpec, policy: TopicPolicy, options: K8sOptions) -> dict[str, Any]:
    return {
        "apiVersion": STRIMZI_API, "kind": "KafkaTopic", "metadata": _of_cluster(k8s_name(spec.name), options),
        # topicName always: the object name is lowercased, the Kafka name keeps its capitals.
        "spec": {"topicName": spec.name, "partitions": spec.partitions, "replicas": policy.replication_factor,
                 "config": dict(spec.configs)},
    }


# -- users and ACLs -------------------------------------------------------------------------------
# acls.Binding's names -> Strimzi's. A binding whose operation, resource or pattern has no entry
# here raises (DeployError), never disappears from the cluster silently.
_OPERATIONS = {"READ": "Read", "WRITE": "Write", "DESCRIBE": "Describe", "CREATE": "Create",
               "DESCRIBE_CONFIGS": "DescribeConfigs"}
_RESOURCES = {acls.TOPIC: "topic", acls.GROUP: "group"}
_PATTERNS = {acls.LITERAL: "literal", acls.PREFIXED: "prefix"}


def _to(table: Mapping[str, str], key: str, what: str) -> str:
    if key not in table:
        raise DeployError(f"no Strimzi {what} for {key!r}: extend herstelbus.deploy.k8s")
    return table[key]


def _back(table: Mapping[str, str], value: str, what: str) -> str:
    return _to({v: k for k, v in table.items()}, value, what)


def strimzi_acls(bindings: Iterable[acls.Binding]) -> list[dict[str, Any]]:
    """One principal's bindings as KafkaUser ACL rules: one rule per resource, operations sorted."""
    operations: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for b in bindings:
        resource = (_to(_RESOURCES, b.resource_type, "resource type"), b.resource_name,
                    _to(_PATTERNS, b.pattern_type, "pattern type"))
        operations[resource].add(_to(_OPERATIONS, b.operation, "operation"))
    return [{"type": "allow", "host": "*", "resource": {"type": t, "name": name, "patternType": p},
             "operations": sorted(ops)} for (t, name, p), ops in sorted(operations.items())]


def bindings_of(kafka_user: Mapping[str, Any]) -> set[acls.Binding]:
    """The inverse of :func:`strimzi_acls` for a generated KafkaUser: what the broker will hold.
    Strimzi's SCRAM user name, so the principal, is the object's name (``User:gemeente-gm0363``)."""
    principal = acls.user(kafka_user["metadata"]["name"])
    found = set()
    for rule in kafka_user["spec"].get("authorization", {}).get("acls", []):
        if rule.get("type", "allow") != "allow" or rule.get("host", "*") != "*":
            raise DeployError(f"{principal}: only allow rules from any host are generated")
        r = rule["resource"]
        for op in rule["operations"]:
            found.add(acls.Binding(principal, _back(_RESOURCES, r["type"], "resource type"), r["name"],
                                   _back(_PATTERNS, r.get("patternType", "literal"), "pattern type"),
                                   _back(_OPERATIONS, op, "operation")))
    return found


def kafka_user(name: str, bindings: list[acls.Binding] | None, options: K8sOptions) -> dict[str, Any]:
    """A SCRAM-SHA-512 user; Strimzi generates its password into a Secret of the same name.
    ``bindings`` None: no authorization block (the super user)."""
    spec: dict[str, Any] = {"authentication": {"type": "scram-sha-512"}}
    if bindings is not None:
        spec["authorization"] = {"type": "simple", "acls": strimzi_acls(bindings)}
    return {"apiVersion": STRIMZI_API, "kind": "KafkaUser", "metadata": _of_cluster(k8s_name(name), options),
            "spec": spec}


def kafka_users(gemeentecodes: Iterable[str], options: K8sOptions) -> list[dict[str, Any]]:
    codes = sorted(set(gemeentecodes))
    users = [kafka_user(ADMIN, None, options)]
    users += [kafka_user(p, acls.bindings_for(p, codes), options) for p in acls.principals(codes)]
    return users


# -- everything -----------------------------------------------------------------------------------
def manifests(gemeentecodes: Iterable[str], policy: TopicPolicy,
              options: K8sOptions) -> dict[str, list[dict[str, Any]]]:
    """Every resource, per file (``FILES``), each file sorted by kind and name."""
    from herstelbus.deploy import workers  # here: workers imports this module

    codes = sorted(set(gemeentecodes))
    check(policy, options)
    files = {
        "kafka.yaml": kafka_cluster(options),
        "topics.yaml": [kafka_topic(s, policy, options) for s in topic_specs(codes, policy)],
        "users.yaml": kafka_users(codes, options),
        "workers.yaml": workers.resources(policy, options),
    }
    for name, docs in files.items():
        keys = [(d["kind"], d["metadata"]["name"]) for d in docs]
        if len(set(keys)) != len(keys):  # two Kafka names lowercased alike would overwrite each other
            raise DeployError(f"{name}: two resources of one kind share a name")
        docs.sort(key=lambda d: (d["kind"], d["metadata"]["name"]))
    return files


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # a dict used twice is written twice, not as &id001
        return True


def to_yaml(docs: list[dict[str, Any]], header: str) -> str:
    """One YAML stream, keys sorted: the same input gives the same bytes."""
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + yaml.dump_all(docs, Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=4096,
                                   explicit_start=True)
