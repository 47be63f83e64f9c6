"""Broker security without a broker: who may do what (services/core/acls.py), evaluated as Kafka's
StandardAuthorizer would; the dev TLS material; and the dev and production broker configs."""

from __future__ import annotations

import os
import re
import stat
from datetime import date
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from herstelbus.core import acls
from herstelbus.core.gemeenten import gemeenten_vanaf
from herstelbus.core.topology import (
    AUDIT, DEADLETTER, INGEST, OVERDRACHT, STATUS, UNROUTABLE, changelog_topic, gemeente_acks_topic,
    gemeente_events_topic,
)
from herstelbus.devkafka.tls import ensure_broker_tls

REPO = Path(__file__).resolve().parents[2]
CODES = [g.code for g in gemeenten_vanaf(date(2025, 1, 1))]
A, B = "GM0363", "GM0599"
ALL = acls.all_bindings(CODES)


def allowed(principal: str, operation: str, resource_type: str, name: str) -> bool:
    """Kafka's rule for ALLOW-only bindings: a literal name or a prefix matches; READ and WRITE
    imply DESCRIBE; nothing else is allowed (allow.everyone.if.no.acl.found=false)."""
    implied = {operation} | ({"READ", "WRITE"} if operation == "DESCRIBE" else set())
    return any(
        b.principal == acls.user(principal) and b.resource_type == resource_type and b.operation in implied
        and (b.resource_name == name if b.pattern_type == acls.LITERAL else name.startswith(b.resource_name))
        for b in ALL
    )


def test_342_gemeenten_and_the_four_services_are_principals() -> None:
    names = acls.principals(CODES)
    assert len(CODES) == 342 and len(names) == len(set(names)) == 346
    assert set(acls.SERVICE_PRINCIPALS) <= set(names)
    assert acls.gemeente_principal(A) == "gemeente-gm0363"
    with pytest.raises(ValueError):
        acls.gemeente_principal("GM363")


def test_a_gemeente_has_exactly_its_own_three_rights() -> None:
    mine = acls.bindings_for(acls.gemeente_principal(A), CODES)
    assert {(b.resource_type, b.resource_name, b.pattern_type, b.operation) for b in mine} == {
        ("TOPIC", gemeente_events_topic(A), "LITERAL", "READ"),
        ("GROUP", "herstelbus-gemeente-GM0363", "PREFIXED", "READ"),
        ("TOPIC", gemeente_acks_topic(A), "LITERAL", "WRITE"),
    }


def test_no_gemeente_binding_names_another_gemeente() -> None:
    for code in CODES:
        for b in acls.bindings_for(acls.gemeente_principal(code), CODES):
            assert set(re.findall(r"GM[0-9]{4}", b.resource_name)) == {code}, b
            assert b.resource_type == "GROUP" or b.pattern_type == acls.LITERAL, b  # no prefixed topic rights


def test_one_gemeentes_group_prefix_matches_no_other_gemeentes_group() -> None:
    groups = {c: acls.gemeente_group_prefix(c) for c in CODES}
    for code, prefix in groups.items():
        assert [c for c, g in groups.items() if g.startswith(prefix)] == [code]


def test_gemeente_a_is_denied_everything_of_b_and_of_uht() -> None:
    a = acls.gemeente_principal(A)
    assert allowed(a, "READ", "TOPIC", gemeente_events_topic(A))
    assert allowed(a, "WRITE", "TOPIC", gemeente_acks_topic(A))
    assert allowed(a, "READ", "GROUP", "herstelbus-gemeente-GM0363")
    assert not allowed(a, "READ", "TOPIC", gemeente_events_topic(B))
    assert not allowed(a, "DESCRIBE", "TOPIC", gemeente_events_topic(B))
    assert not allowed(a, "READ", "GROUP", "herstelbus-gemeente-GM0599")
    assert not allowed(a, "WRITE", "TOPIC", gemeente_acks_topic(B))
    assert not allowed(a, "READ", "TOPIC", gemeente_acks_topic(A))  # its own acks are the exchange's to read
    assert not allowed(a, "WRITE", "TOPIC", gemeente_events_topic(A))
    for topic in (*INGEST, STATUS, DEADLETTER, UNROUTABLE, AUDIT):
        assert not allowed(a, "READ", "TOPIC", topic) and not allowed(a, "WRITE", "TOPIC", topic)


def test_uht_writes_ingest_reads_status_and_nothing_of_a_gemeente() -> None:
    for topic in INGEST:
        assert allowed(acls.UHT, "WRITE", "TOPIC", topic) and not allowed(acls.UHT, "READ", "TOPIC", topic)
    assert allowed(acls.UHT, "READ", "TOPIC", STATUS) and not allowed(acls.UHT, "WRITE", "TOPIC", STATUS)
    for code in CODES:
        for topic in (gemeente_events_topic(code), gemeente_acks_topic(code)):
            assert not allowed(acls.UHT, "DESCRIBE", "TOPIC", topic)
    assert not allowed(acls.UHT, "READ", "GROUP", "herstelbus-gemeente-GM0363")


