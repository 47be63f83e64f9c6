"""``herstelbus topics provision``: create every topic the exchange needs, idempotently."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import (
    ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourcePatternFilter,
    ResourceType, ScramMechanism, UserScramCredentialUpsertion,
)
from kafka.errors import SecurityDisabledError, for_code

from herstelbus.core import acls as core_acls

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
              dry_run: bool = False, client_options: Mapping[str, Any] | None = None) -> ProvisionReport:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="herstelbus-topics", **(client_options or {}))
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


# -- principals and ACLs ---------------------------------------------------------------------------
_MECHANISM = "SCRAM-SHA-512"
_USERS_PER_REQUEST = 50
_ACLS_PER_REQUEST = 500


@dataclass
class PrincipalReport:
    created: list[str] = field(default_factory=list)  # new user or new password (the file was missing)
    kept: list[str] = field(default_factory=list)  # file and broker credential both present: untouched
    restored: list[str] = field(default_factory=list)  # password from the file, credential missing on the broker
    acls_created: int = 0
    acls_existing: int = 0
    credentials_dir: Path | None = None


def credentials_file(credentials_dir: Path, principal: str) -> Path:
    return credentials_dir / f"{principal}.json"


def _write_credentials(path: Path, data: dict[str, Any]) -> None:
    """0600 from creation on; replaced atomically, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    tmp.replace(path)


def _kafka_acl(b: core_acls.Binding) -> ACL:
    return ACL(principal=b.principal, host="*", operation=ACLOperation[b.operation],
               permission_type=ACLPermissionType.ALLOW,
               resource_pattern=ResourcePattern(ResourceType[b.resource_type], b.resource_name,
                                                ACLResourcePatternType[b.pattern_type]))


def _binding(acl: ACL) -> core_acls.Binding | None:
    if acl.permission_type != ACLPermissionType.ALLOW or acl.host != "*":
        return None
    p = acl.resource_pattern
    return core_acls.Binding(acl.principal, p.resource_type.name, p.resource_name, p.pattern_type.name,
                             acl.operation.name)


def _present_acls(admin: KafkaAdminClient) -> set[core_acls.Binding]:
    every = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
                      resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))
    acls, _ = admin.describe_acls(every)
    return {b for b in map(_binding, acls) if b is not None}


def provision_principals(bootstrap: str, gemeentecodes: Iterable[str], credentials_dir: Path, *,
                         ssl_cafile: Path, sasl_bootstrap: str, dry_run: bool = False,
                         admin_options: Mapping[str, Any] | None = None) -> PrincipalReport:
    """SCRAM users with generated passwords, one credentials file each, and their ACLs; idempotent.

    A principal whose credentials file exists keeps its password (the broker gets it again only
    when it lacks the user); without a file it gets a new one (delete a file to rotate that
    password). Each file is written before the broker learns the password, so a crash in between
    leaves a file that the next run restores. Passwords go into the files and to the broker only:
    never into a report, a log line or an exception.
    """
    codes = sorted(set(gemeentecodes))
    names = core_acls.principals(codes)
    wanted = core_acls.all_bindings(codes)
    report = PrincipalReport(credentials_dir=credentials_dir)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="herstelbus-principals", **(admin_options or {}))
    try:
        try:  # first: a broker without an authorizer would take the users and then refuse every ACL
            present = _present_acls(admin)
        except SecurityDisabledError:
            raise ProvisionError(f"the broker at {bootstrap} has no authorizer (authorizer.class.name), "
                                 "so ACLs cannot be set; see deploy/README.md") from None
        known = admin.describe_user_scram_credentials()
        on_broker = {user for user, info in known.items()
                     if any(c["mechanism"] == ScramMechanism.SCRAM_SHA_512 for c in info["credential_infos"])}
        upserts: list[UserScramCredentialUpsertion] = []
        if not dry_run:
            credentials_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(credentials_dir, 0o700)
        for name in names:
            path = credentials_file(credentials_dir, name)
            if path.is_file():
                if name in on_broker:
                    report.kept.append(name)
                    continue
                password = json.loads(path.read_text())["sasl_plain_password"]
                report.restored.append(name)
            else:
                password = secrets.token_urlsafe(32)
                report.created.append(name)
                if not dry_run:
                    _write_credentials(path, {
                        "principal": core_acls.user(name), "bootstrap_servers": sasl_bootstrap,
                        "security_protocol": "SASL_SSL", "sasl_mechanism": _MECHANISM,
                        "sasl_plain_username": name, "sasl_plain_password": password,
                        "ssl_cafile": str(Path(ssl_cafile).resolve()),
                    })
            if not dry_run:
                upserts.append(UserScramCredentialUpsertion(name, ScramMechanism.SCRAM_SHA_512, password))
        failures: list[str] = []
        for start in range(0, len(upserts), _USERS_PER_REQUEST):
            result = admin.alter_user_scram_credentials(upserts[start:start + _USERS_PER_REQUEST])
            failures += [f"{user}: {error}" for user, error in result.items() if error]
        if failures:
            raise ProvisionError(f"{len(failures)} SCRAM users could not be set: " + "; ".join(failures[:5]))

        missing = [b for b in wanted if b not in present]
        report.acls_existing = len(wanted) - len(missing)
        if dry_run:
            report.acls_created = len(missing)
            return report
        acl_failures: list[str] = []
        for start in range(0, len(missing), _ACLS_PER_REQUEST):
            result = admin.create_acls([_kafka_acl(b) for b in missing[start:start + _ACLS_PER_REQUEST]])
            report.acls_created += len(result["succeeded"])
            acl_failures += [getattr(e, "__name__", type(e).__name__) for e in result["failed"]]
        if acl_failures:
            raise ProvisionError(f"{len(acl_failures)} ACLs could not be created: " + ", ".join(sorted(set(acl_failures))))
        return report
    finally:
        admin.close()
