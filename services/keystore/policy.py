"""The key store's decisions, as pure functions: who may read what, when a write is a no-op or a
conflict, what a lookup answers, what the release log records. The SQL (``store``) and HTTP
(``api``) modules only carry these out; the unit tests call them directly.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from herstelbus import __version__
from herstelbus.core.bsn import BSN_IN_TEXT, is_valid_bsn
from herstelbus.core.privacy import (
    HYBRID_SUITE, X25519_SUITE, KeyRef, KeyRowState, KeyUnavailable, WrappedKey, choose_wrapping_key, is_pseudonym,
)
from herstelbus.core.privacy.keys import check_gemeentecode, check_key_id
from herstelbus.core.privacy.errors import InvalidIdentifier

from herstelbus.core import gemeenten

from .errors import InvalidRequest, KeyConflict, SubjectErasedWrite

# FORMAT.md §Notation: event ids are [A-Za-z0-9._:-]{1,128} (a UUID in practice).
EVENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# A processing activity: an identifier or a URI into the gemeente's register of processing
# activities (AVG art. 30), never free text.
PURPOSE = re.compile(r"[A-Za-z][A-Za-z0-9:/._#~-]{0,255}")
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
MAX_BATCH = 1000
TOKEN_PREFIX = "hbk_"

# Logboek Dataverwerkingen names for a key release.
RELEASE_OPERATION = "sleutels_vrijgeven"
RESOURCE_NAME = "herstelbus-sleutelkluis"
SUBJECT_ID_TYPE = "herstelbus-pseudoniem"
STATE_RELEASED = "released"

T = TypeVar("T")


# ---- access ------------------------------------------------------------------------------------


class Access(enum.Enum):
    GRANTED = "granted"
    UNAUTHENTICATED = "unauthenticated"  # no token, or one the store does not know (HTTP 401)
    FORBIDDEN = "forbidden"  # a valid token of another gemeente (HTTP 403)


def authorise(caller: str | None, gemeentecode: str) -> Access:
    """A gemeente reads only its own rows: the token's gemeente must be the one addressed."""
    if caller is None:
        return Access.UNAUTHENTICATED
    return Access.GRANTED if caller == gemeentecode else Access.FORBIDDEN


