"""``herstelbus deploy k8s`` without a cluster: the manifests against Kubernetes' own schemas
(kubernetes-validate, bundled and offline) and Strimzi's CRDs (jsonschema on their openAPIV3Schema),
and against the exchange's declarations: one KafkaTopic per topic spec, one KafkaUser per principal
whose ACLs convert back to exactly ``acls.all_bindings``. No secret value in any file."""

from __future__ import annotations

import copy
import json
import os
import re
import stat
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from herstelbus.cli import main
from herstelbus.core import acls
from herstelbus.core.gemeenten import gemeenten_vanaf
from herstelbus.core.topology import TopicPolicy, topic_specs
from herstelbus.deploy import workers as workers_module
from herstelbus.deploy.k8s import (
    ADMIN, FILES, STRIMZI_API, DeployError, K8sOptions, bindings_of, cluster_policy, k8s_name, manifests,
    strimzi_acls,
)
from herstelbus.kafkaclient import client_options
from herstelbus.settings import Settings

REPO = Path(__file__).resolve().parents[2]
# Strimzi 1.2.0's CRDs, beside the repo in the workplace; a fresh clone's parent may lack them.
STRIMZI_CRDS = REPO.parent / "shared" / "reference" / "strimzi"
K8S_VERSION = "1.35"  # a current release; kubernetes-validate 1.37.0 bundles 1.35's schemas
ON = date(2026, 1, 1)
CODES = sorted(g.code for g in gemeenten_vanaf(ON))
POLICY = cluster_policy(TopicPolicy(), ingest_partitions=6, gemeente_partitions=2)
OPTIONS = K8sOptions(namespace="herstelbus-test", image="registry.example/herstelbus:test", router_replicas=6)
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# The example under deploy/k8s/example is this command's output (deploy/k8s/README.md).
EXAMPLE_ARGS = ["--on", "2026-01-01", "--gemeente", "GM0363", "--gemeente", "GM0599", "--image", "herstelbus:0.1.0"]


@pytest.fixture(scope="module")
def files() -> dict[str, list[dict[str, Any]]]:
    return manifests(CODES, POLICY, OPTIONS)


def every(files: dict[str, list[dict[str, Any]]], kind: str | None = None) -> list[dict[str, Any]]:
    return [d for docs in files.values() for d in docs if kind is None or d["kind"] == kind]


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, key, value) of every mapping entry, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")


def defaults() -> Settings:
    """The settings' defaults whatever this machine's HERSTELBUS_* variables say."""
    return Settings(ingest_partitions=3, gemeente_partitions=1, ingest_retention_hours=24,
                    gemeente_retention_days=5 * 365, replication_factor=1, min_insync_replicas=1)


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("herstelbus.settings.get_settings", defaults)
    return CliRunner().invoke(main, ["deploy", "k8s", *args])


# -- against the exchange's declarations ----------------------------------------------------------
def test_every_topic_spec_has_exactly_one_kafka_topic_with_its_partitions_and_configs(files) -> None:
    topics = {}
    for doc in every(files, "KafkaTopic"):
        assert doc["spec"]["topicName"] not in topics
        topics[doc["spec"]["topicName"]] = doc
    specs = topic_specs(CODES, POLICY)
    assert set(topics) == {s.name for s in specs} and len(specs) == 9 + 2 * len(CODES)
    for spec in specs:
        doc = topics[spec.name]
        assert doc["metadata"]["name"] == spec.name.lower()
        assert doc["metadata"]["labels"] == {"strimzi.io/cluster": OPTIONS.cluster}
        assert (doc["spec"]["partitions"], doc["spec"]["replicas"]) == (spec.partitions, 3)
        assert doc["spec"]["config"] == spec.configs
    assert topics["uht.overdracht.v1"]["spec"]["partitions"] == 6
    assert topics["gemeente.GM0363.events.v1"]["spec"]["partitions"] == 2
    assert topics["herstel.deadletter.v1"]["spec"]["config"]["max.message.bytes"] == "2097176"
    assert topics["uht.overdracht.v1"]["spec"]["config"]["min.insync.replicas"] == "2"