def test_workers_have_what_they_need_and_cannot_forge_the_others_records() -> None:
    r, k = acls.ROUTER, acls.ACKS
    assert all(allowed(r, "READ", "TOPIC", t) for t in INGEST)
    assert all(allowed(r, "WRITE", "TOPIC", t) for t in (STATUS, DEADLETTER, UNROUTABLE))
    assert all(allowed(r, "WRITE", "TOPIC", gemeente_events_topic(c)) for c in CODES)
    assert allowed(r, "READ", "GROUP", "herstelbus-router")
    for table in ("gezien", "betrokken"):
        for op in ("READ", "WRITE", "DESCRIBE"):
            assert allowed(r, op, "TOPIC", changelog_topic("herstelbus-router", table))
    assert not any(allowed(r, "WRITE", "TOPIC", gemeente_acks_topic(c)) for c in CODES)  # no forged acks
    assert not any(allowed(r, "READ", "TOPIC", gemeente_events_topic(c)) for c in CODES)

    assert allowed(k, "READ", "TOPIC", STATUS) and allowed(k, "WRITE", "TOPIC", STATUS)
    assert all(allowed(k, "READ", "TOPIC", gemeente_acks_topic(c)) for c in CODES)
    assert all(allowed(k, "WRITE", "TOPIC", t) for t in (AUDIT, DEADLETTER, UNROUTABLE))
    assert allowed(k, "READ", "GROUP", "herstelbus-acks")
    assert not any(allowed(k, "WRITE", "TOPIC", gemeente_events_topic(c)) for c in CODES)
    assert not any(allowed(k, "READ", "TOPIC", t) for t in INGEST)


def test_ops_reads_what_it_inspects_and_may_replay() -> None:
    o = acls.OPS
    for topic in (*INGEST, STATUS, DEADLETTER, UNROUTABLE, AUDIT, gemeente_events_topic(A), gemeente_acks_topic(B)):
        assert allowed(o, "READ", "TOPIC", topic)
    assert allowed(o, "WRITE", "TOPIC", gemeente_events_topic(A))  # replay
    assert allowed(o, "WRITE", "TOPIC", OVERDRACHT) and allowed(o, "WRITE", "TOPIC", AUDIT)  # redrive, audit
    assert not allowed(o, "WRITE", "TOPIC", STATUS)  # receipts are the workers'


def test_only_the_router_and_ops_write_gemeente_events() -> None:
    writers = {b.principal for b in ALL if b.operation == "WRITE" and b.resource_type == "TOPIC"
               and (b.resource_name == gemeente_events_topic(A) or gemeente_events_topic(A).startswith(b.resource_name)
                    and b.pattern_type == acls.PREFIXED)}
    assert writers == {acls.user(acls.ROUTER), acls.user(acls.OPS)}


def test_bindings_are_unique_allow_rules_on_topics_and_groups() -> None:
    assert len(ALL) == len(set(ALL))
    assert {b.resource_type for b in ALL} == {"TOPIC", "GROUP"}
    assert {b.pattern_type for b in ALL} == {"LITERAL", "PREFIXED"}
    assert acls.all_bindings(reversed(CODES)) == ALL  # stable order
    with pytest.raises(ValueError):
        acls.bindings_for("gemeente-gm9999", CODES)


# -- the dev TLS material ---------------------------------------------------------------------------
def test_dev_tls_is_made_once_owner_only_and_valid_for_127_0_0_1(tmp_path: Path) -> None:
    first = ensure_broker_tls(tmp_path / "tls")
    ca = first.ca_file.read_bytes()
    again = ensure_broker_tls(tmp_path / "tls")
    assert again.ca_file.read_bytes() == ca and again.keystore_password == first.keystore_password
    for secret in ("ca.key", "broker.p12", "keystore.password"):
        assert stat.S_IMODE(os.stat(tmp_path / "tls" / secret).st_mode) == 0o600
    key, cert, chain = pkcs12.load_key_and_certificates(first.keystore.read_bytes(), first.keystore_password.encode())
    assert key is not None and len(chain) == 1
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert cert.issuer == x509.load_pem_x509_certificate(ca).subject

    (tmp_path / "tls" / "broker.p12").unlink()  # a lost keystore is signed again by the same CA
    third = ensure_broker_tls(tmp_path / "tls")
    assert third.ca_file.read_bytes() == ca and third.keystore.is_file()


# -- the broker configs -----------------------------------------------------------------------------
def _props(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines()
                if "=" in line and not line.lstrip().startswith("#"))


def test_dev_broker_denies_by_default_and_only_anonymous_plaintext_is_a_super_user() -> None:
    props = _props(REPO / "deploy" / "local" / "server.properties")
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:ANONYMOUS"  # DEV ONLY: the plaintext listener on 127.0.0.1
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert "SASL_SSL:SASL_SSL" in props["listener.security.protocol.map"]
    assert "ssl.keystore.password" not in props  # rendered into the data dir only


def test_production_example_has_no_plaintext_and_no_anonymous_super_user() -> None:
    props = _props(REPO / "deploy" / "production" / "server.properties")
    protocols = dict(p.split(":") for p in props["listener.security.protocol.map"].split(","))
    assert "PLAINTEXT" not in protocols.values() and "PLAINTEXT" not in props["listeners"]
    assert protocols["CLIENT"] == "SASL_SSL" and props["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert "ANONYMOUS" not in props["super.users"]
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert (props["default.replication.factor"], props["min.insync.replicas"]) == ("3", "2")
    assert props["unclean.leader.election.enable"] == "false"