def new_token() -> str:
    """A bearer token: 256 random bits. Shown once; only its SHA-256 is stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Tokens are random (not passwords), so an unsalted SHA-256 is enough to make a stolen
    database useless for calling the API, and it can be looked up by equality."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token.startswith(TOKEN_PREFIX) else None


# ---- writes ------------------------------------------------------------------------------------


def decide_write(what: str, existing: T | None, new: T) -> bool:
    """Idempotent writes: nothing there → insert (True); the same content → no-op (False);
    different content under the same id → ``KeyConflict`` (a row is never overwritten)."""
    if existing is None:
        return True
    if existing == new:
        return False
    raise KeyConflict(f"{what}: already stored with different content")


def digest(data: bytes) -> str:
    """What the exchange compares on a repeated write, so it never needs to read a wrapped key."""
    return hashlib.sha256(data).hexdigest()


def refuse_erased(rows: Iterable[WrappedKey], erased: Collection[str]) -> None:
    for row in rows:
        if row.subject in erased:
            raise SubjectErasedWrite(f"subject {row.subject} was erased; key for event {row.event_id} refused")


# ---- lookups -----------------------------------------------------------------------------------


def resolve(refs: Sequence[KeyRef], rows: Mapping[KeyRef, bytes], erased: Collection[str]) -> list[WrappedKey | KeyRowState]:
    """Per reference, in order: ERASED when the subject has a tombstone (it wins over a row a
    racing write may have left), else the row, else MISSING."""
    out: list[WrappedKey | KeyRowState] = []
    for ref in refs:
        if ref.subject in erased:
            out.append(KeyRowState.ERASED)
        elif ref in rows:
            out.append(WrappedKey(ref.gemeentecode, ref.subject, ref.event_id, ref.key_id, rows[ref]))
        else:
            out.append(KeyRowState.MISSING)
    return out


def state_name(result: WrappedKey | KeyRowState) -> str:
    return STATE_RELEASED if isinstance(result, WrappedKey) else result.value


def parse_refs(gemeentecode: str, items: Any) -> list[KeyRef]:
    """The refs of a batch request for ``gemeentecode`` (taken from the path, never the body)."""
    if not isinstance(items, list) or not items:
        raise InvalidRequest("refs: a non-empty list is required")
    if len(items) > MAX_BATCH:
        raise InvalidRequest(f"refs: at most {MAX_BATCH} per request")
    refs = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"subject", "event_id", "key_id"}:
            raise InvalidRequest(f"refs[{i}]: exactly subject, event_id and key_id are required")
        subject, event_id, key_id = item["subject"], item["event_id"], item["key_id"]
        if not is_pseudonym(subject):
            raise InvalidRequest(f"refs[{i}].subject: not a pseudonym")
        if not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id):
            raise InvalidRequest(f"refs[{i}].event_id: not an event id")
        try:
            check_key_id(key_id)
        except InvalidIdentifier:
            raise InvalidRequest(f"refs[{i}].key_id: not a key id") from None
        refs.append(KeyRef(gemeentecode, subject, event_id, key_id))
    return refs


def check_purpose(purpose: Any) -> str:
    """An identifier or URI of the processing activity; a BSN in it is refused like any junk."""
    if (
        not isinstance(purpose, str)
        or not PURPOSE.fullmatch(purpose)
        or any(is_valid_bsn(m.group()) for m in BSN_IN_TEXT.finditer(purpose))
    ):
        raise InvalidRequest("purpose: an identifier or URI of the processing activity is required")
    return purpose


def check_gemeente(code: Any) -> str:
    """A gemeentecode in the CBS reference list (``schemas/reference/gemeenten.csv``)."""
    try:
        check_gemeentecode(code)
    except InvalidIdentifier:
        raise InvalidRequest("not a gemeentecode (GM + 4 digits)") from None
    if gemeenten.get(code) is None:
        raise InvalidRequest(f"{code} is not a known gemeente")
    return code


# ---- the release log (Logboek Dataverwerkingen) -------------------------------------------------


@dataclass(frozen=True)
class Trace:
    """W3C trace context of one release: the caller's trace id when it sent ``traceparent``."""

    trace_id: str
    span_id: str
    parent_span_id: str | None


def trace_from(traceparent: str | None, rand_hex: Callable[[int], str] = secrets.token_hex) -> Trace:
    m = TRACEPARENT.fullmatch(traceparent.strip()) if traceparent else None
    if m and m.group(1) != "0" * 32 and m.group(2) != "0" * 16:
        return Trace(m.group(1), rand_hex(8), m.group(2))
    return Trace(rand_hex(16), rand_hex(8), None)