def test_every_principal_has_one_kafka_user_and_the_admin_alone_has_no_acls(files) -> None:
    users = {d["metadata"]["name"]: d for d in every(files, "KafkaUser")}
    assert set(users) == {k8s_name(p) for p in acls.principals(CODES)} | {ADMIN}
    assert len(users) == len(acls.principals(CODES)) + 1  # no two principals lowercased alike
    for name, doc in users.items():
        assert doc["spec"]["authentication"] == {"type": "scram-sha-512"}
        assert ("authorization" in doc["spec"]) == (name != ADMIN)
    kafka = every(files, "Kafka")[0]["spec"]["kafka"]
    assert kafka["authorization"] == {"type": "simple", "superUsers": [ADMIN]}


def test_kafka_user_acls_convert_back_to_exactly_acls_all_bindings(files) -> None:
    # Strimzi's SCRAM user name is the object's name; acls names every principal so it fits one.
    wanted = set(acls.all_bindings(CODES))
    found = [b for doc in every(files, "KafkaUser") for b in bindings_of(doc)]
    assert len(found) == len(set(found))
    assert set(found) == wanted
    assert acls.Binding("User:gemeente-gm0363", acls.GROUP, "herstelbus-gemeente-GM0363", acls.PREFIXED,
                        "READ") in wanted


def test_the_converter_refuses_what_it_cannot_express() -> None:
    alter = acls.Binding("User:x", acls.TOPIC, "t", acls.LITERAL, "ALTER")
    with pytest.raises(DeployError, match="operation"):
        strimzi_acls([alter])
    cluster = acls.Binding("User:x", "CLUSTER", "kafka-cluster", acls.LITERAL, "DESCRIBE")
    with pytest.raises(DeployError, match="resource type"):
        strimzi_acls([cluster])


def test_the_cluster_is_kraft_replicated_and_authenticated(files) -> None:
    kafka, pool = (every(files, k)[0] for k in ("Kafka", "KafkaNodePool"))
    assert kafka["apiVersion"] == pool["apiVersion"] == STRIMZI_API
    assert pool["spec"]["replicas"] == 3 and sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3 and config["min.insync.replicas"] == 2
    assert config["auto.create.topics.enable"] is False
    assert kafka["spec"]["kafka"]["listeners"] == [{"name": "tls", "port": 9093, "type": "internal", "tls": True,
                                                    "authentication": {"type": "scram-sha-512"}}]
    assert kafka["spec"]["entityOperator"] == {"topicOperator": {}, "userOperator": {}}


def test_router_replicas_above_the_ingest_partitions_are_refused(tmp_path, monkeypatch) -> None:
    with pytest.raises(DeployError, match="idles"):
        manifests(CODES, POLICY, K8sOptions(router_replicas=7))
    with pytest.raises(DeployError, match="namespace"):
        manifests(CODES, POLICY, K8sOptions(namespace="Herstel.Bus"))
    out = Path(tmp_path / "unused")
    result = run_cli(["--out", str(out), "--router-replicas", "4", "--ingest-partitions", "3"], monkeypatch)
    assert result.exit_code == 1
    assert "above the 3 ingest partitions" in result.output and not out.exists()


