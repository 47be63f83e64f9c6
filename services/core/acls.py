"""Who may do what on the exchange's broker: the principals and their ACL bindings, as pure data.

The broker denies everything that no binding allows (``allow.everyone.if.no.acl.found=false``), so
this list is the whole of every party's rights. Least privilege, per party:

- a gemeente (``gemeente-gmxxxx``, lowercase): READ its own events topic, READ consumer groups named with its
  own prefix (``herstelbus-gemeente-GMxxxx``, the connector's default group), WRITE its own acks
  topic. Nothing that names another gemeente, no prefixed topic rights, nothing on UHT's topics.
- UHT (``uht``): WRITE the three ingest topics, READ ``uht.status.v1`` with groups ``uht-*``.
- the router (``herstelbus-router``): READ the ingest topics; WRITE every gemeente events topic
  (each by name: a prefix ``gemeente.`` would also cover the acks topics, letting it forge acks),
  the status and ops topics; its faust consumer group and changelog topics.
- the acks relay (``herstelbus-acks``): READ status and every acks topic (by name); WRITE status,
  audit and ops topics; its faust consumer group.
- ops (``herstelbus-ops``): READ everything it inspects (ingest, status, ops, audit, every gemeente
  topic); WRITE audit, the ingest topics (redrive, reroute) and the gemeente topics (replay, redrive
  of acks). Its tools read without a consumer group.

The admin principal that runs provisioning is a super user of the cluster (``super.users``); it
has no bindings here. Creating the bindings is the adapter's job (``herstelbus.topics``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from herstelbus.core.topology import (
    AUDIT, DEADLETTER, INGEST, ROUTER_APP_ID, STATUS, UNROUTABLE, gemeente_acks_topic, gemeente_events_topic,
)

UHT = "uht"
ROUTER = ROUTER_APP_ID  # the faust app id is its consumer group and its changelog topics' prefix
ACKS = "herstelbus-acks"  # herstelbus.acks.app.APP_ID
OPS = "herstelbus-ops"
SERVICE_PRINCIPALS = (UHT, ROUTER, ACKS, OPS)
UHT_GROUP_PREFIX = "uht-"

_GEMEENTECODE = re.compile(r"GM[0-9]{4}")

# Operations a faust worker needs on topics it owns (its tables' changelogs).
_OWNED_TOPIC_OPS = ("READ", "WRITE", "DESCRIBE", "CREATE", "DESCRIBE_CONFIGS")

TOPIC, GROUP = "TOPIC", "GROUP"
LITERAL, PREFIXED = "LITERAL", "PREFIXED"


@dataclass(frozen=True, order=True)
class Binding:
    """One ALLOW rule from any host. Names as in Kafka: ``User:<name>``, resource and operation names."""

    principal: str
    resource_type: str  # TOPIC | GROUP
    resource_name: str
    pattern_type: str  # LITERAL | PREFIXED
    operation: str  # READ, WRITE, DESCRIBE, CREATE, DESCRIBE_CONFIGS


def _code(gemeentecode: str) -> str:
    if not _GEMEENTECODE.fullmatch(gemeentecode):
        raise ValueError(f"not a gemeentecode: {gemeentecode!r}")
    return gemeentecode


def gemeente_principal(gemeentecode: str) -> str:
    """The SCRAM user name of a gemeente, lowercase (``gemeente-gm0363``): on Kubernetes Strimzi takes
    the user name from a KafkaUser's object name, which cannot hold capitals, so both ways of
    provisioning name the principal alike."""
    return f"gemeente-{_code(gemeentecode).lower()}"


def gemeente_group_prefix(gemeentecode: str) -> str:
    """A gemeente's consumer groups start with this: the connector's default group is exactly it.
    Codes have a fixed length, so one gemeente's prefix never matches another's group."""
    return f"herstelbus-gemeente-{_code(gemeentecode)}"


def user(name: str) -> str:
    return f"User:{name}"


def principals(gemeentecodes: Iterable[str]) -> list[str]:
    """Every SCRAM user the exchange provisions: the services, then one per gemeente."""
    return [*SERVICE_PRINCIPALS, *(gemeente_principal(c) for c in sorted(set(gemeentecodes)))]


def _topic(name: str, principal: str, *operations: str, pattern: str = LITERAL) -> list[Binding]:
    return [Binding(user(principal), TOPIC, name, pattern, op) for op in operations]


def _group(name: str, principal: str, pattern: str = LITERAL) -> list[Binding]:
    return [Binding(user(principal), GROUP, name, pattern, "READ")]


def gemeente_bindings(gemeentecode: str) -> list[Binding]:
    p = gemeente_principal(gemeentecode)
    return [*_topic(gemeente_events_topic(gemeentecode), p, "READ"),
            *_group(gemeente_group_prefix(gemeentecode), p, PREFIXED),
            *_topic(gemeente_acks_topic(gemeentecode), p, "WRITE")]


def uht_bindings() -> list[Binding]:
    return [*(b for t in INGEST for b in _topic(t, UHT, "WRITE")),
            *_topic(STATUS, UHT, "READ"),
            *_group(UHT_GROUP_PREFIX, UHT, PREFIXED)]


def router_bindings(gemeentecodes: Iterable[str]) -> list[Binding]:
    return [*(b for t in INGEST for b in _topic(t, ROUTER, "READ")),
            *(b for t in (STATUS, DEADLETTER, UNROUTABLE) for b in _topic(t, ROUTER, "WRITE")),
            *(b for c in sorted(set(gemeentecodes)) for b in _topic(gemeente_events_topic(c), ROUTER, "WRITE")),
            *_group(ROUTER, ROUTER),
            *_topic(f"{ROUTER}-", ROUTER, *_OWNED_TOPIC_OPS, pattern=PREFIXED)]


def acks_bindings(gemeentecodes: Iterable[str]) -> list[Binding]:
    return [*_topic(STATUS, ACKS, "READ", "WRITE"),
            *(b for c in sorted(set(gemeentecodes)) for b in _topic(gemeente_acks_topic(c), ACKS, "READ")),
            *(b for t in (AUDIT, DEADLETTER, UNROUTABLE) for b in _topic(t, ACKS, "WRITE")),
            *_group(ACKS, ACKS)]


def ops_bindings() -> list[Binding]:
    return [*(b for t in (*INGEST, STATUS, DEADLETTER, UNROUTABLE) for b in _topic(t, OPS, "READ")),
            *_topic(AUDIT, OPS, "READ", "WRITE"),
            *(b for t in INGEST for b in _topic(t, OPS, "WRITE")),
            *_topic("gemeente.", OPS, "READ", "WRITE", pattern=PREFIXED)]


def bindings_for(principal: str, gemeentecodes: Iterable[str]) -> list[Binding]:
    """The bindings of one provisioned principal (its SCRAM user name)."""
    codes = sorted(set(gemeentecodes))
    if principal == UHT:
        return uht_bindings()
    if principal == ROUTER:
        return router_bindings(codes)
    if principal == ACKS:
        return acks_bindings(codes)
    if principal == OPS:
        return ops_bindings()
    match = re.fullmatch(r"gemeente-gm([0-9]{4})", principal)
    if match and f"GM{match.group(1)}" in codes:
        return gemeente_bindings(f"GM{match.group(1)}")
    raise ValueError(f"no such principal: {principal!r}")


def all_bindings(gemeentecodes: Iterable[str]) -> list[Binding]:
    """Every binding of every provisioned principal, without duplicates, in a stable order."""
    codes = sorted(set(gemeentecodes))
    return sorted({b for p in principals(codes) for b in bindings_for(p, codes)})