@dataclass(frozen=True)
class ReleaseEntry:
    """One release-log row: which gemeente (receiver) got the keys of which events about one
    subject, when, for which processing activity, in which trace. No personal data: the subject
    is a pseudonym, the rest are codes and ids."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    start_time: datetime
    end_time: datetime
    status_code: str
    resource_name: str
    resource_version: str
    processing_activity_id: str
    data_subject_id: str
    data_subject_id_type: str
    receiver: str
    event_ids: tuple[str, ...]


def release_entries(
    gemeentecode: str,
    results: Iterable[WrappedKey | KeyRowState],
    purpose: str,
    trace: Trace,
    start: datetime,
    end: datetime,
) -> list[ReleaseEntry]:
    """One entry per subject whose keys were released, listing its event ids (each once, in
    request order). ERASED and MISSING answers release nothing, so they are not logged here."""
    by_subject: dict[str, dict[str, None]] = {}
    for r in results:
        if isinstance(r, WrappedKey):
            by_subject.setdefault(r.subject, {})[r.event_id] = None
    return [
        ReleaseEntry(
            trace.trace_id, trace.span_id, trace.parent_span_id, RELEASE_OPERATION, start, end, "OK",
            RESOURCE_NAME, __version__, purpose, subject, SUBJECT_ID_TYPE, gemeentecode, tuple(events),
        )
        for subject, events in by_subject.items()
    ]


# ---- erasure -----------------------------------------------------------------------------------


def forget_targets(gemeentecodes: Iterable[str]) -> tuple[str, ...]:
    """The gemeenten that hold records about an erased subject (they had key rows for it) and must
    get a forget notice: each once, sorted."""
    return tuple(sorted(set(gemeentecodes)))


# ---- audit relay -------------------------------------------------------------------------------

AUDIT_COMPONENT = "sleutelkluis"
_COUNT_KEY = re.compile(r"[a-z][a-z0-9_.]{0,63}")  # the audit contract's count names


def audit_message(*, audit_id: str, at: datetime, action: str, actor: str, subject: str | None,
                  gemeentecode: str | None, detail: Mapping[str, Any]) -> dict[str, Any]:
    """A key store audit row as the ``audit`` record for ``herstel.audit.v1``. ``detail`` holds
    codes and counts only; its counts (and the length of each list of gemeenten, e.g. the forget
    notices an erasure owes) become ``aantallen``; anything else stays in the key store."""
    aantallen: dict[str, int] = {}
    for name, value in detail.items():
        if not _COUNT_KEY.fullmatch(name):
            continue
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            aantallen[name] = value
        elif isinstance(value, (list, tuple)):
            aantallen[name] = len(value)
    return {
        "audit_id": audit_id, "at": at, "actor": actor, "component": AUDIT_COMPONENT, "actie": action,
        "resultaat": "GESLAAGD", "reden": None, "gemeentecode": gemeentecode, "topic": None,
        "event_id": None, "subject": subject, "aantallen": aantallen,
    }


# ---- suite audit (issue 12) ----------------------------------------------------------------------


@dataclass(frozen=True)
class SuiteRegel:
    """One gemeente's migration state to the hybrid suite. Counts and key ids only."""

    gemeentecode: str
    keys_by_suite: dict[str, int]  # registered keys still valid now
    wraps_to: str | None  # the suite new key epochs use now (None: no valid key)
    classical_records: int  # wrapped data keys under classical (x25519) epochs: retained records
    hybrid_records: int

    @property
    def klaar(self) -> bool:
        """Nothing new and nothing retained under the classical suite."""
        return self.wraps_to == HYBRID_SUITE.name and self.classical_records == 0


def suite_audit(keys: Iterable[Any], records: Mapping[tuple[str, str], int], now: datetime) -> list[SuiteRegel]:
    """Per gemeente (every one with a key or a record): which suites its valid keys have, which
    suite new epochs use (``choose_wrapping_key``), and how many wrapped data keys sit under each
    suite. ``records`` maps (gemeentecode, suite name) to a count."""
    keys = list(keys)
    codes = sorted({k.gemeentecode for k in keys} | {gm for gm, _ in records})
    out = []
    for gm in codes:
        valid = [k for k in keys if k.gemeentecode == gm and k.valid_at(now)]
        by_suite: dict[str, int] = {}
        for k in valid:
            by_suite[k.suite.name] = by_suite.get(k.suite.name, 0) + 1
        try:
            wraps_to: str | None = choose_wrapping_key(keys, gm, now).suite.name
        except KeyUnavailable:
            wraps_to = None
        out.append(SuiteRegel(gm, by_suite, wraps_to, records.get((gm, X25519_SUITE.name), 0),
                              records.get((gm, HYBRID_SUITE.name), 0)))
    return out
