"""The herstelbus workers on Kubernetes: a ConfigMap, one Deployment each, two Services. Pure dicts.

Each process runs as it does on a machine (README "Running the workers"), with these choices:

- **No ``herstelbus supervise``.** A worker that ends itself with 70 must be restarted; here the
  kubelet does that for any exit (a Deployment's pods restart always), with back-off, a restart
  count and events an operator sees. A supervisor inside the pod would hide those restarts and keep
  a crash-looping worker looking Running.
- **Kafka credentials** are a file (HERSTELBUS_KAFKA_CLIENT_CONFIG, as ``topics provision
  --principals`` writes them). An init container writes it (``herstelbus deploy client-config``)
  from the password in the Secret Strimzi made for the pod's KafkaUser into a memory-backed volume;
  the worker container never sees the Secret itself.
- **Every secret is the operator's Secret**, referenced by name and key, never a value here
  (``deploy/k8s/README.md`` lists them).
- ``enableServiceLinks: false``: Kubernetes would otherwise put ``<SERVICE>_PORT``-style variables
  into every pod, and Services named ``herstelbus-…`` would become ``HERSTELBUS_…`` variables,
  which herstelbus reads as its settings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from herstelbus.core import acls
from herstelbus.core.topology import DAY_MS, HOUR_MS, TopicPolicy
from herstelbus.deploy.k8s import K8sOptions, k8s_name
from herstelbus.devstack import DASHBOARD_PORT, KEYSTORE_PORT  # the same ports as on a machine

CONFIG_MAP = "herstelbus-config"
METRICS_PORT = 9464  # every pod its own IP: one port for all workers
UID = 10001  # the image's user herstelbus (deploy/Dockerfile)

# Where things are in a pod.
DATA_DIR = "/var/lib/herstelbus/data"  # as the image (deploy/Dockerfile) sets it: faust state
CLIENT_CONFIG = "/run/herstelbus/kafka/client.json"
CA_DIR = "/etc/herstelbus/kafka-ca"
KEY_DIR = "/etc/herstelbus/keys"
USER_SECRET_DIR = "/etc/herstelbus/kafka-user"

# Secrets the operator creates (deploy/k8s/README.md); only names and keys appear here.
KEYSTORE_DB = "herstelbus-keystore-db"  # keys router-url, api-url, owner-url: one PostgreSQL role each
ACKS_DB = "herstelbus-acks-db"  # key url
EXCHANGE_KEYS = "herstelbus-exchange-keys"  # keys pseudonym.key, signing.pem, ops.pub.pem
KEY_FILES = {"pseudonym.key": "HERSTELBUS_PSEUDONYM_KEY_FILE", "signing.pem": "HERSTELBUS_SIGNING_KEY_FILE",
             "ops.pub.pem": "HERSTELBUS_OPS_PUBLIC_KEY_FILE"}


@dataclass(frozen=True)
class Worker:
    component: str
    args: tuple[str, ...]
    replicas: int
    requests: tuple[str, str]  # cpu, memory
    limits: tuple[str, str]
    principal: str | None = None  # the KafkaUser it connects as; None: no Kafka client
    secrets: dict[str, tuple[str, str]] = field(default_factory=dict)  # env var -> (Secret, key)
    key_files: tuple[str, ...] = ()  # keys of EXCHANGE_KEYS mounted as files
    port: int | None = None  # the HTTP port: metrics for the faust workers, the API otherwise
    health: str | None = None
    faust: bool = False  # /healthz and /metrics of herstelbus.metrics
    # Health that reports a dependency (the database): readiness only, liveness on the port, since
    # a restart cannot bring the dependency back.
    live_on_port: bool = False
    singleton: bool = False  # never two at once, not even during a rollout


def workers(options: K8sOptions) -> list[Worker]:
    return [
        # Beyond the ingest partitions a router idles (checked in k8s.check).
        Worker("router", ("router",), options.router_replicas, ("500m", "1Gi"), ("2", "2Gi"),
               principal=acls.ROUTER, secrets={"HERSTELBUS_KEYSTORE_URL": (KEYSTORE_DB, "router-url")},
               key_files=("pseudonym.key", "signing.pem", "ops.pub.pem"),
               port=METRICS_PORT, health="/healthz", faust=True),
        # One: every relay would run the OVERDUE timer over the whole shared acks state.
        Worker("acks", ("acks",), 1, ("250m", "512Mi"), ("1", "1Gi"),
               principal=acls.ACKS, secrets={"HERSTELBUS_ACKS_URL": (ACKS_DB, "url")},
               key_files=("ops.pub.pem",), port=METRICS_PORT, health="/healthz", faust=True, singleton=True),
        # No Kafka: the gemeenten' HTTP API on the key store, as the read-mostly API role.
        Worker("keystore", ("keys", "serve", "--host", "0.0.0.0", "--port", str(KEYSTORE_PORT)), 2,
               ("100m", "256Mi"), ("1", "512Mi"),
               secrets={"HERSTELBUS_KEYSTORE_URL": (KEYSTORE_DB, "api-url")},
               port=KEYSTORE_PORT, health="/v1/health", live_on_port=True),  # 503 while the database is away
        # The key store's owner (it marks audit rows forwarded) and ops' principal (WRITE audit).
        # One: at least once by audit id; a second would only send twice. It has no HTTP endpoint.
        Worker("keyrelay", ("keys", "relay"), 1, ("50m", "128Mi"), ("500m", "256Mi"),
               principal=acls.OPS, secrets={"HERSTELBUS_KEYSTORE_URL": (KEYSTORE_DB, "owner-url")},
               singleton=True),
        # Reads status, ops and audit topics (ops' principal) and the acks state.
        Worker("dashboard", ("dashboard", "--host", "0.0.0.0", "--port", str(DASHBOARD_PORT)), 1,
               ("100m", "256Mi"), ("1", "1Gi"), principal=acls.OPS,
               secrets={"HERSTELBUS_ACKS_URL": (ACKS_DB, "url")}, port=DASHBOARD_PORT, health="/healthz"),
    ]


def config_map(policy: TopicPolicy, options: K8sOptions) -> dict[str, Any]:
    data = {
        "HERSTELBUS_BOOTSTRAP_SERVERS": options.bootstrap,
        "HERSTELBUS_KAFKA_SSL_CAFILE": f"{CA_DIR}/ca.crt",
        "HERSTELBUS_DATA_DIR": DATA_DIR,
        "HERSTELBUS_LOG_FORMAT": "json",
        "HERSTELBUS_LOG_LEVEL": "INFO",
        "HERSTELBUS_METRICS_HOST": "0.0.0.0",  # scraped from outside the pod
        "HERSTELBUS_REPLICATION_FACTOR": str(policy.replication_factor),
        "HERSTELBUS_MIN_INSYNC_REPLICAS": str(policy.min_insync_replicas),
        "HERSTELBUS_INGEST_PARTITIONS": str(policy.ingest_partitions),
        "HERSTELBUS_GEMEENTE_PARTITIONS": str(policy.gemeente_partitions),
        "HERSTELBUS_INGEST_RETENTION_HOURS": str(policy.ingest_retention_ms // HOUR_MS),
        "HERSTELBUS_GEMEENTE_RETENTION_DAYS": str(policy.gemeente_retention_ms // DAY_MS),
        "PYTHONDONTWRITEBYTECODE": "1",  # the root file system is read-only
    }
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(CONFIG_MAP, options, "config"), "data": data}


def _labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "herstelbus", "app.kubernetes.io/component": component}


def _meta(name: str, options: K8sOptions, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": options.namespace,
            "labels": {**_labels(component), "app.kubernetes.io/part-of": "herstelbus"}}


def _security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "privileged": False,
            "capabilities": {"drop": ["ALL"]}}


def _resources(requests: tuple[str, str], limits: tuple[str, str]) -> dict[str, Any]:
    return {"requests": {"cpu": requests[0], "memory": requests[1]},
            "limits": {"cpu": limits[0], "memory": limits[1]}}


def _probes(w: Worker) -> dict[str, Any]:
    if w.port is None:
        return {}
    get = {"httpGet": {"path": w.health, "port": "http"}, "timeoutSeconds": 5}
    if w.faust:
        # /healthz is 503 "starting" until table recovery is done (minutes for a large changelog):
        # the startup probe gives it 15 minutes before liveness may restart the pod. Liveness then
        # catches event_loop_blocked, which the worker cannot notice itself.
        return {"startupProbe": {**get, "periodSeconds": 10, "failureThreshold": 90},
                "livenessProbe": {**get, "periodSeconds": 15, "failureThreshold": 4},
                "readinessProbe": {**get, "periodSeconds": 10, "failureThreshold": 3}}
    if w.live_on_port:
        return {"readinessProbe": {**get, "periodSeconds": 10, "failureThreshold": 3},
                "livenessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 20, "failureThreshold": 3}}
    return {"readinessProbe": {**get, "periodSeconds": 10, "failureThreshold": 3},
            "livenessProbe": {**get, "periodSeconds": 20, "failureThreshold": 3}}


def _client_config_init(w: Worker, image: str) -> dict[str, Any]:
    return {
        "name": "kafka-client-config", "image": image,
        "command": ["herstelbus", "deploy", "client-config", "--username", _kafka_user(w),
                    "--password-file", f"{USER_SECRET_DIR}/password", "--out", CLIENT_CONFIG],
        "envFrom": [{"configMapRef": {"name": CONFIG_MAP}}],
        "resources": _resources(("50m", "128Mi"), ("500m", "256Mi")),
        "securityContext": _security(),
        "volumeMounts": [{"name": "kafka-user", "mountPath": USER_SECRET_DIR, "readOnly": True},
                         {"name": "kafka-client", "mountPath": "/run/herstelbus/kafka"},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }


def _kafka_user(w: Worker) -> str:
    """The KafkaUser, and so the Secret with its password, of a worker with a principal."""
    assert w.principal is not None
    return k8s_name(w.principal)


def _pod(w: Worker, options: K8sOptions, config_hash: str) -> dict[str, Any]:
    env: list[dict[str, Any]] = [{"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
                                 for name, (secret, key) in sorted(w.secrets.items())]
    env += [{"name": KEY_FILES[k], "value": f"{KEY_DIR}/{k}"} for k in w.key_files]
    mounts = [{"name": "data", "mountPath": DATA_DIR}, {"name": "tmp", "mountPath": "/tmp"}]
    # Mode 0440: files are root's, readable through fsGroup by the non-root user only.
    volumes: list[dict[str, Any]] = [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
                                     {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]
    init = []
    if w.principal is not None:
        env.append({"name": "HERSTELBUS_KAFKA_CLIENT_CONFIG", "value": CLIENT_CONFIG})
        mounts += [{"name": "kafka-client", "mountPath": "/run/herstelbus/kafka", "readOnly": True},
                   {"name": "kafka-ca", "mountPath": CA_DIR, "readOnly": True}]
        volumes += [
            {"name": "kafka-ca", "secret": {"secretName": options.cluster_ca_secret, "defaultMode": 0o440,
                                            "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            # The password lives only in memory, never on the node's disk.
            {"name": "kafka-client", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
            {"name": "kafka-user", "secret": {"secretName": _kafka_user(w), "defaultMode": 0o440,
                                              "items": [{"key": "password", "path": "password"}]}},
        ]
        init.append(_client_config_init(w, options.image))
    if w.key_files:  # only the keys this worker needs, not the whole Secret
        mounts.append({"name": "exchange-keys", "mountPath": KEY_DIR, "readOnly": True})
        volumes.append({"name": "exchange-keys", "secret": {
            "secretName": EXCHANGE_KEYS, "defaultMode": 0o440, "items": [{"key": k, "path": k} for k in w.key_files]}})
    container: dict[str, Any] = {
        "name": w.component, "image": options.image, "command": ["herstelbus", *w.args],
        "envFrom": [{"configMapRef": {"name": CONFIG_MAP}}],
        "env": env + ([{"name": "HERSTELBUS_METRICS_PORT", "value": str(METRICS_PORT)}] if w.faust else []),
        "resources": _resources(w.requests, w.limits), "securityContext": _security(),
        "volumeMounts": mounts, **_probes(w),
    }
    if w.port is not None:
        container["ports"] = [{"name": "http", "containerPort": w.port, "protocol": "TCP"}]
    annotations = {"herstelbus/config-hash": config_hash}  # a changed ConfigMap rolls the pods
    if w.faust:
        annotations |= {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT),
                        "prometheus.io/path": "/metrics"}
    return {
        "metadata": {"labels": _labels(w.component), "annotations": annotations},
        "spec": {
            "automountServiceAccountToken": False,  # no herstelbus process talks to the Kubernetes API
            "enableServiceLinks": False,
            # The faust workers commit their offsets when told to stop (SIGTERM).
            "terminationGracePeriodSeconds": 60,
            "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            **({"initContainers": init} if init else {}),
            "containers": [container], "volumes": volumes,
        },
    }


def deployment(w: Worker, options: K8sOptions, config_hash: str) -> dict[str, Any]:
    if w.singleton:
        strategy: dict[str, Any] = {"type": "Recreate"}  # the old pod is gone before the new starts
    elif w.faust:
        # Never more routers than before a rollout: one beyond the partitions would idle.
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    else:
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _meta(f"herstelbus-{w.component}", options, w.component),
        "spec": {"replicas": w.replicas, "selector": {"matchLabels": _labels(w.component)}, "strategy": strategy,
                 "template": _pod(w, options, config_hash)},
    }


def service(w: Worker, options: K8sOptions) -> dict[str, Any]:
    # ClusterIP only: exposing the key store to the gemeenten (TLS, later mTLS) and the dashboard
    # to ops (it has no login) is the operator's ingress decision.
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(f"herstelbus-{w.component}", options, w.component),
            "spec": {"type": "ClusterIP", "selector": _labels(w.component),
                     "ports": [{"name": "http", "port": w.port, "targetPort": "http", "protocol": "TCP"}]}}


def resources(policy: TopicPolicy, options: K8sOptions) -> list[dict[str, Any]]:
    config = config_map(policy, options)
    config_hash = hashlib.sha256(json.dumps(config["data"], sort_keys=True).encode()).hexdigest()[:16]
    docs = [config]
    for w in workers(options):
        docs.append(deployment(w, options, config_hash))
        if w.component in ("keystore", "dashboard"):
            docs.append(service(w, options))
    return docs