# -- the workers ------------------------------------------------------------------------------------
def test_workers_run_their_commands_as_non_root_with_probes_and_kafka_over_tls(files) -> None:
    deployments = {d["metadata"]["name"]: d for d in every(files, "Deployment")}
    commands = {name: d["spec"]["template"]["spec"]["containers"][0]["command"] for name, d in deployments.items()}
    assert commands == {
        "herstelbus-router": ["herstelbus", "router"], "herstelbus-acks": ["herstelbus", "acks"],
        "herstelbus-keystore": ["herstelbus", "keys", "serve", "--host", "0.0.0.0", "--port", "8470"],
        "herstelbus-keyrelay": ["herstelbus", "keys", "relay"],
        "herstelbus-dashboard": ["herstelbus", "dashboard", "--host", "0.0.0.0", "--port", "8480"]}
    assert deployments["herstelbus-router"]["spec"]["replicas"] == 6
    assert deployments["herstelbus-acks"]["spec"]["replicas"] == 1
    config = every(files, "ConfigMap")[0]["data"]
    assert config["HERSTELBUS_BOOTSTRAP_SERVERS"] == "herstelbus-kafka-bootstrap.herstelbus-test.svc:9093"
    for name, d in deployments.items():
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["enableServiceLinks"] is False
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert c["resources"]["requests"] and c["resources"]["limits"]
        container = pod["containers"][0]
        env = {e["name"]: e for e in container.get("env", [])}
        if "HERSTELBUS_KAFKA_CLIENT_CONFIG" in env:  # written by the init container from the KafkaUser's Secret
            init = pod["initContainers"][0]["command"]
            user_secret = next(v["secret"]["secretName"] for v in pod["volumes"] if v["name"] == "kafka-user")
            assert init[:3] == ["herstelbus", "deploy", "client-config"]
            assert init[init.index("--username") + 1] == user_secret
            assert init[init.index("--out") + 1] == env["HERSTELBUS_KAFKA_CLIENT_CONFIG"]["value"]
        if name != "herstelbus-keyrelay":  # the relay has no HTTP endpoint
            assert "readinessProbe" in container and "livenessProbe" in container
    for name in ("herstelbus-router", "herstelbus-acks"):
        template = deployments[name]["spec"]["template"]
        assert template["metadata"]["annotations"]["prometheus.io/port"] == "9464"
        container = template["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["ports"][0]["containerPort"] == 9464
    assert {s["metadata"]["name"] for s in every(files, "Service")} == {"herstelbus-keystore", "herstelbus-dashboard"}


def test_every_name_is_a_valid_kubernetes_name(files) -> None:
    for doc in every(files):
        name = doc["metadata"]["name"]
        assert len(name) <= 253 and DNS1123_SUBDOMAIN.fullmatch(name), name
        if doc["kind"] in ("Service", "Deployment", "KafkaUser"):  # also a DNS label (Service) or a label value
            assert len(name) <= 63 and DNS1123_LABEL.fullmatch(name), name
        for value in doc["metadata"].get("labels", {}).values():
            assert len(value) <= 63
    for d in every(files, "Deployment"):
        names = [c["name"] for c in d["spec"]["template"]["spec"].get("initContainers", [])]
        names += [v["name"] for v in d["spec"]["template"]["spec"]["volumes"]]
        assert all(DNS1123_LABEL.fullmatch(n) for n in names)


SECRETISH = re.compile(r"PASSWORD|TOKEN|SECRET|_URL$")


def test_no_secret_value_only_references(files) -> None:
    for doc in every(files):
        assert doc["kind"] != "Secret"
        for path, key, value in walk(doc):
            assert key not in ("password", "stringData"), (doc["metadata"]["name"], path)
            assert key != "data" or doc["kind"] == "ConfigMap"
            if isinstance(value, str):
                assert not re.search(r"://[^/\s]*@", value), (path, value)  # no credentials in a URL
    for key in every(files, "ConfigMap")[0]["data"]:
        assert not SECRETISH.search(key)
    for d in every(files, "Deployment"):
        for c in d["spec"]["template"]["spec"]["containers"]:
            for e in c.get("env", []):
                if SECRETISH.search(e["name"]):
                    assert set(e) == {"name", "valueFrom"} and set(e["valueFrom"]) == {"secretKeyRef"}, e


# -- schemas ----------------------------------------------------------------------------------------
BUILT_IN = ("ConfigMap", "Deployment", "Service")


def test_built_in_kinds_are_valid_kubernetes(files) -> None:
    docs = [d for d in every(files) if d["kind"] in BUILT_IN]
    assert {d["kind"] for d in docs} == set(BUILT_IN)
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    typo = copy.deepcopy(every(files, "Deployment")[0])
    typo["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):  # strict: an unknown field is refused
        kubernetes_validate.validate(typo, K8S_VERSION, strict=True)


def strict(schema: Any) -> Any:
    """An apiserver prunes fields its structural schema does not know, silently: here they fail."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [strict(v) for v in schema]
    return schema


def load_crd_schemas() -> dict[tuple[str, str], Any] | None:
    """(apiVersion, kind) -> the strict schema of every version the CRDs serve; None without them."""
    if not STRIMZI_CRDS.is_dir():
        return None
    schemas = {}
    for path in sorted(STRIMZI_CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            if version["served"]:
                api = f"{crd['spec']['group']}/{version['name']}"
                schemas[(api, crd["spec"]["names"]["kind"])] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


@pytest.fixture(scope="module")
def crd_schemas() -> dict[tuple[str, str], Any]:
    schemas = load_crd_schemas()
    if schemas is None:
        pytest.skip(f"Strimzi's CRDs not found at {STRIMZI_CRDS} (shared/reference/strimzi beside the repo)")
    return schemas


def test_strimzi_kinds_are_valid_against_the_crds(files, crd_schemas) -> None:
    docs = [d for d in every(files) if d["kind"] not in BUILT_IN]
    assert {d["kind"] for d in docs} == {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"}
    validators = {key: jsonschema.Draft4Validator(schema) for key, schema in crd_schemas.items()}
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        assert key in validators, f"the CRDs serve no {key}"
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validators[key].iter_errors(doc)]
        assert errors == [], (doc["metadata"]["name"], errors[:5])
    typo = copy.deepcopy(every(files, "KafkaTopic")[0])
    typo["spec"]["partition"] = 3
    assert list(validators[(STRIMZI_API, "KafkaTopic")].iter_errors(typo))


# -- the command ------------------------------------------------------------------------------------
def test_the_cli_writes_valid_files_and_the_same_bytes_twice(tmp_path, monkeypatch) -> None:
    out = tmp_path / "generated"
    args = ["--out", str(out), "--on", "2026-01-01", "--router-replicas", "3", "--image", "herstelbus:test"]
    first = run_cli(args, monkeypatch)
    assert first.exit_code == 0, first.output
    assert f"wrote {out / 'topics.yaml'}: {9 + 2 * len(CODES)} KafkaTopic" in first.output
    written = {name: (out / name).read_bytes() for name in FILES}
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    again = run_cli(args, monkeypatch)
    assert again.exit_code == 0 and {n: (out / n).read_bytes() for n in FILES} == written
    docs = {name: list(yaml.safe_load_all(text)) for name, text in written.items()}
    assert docs == manifests(CODES, cluster_policy(defaults().topic_policy(), 3, 1),
                             K8sOptions(image="herstelbus:test", router_replicas=3))
    validators = {k: jsonschema.Draft4Validator(s) for k, s in (load_crd_schemas() or {}).items()}
    for doc in (d for ds in docs.values() for d in ds):
        if doc["kind"] in BUILT_IN:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        elif validators:  # without the CRDs: the built-in kinds only
            validators[(doc["apiVersion"], doc["kind"])].validate(doc)
    assert not any(b"password:" in text for text in written.values())


def test_the_checked_in_example_is_what_the_command_writes(tmp_path, monkeypatch) -> None:
    result = run_cli(["--out", str(tmp_path), *EXAMPLE_ARGS], monkeypatch)
    assert result.exit_code == 0, result.output
    example = REPO / "deploy" / "k8s" / "example"
    for name in FILES:
        assert (example / name).read_text() == (tmp_path / name).read_text(), (
            f"deploy/k8s/example/{name} is stale: "
            f"herstelbus deploy k8s --out deploy/k8s/example {' '.join(EXAMPLE_ARGS)}")


def test_a_gemeente_not_in_the_reference_data_is_refused(tmp_path, monkeypatch) -> None:
    result = run_cli(["--out", str(tmp_path), "--on", "2026-01-01", "--gemeente", "GM9999"], monkeypatch)
    assert result.exit_code == 1 and "GM9999" in result.output


def test_client_config_writes_a_credentials_file_kafkaclient_reads(tmp_path, monkeypatch) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret-from-strimzi")
    out = tmp_path / "client.json"
    monkeypatch.setattr("herstelbus.settings.get_settings", lambda: Settings(
        bootstrap_servers="herstelbus-kafka-bootstrap.ns.svc:9093", kafka_ssl_cafile=Path("/etc/ca/ca.crt")))
    result = CliRunner().invoke(main, ["deploy", "client-config", "--username", "herstelbus-router",
                                       "--password-file", str(password), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert client_options(out) == {
        "bootstrap_servers": "herstelbus-kafka-bootstrap.ns.svc:9093", "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "herstelbus-router",
        "sasl_plain_password": "s3cret-from-strimzi", "ssl_cafile": "/etc/ca/ca.crt"}
    assert json.loads(out.read_text())["principal"] == "User:herstelbus-router"


def test_every_worker_with_a_principal_uses_a_provisioned_one() -> None:
    principals = set(acls.principals(CODES))
    assert {w.principal for w in workers_module.workers(OPTIONS) if w.principal} <= principals
