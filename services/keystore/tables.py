"""The key store's tables (SQLAlchemy Core; the same DDL on SQLite and PostgreSQL).

No table holds personal data: subjects are pseudonyms, wrapped keys and announcements are
ciphertext or public material, tokens are stored as SHA-256 digests.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC in and out, also on SQLite (which stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


GM = String(6)
SUBJECT = String(35)  # "p1:" + 32 base32 characters
KEY_ID = String(63)
EVENT_ID = String(128)
SHA256_HEX = String(64)

metadata = MetaData()

# DEKs wrapped under a KEK, one per (gemeente, subject, event, KEK). The exchange inserts and
# compares ``wrapped_sha256``; only the gemeente API reads ``wrapped``.
wrapped_keys = Table(
    "wrapped_keys",
    metadata,
    Column("gemeentecode", GM, primary_key=True),
    Column("subject", SUBJECT, primary_key=True),
    Column("event_id", EVENT_ID, primary_key=True),
    Column("key_id", KEY_ID, primary_key=True),
    Column("wrapped", LargeBinary, nullable=False),
    Column("wrapped_sha256", SHA256_HEX, nullable=False),
    Column("stored_at", UtcDateTime, nullable=False),
    Index("ix_wrapped_keys_subject", "subject"),
)

# Signed key-epoch announcements (public): what a gemeente needs to unwrap a KEK.
key_epochs = Table(
    "key_epochs",
    metadata,
    Column("kek_id", KEY_ID, primary_key=True),
    Column("gemeentecode", GM, nullable=False),
    Column("recipient_key_id", KEY_ID, nullable=False),
    Column("signer_key_id", KEY_ID, nullable=False),
    Column("not_before", UtcDateTime, nullable=False),
    Column("not_after", UtcDateTime, nullable=False),
    Column("announcement", LargeBinary, nullable=False),
    Column("stored_at", UtcDateTime, nullable=False),
    Index("ix_key_epochs_gemeente", "gemeentecode", "not_after"),
)

# The exchange's key directory: gemeente public keys (x25519 or hybrid mlkem768x25519, the key id
# says which); rotation = a newer row.
gemeente_keys = Table(
    "gemeente_keys",
    metadata,
    Column("key_id", KEY_ID, primary_key=True),
    Column("gemeentecode", GM, nullable=False),
    Column("public_key_pem", Text, nullable=False),
    Column("valid_from", UtcDateTime, nullable=False),
    Column("valid_until", UtcDateTime, nullable=True),
    Column("registered_at", UtcDateTime, nullable=False),
    Index("ix_gemeente_keys_gemeente", "gemeentecode"),
)

# Tombstones: the subject was erased, so a lookup answers ERASED (not MISSING) forever.
erased_subjects = Table(
    "erased_subjects",
    metadata,
    Column("subject", SUBJECT, primary_key=True),
    Column("erased_at", UtcDateTime, nullable=False),
    Column("audit_id", String(36), nullable=False),
)

# Bearer tokens of the gemeente API, SHA-256 only.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_sha256", SHA256_HEX, primary_key=True),
    Column("gemeentecode", GM, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
)

# Key releases per subject, in the fields of the Logboek Dataverwerkingen standard (a span with
# dpl.core.* attributes). The receiver is the calling gemeente.
release_log = Table(
    "release_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("trace_id", String(32), nullable=False),
    Column("span_id", String(16), nullable=False),
    Column("parent_span_id", String(16), nullable=True),
    Column("name", String(64), nullable=False),
    Column("start_time", UtcDateTime, nullable=False),
    Column("end_time", UtcDateTime, nullable=False),
    Column("status_code", String(8), nullable=False),
    Column("resource_name", String(64), nullable=False),
    Column("resource_version", String(32), nullable=False),
    Column("processing_activity_id", String(256), nullable=False),
    Column("data_subject_id", SUBJECT, nullable=False),
    Column("data_subject_id_type", String(64), nullable=False),
    Column("receiver", GM, nullable=False),
    Column("event_ids", JSON, nullable=False),
    Index("ix_release_log_subject", "data_subject_id"),
    Index("ix_release_log_trace", "trace_id"),
    implicit_returning=False,  # the API role may append rows, not read them back (postgres-grants.sql)
)

# Ops actions (erasure, key registration, token issue, a gemeente's confirmed forget notice): the
# outbox that `herstelbus keys relay` forwards to herstel.audit.v1. ``subject`` is a pseudonym or
# null; ``detail`` holds codes and counts only.
audit_log = Table(
    "audit_log",
    metadata,
    Column("audit_id", String(36), primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("action", String(64), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("subject", SUBJECT, nullable=True),
    Column("gemeentecode", GM, nullable=True),
    Column("detail", JSON, nullable=False),
)

# Which audit rows the relay forwarded (acknowledged by the broker). A table of its own, so a key
# store made before the relay existed gets it from ``create_all`` without a migration.
audit_relayed = Table(
    "audit_relayed",
    metadata,
    Column("audit_id", String(36), primary_key=True),
    Column("relayed_at", UtcDateTime, nullable=False),
)

# Forget notices owed to gemeenten that received an erased subject. The gemeente's connector fetches
# them from the API, applies them to its sink and confirms: ``sent_at`` is that confirmation.
forget_notices = Table(
    "forget_notices",
    metadata,
    Column("subject", SUBJECT, primary_key=True),
    Column("gemeentecode", GM, primary_key=True),
    Column("audit_id", String(36), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
)
