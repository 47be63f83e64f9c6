"""The key store repository over SQLAlchemy Core: SQLite (default) or PostgreSQL, same code.

One :class:`KeyStore` (an engine and a clock) and three narrow views, one per kind of caller, so
that what each caller can do is visible in its type:

- :class:`ExchangeWriter` — the router: inserts wrapped keys and key-epoch announcements, reads
  the key directory. It has **no method that reads a wrapped key**: repeated writes are compared by
  SHA-256 digest (on PostgreSQL the router's role is granted no SELECT on ``wrapped``, README.md).
- :class:`GemeenteAccess` — the gemeente HTTP API: token check, key release (with its
  release-log rows, in the same transaction), announcements.
- :class:`KeyAdmin` — ops (CLI): key directory, tokens, erasure, audit and release logs.

Every decision is a pure function in :mod:`.policy`; this module only runs SQL. Driver errors
become :class:`KeystoreUnavailable` with a fixed message (a driver's text can quote parameters).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, case, create_engine, delete, event, func, insert, select, tuple_, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from herstelbus.core.privacy import (
    HYBRID_SUITE,
    X25519_SUITE,
    GemeenteKey,
    KeyEpoch,
    KeyRef,
    KeyRowState,
    PrivacyError,
    WrappedKey,
    load_gemeente_public_key,
    public_key_to_pem,
)

from . import policy
from . import tables as t
from .errors import InvalidRequest, KeystoreConfigError, KeystoreUnavailable
from .settings import KeystoreSettings

T = TypeVar("T")
_CHUNK = 500  # rows per IN (...) list


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL: the API server reads while the CLI erases; busy_timeout: writers queue instead of failing.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class KeyStore:
    """The database. Open it with :meth:`open` / :meth:`from_settings`; hand callers a view."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = _utcnow) -> None:
        self.engine = engine
        self.clock = clock
        self.where = engine.url.render_as_string(hide_password=True)

    @classmethod
    def open(cls, url: str, *, clock: Callable[[], datetime] = _utcnow) -> KeyStore:
        """Connect and create the tables that are missing (idempotent)."""
        try:
            u = make_url(url)
        except ArgumentError:
            raise KeystoreConfigError("HERSTELBUS_KEYSTORE_URL is not a database URL") from None
        backend = u.get_backend_name()
        if backend == "sqlite":
            if u.database in (None, "", ":memory:"):
                engine = create_engine(u, poolclass=StaticPool, connect_args={"check_same_thread": False})
            else:
                try:
                    Path(u.database).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise KeystoreUnavailable(f"key store folder {Path(u.database).parent}: {exc.strerror}") from None
                engine = create_engine(u, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        elif backend == "postgresql":
            try:
                engine = create_engine(u, pool_pre_ping=True)
            except (ImportError, NoSuchModuleError):
                raise KeystoreConfigError(
                    "the key store on PostgreSQL needs psycopg: pip install 'herstelbus[postgres]' "
                    "and a postgresql+psycopg:// URL"
                ) from None
        else:
            raise KeystoreConfigError(f"unsupported key store database {backend!r}: use sqlite or postgresql")
        store = cls(engine, clock)
        store.run(lambda conn: t.metadata.create_all(conn, checkfirst=True))
        return store

    @classmethod
    def from_settings(cls, settings: KeystoreSettings | None = None) -> KeyStore:
        return cls.open((settings or KeystoreSettings()).database_url())

    def close(self) -> None:
        self.engine.dispose()

    def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one transaction. Each ``fn`` reads, decides, then writes, so a write race
        (IntegrityError on a primary key) is settled by running it once more."""
        for attempt in (1, 2):
            try:
                with self.engine.begin() as conn:
                    return fn(conn)
            except IntegrityError:
                if attempt == 2:
                    raise KeystoreUnavailable(f"key store {self.where}: concurrent writes did not settle") from None
            except SQLAlchemyError as exc:
                cause = type(getattr(exc, "orig", None) or exc).__name__
                raise KeystoreUnavailable(f"key store {self.where} failed ({cause})") from None
        raise AssertionError("unreachable")

    def ping(self) -> bool:
        try:
            self.run(lambda conn: conn.execute(select(1)).scalar_one())
        except KeystoreUnavailable:
            return False
        return True

    def erased_subjects(self, subjects: Collection[str]) -> set[str]:
        """Those of ``subjects`` (pseudonyms) that were erased: their data is never published again."""
        return self.run(lambda conn: self._erased(conn, subjects)) if subjects else set()

    # ---- shared reads (never of ``wrapped``) ----

    def _erased(self, conn: Connection, subjects: Collection[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(sorted(subjects)):
            q = select(t.erased_subjects.c.subject).where(t.erased_subjects.c.subject.in_(chunk))
            found.update(conn.execute(q).scalars())
        return found

    def _audit(
        self, conn: Connection, action: str, actor: str, *, subject: str | None = None,
        gemeentecode: str | None = None, detail: dict[str, Any] | None = None,
    ) -> str:
        audit_id = str(uuid.uuid4())
        conn.execute(insert(t.audit_log).values(
            audit_id=audit_id, at=self.clock(), action=action, actor=actor, subject=subject,
            gemeentecode=gemeentecode, detail=detail or {},
        ))
        return audit_id


def _wrapped_row(r: WrappedKey, digest: str, now: datetime) -> dict[str, Any]:
    return {"gemeentecode": r.gemeentecode, "subject": r.subject, "event_id": r.event_id,
            "key_id": r.key_id, "wrapped": r.wrapped, "wrapped_sha256": digest, "stored_at": now}


def _ref_key(c: Any) -> Any:
    return tuple_(c.gemeentecode, c.subject, c.event_id, c.key_id)


def _ref_of(row: Any) -> KeyRef:
    return KeyRef(row.gemeentecode, row.subject, row.event_id, row.key_id)


# ---- the exchange (router) ----------------------------------------------------------------------


@dataclass(frozen=True)
class WriteResult:
    inserted: int
    unchanged: int


class ExchangeWriter:
    """What the router may do. Writes are idempotent: the same row again is a no-op; the same key
    with other bytes is a ``KeyConflict``; a key for an erased subject is ``SubjectErasedWrite``."""

    def __init__(self, store: KeyStore) -> None:
        self._store = store

    def put_wrapped_keys(self, rows: Iterable[WrappedKey]) -> WriteResult:
        rows = list(rows)
        if not all(isinstance(r, WrappedKey) for r in rows):
            raise InvalidRequest("put_wrapped_keys takes WrappedKey rows")

        def tx(conn: Connection) -> WriteResult:
            policy.refuse_erased(rows, self._store._erased(conn, {r.subject for r in rows}))
            now = self._store.clock()
            try:  # the common case, all rows new: one insert; a known row fails it as a whole
                with conn.begin_nested():
                    conn.execute(insert(t.wrapped_keys), [_wrapped_row(r, policy.digest(r.wrapped), now)
                                                          for r in rows])
                return WriteResult(len(rows), 0)
            except IntegrityError:
                pass  # rolled back to the savepoint: compare each row with what is stored
            c = t.wrapped_keys.c
            known: dict[KeyRef, str] = {}
            for chunk in _chunks([r.ref for r in rows]):
                wanted = [(r.gemeentecode, r.subject, r.event_id, r.key_id) for r in chunk]
                q = select(c.gemeentecode, c.subject, c.event_id, c.key_id, c.wrapped_sha256).where(
                    _ref_key(c).in_(wanted)
                )
                known.update((_ref_of(row), row.wrapped_sha256) for row in conn.execute(q))
            new, unchanged = [], 0
            for r in rows:
                d = policy.digest(r.wrapped)
                if policy.decide_write(f"wrapped key {r.key_id} of event {r.event_id} for {r.gemeentecode}",
                                       known.get(r.ref), d):
                    known[r.ref] = d
                    new.append(_wrapped_row(r, d, now))
                else:
                    unchanged += 1
            if new:
                conn.execute(insert(t.wrapped_keys), new)
            return WriteResult(len(new), unchanged)

        return self._store.run(tx)

    def put_announcement(self, announcement: KeyEpoch | bytes) -> bool:
        """Store a signed key-epoch announcement for its gemeente to fetch. True when new."""
        try:
            ep = announcement if isinstance(announcement, KeyEpoch) else KeyEpoch.from_bytes(announcement)
        except PrivacyError as exc:
            raise InvalidRequest(f"announcement: {exc}") from None
        if not ep.signed:
            raise InvalidRequest(f"announcement {ep.kek_id}: unsigned (signature_missing)")
        data = ep.to_bytes()

        def tx(conn: Connection) -> bool:
            c = t.key_epochs.c
            existing = conn.execute(select(c.announcement).where(c.kek_id == ep.kek_id)).scalar_one_or_none()
            if not policy.decide_write(f"key epoch {ep.kek_id}", existing and bytes(existing), data):
                return False
            conn.execute(insert(t.key_epochs).values(
                kek_id=ep.kek_id, gemeentecode=ep.gemeentecode, recipient_key_id=ep.recipient_key_id,
                signer_key_id=ep.signer_key_id, not_before=ep.not_before, not_after=ep.not_after,
                announcement=data, stored_at=self._store.clock(),
            ))
            return True

        return self._store.run(tx)

    def gemeente_keys(self, gemeentecode: str | None = None) -> list[GemeenteKey]:
        """The key directory (public keys), for ``choose_wrapping_key``."""
        return _gemeente_keys(self._store, gemeentecode)


def _gemeente_keys(store: KeyStore, gemeentecode: str | None) -> list[GemeenteKey]:
    c = t.gemeente_keys.c
    q = select(c.gemeentecode, c.public_key_pem, c.valid_from, c.valid_until).order_by(c.valid_from, c.key_id)
    if gemeentecode is not None:
        q = q.where(c.gemeentecode == gemeentecode)
    rows = store.run(lambda conn: conn.execute(q).all())
    return [
        GemeenteKey(r.gemeentecode, load_gemeente_public_key(r.public_key_pem.encode()), r.valid_from, r.valid_until)
        for r in rows
    ]


# ---- the gemeenten (HTTP API) -------------------------------------------------------------------


class GemeenteAccess:
    """What the gemeente API may do: authenticate, release a gemeente's own keys, serve epochs,
    hand a gemeente its own forget notices and record its confirmation."""

    def __init__(self, store: KeyStore) -> None:
        self._store = store

    def ping(self) -> bool:
        return self._store.ping()

    def authenticate(self, token: str | None) -> str | None:
        """The gemeentecode of a live token, else None."""
        if not token:
            return None
        c = t.api_tokens.c
        q = select(c.gemeentecode).where(c.token_sha256 == policy.token_digest(token), c.revoked_at.is_(None))
        return self._store.run(lambda conn: conn.execute(q).scalar_one_or_none())

    def release(
        self, gemeentecode: str, refs: Sequence[KeyRef], purpose: str, trace: policy.Trace
    ) -> list[WrappedKey | KeyRowState]:
        """The wrapped keys of ``refs`` (all of ``gemeentecode``), ERASED or MISSING each, and the
        release-log rows for what was released, in one transaction: no release without its log."""
        policy.check_purpose(purpose)
        if any(r.gemeentecode != gemeentecode for r in refs):
            raise InvalidRequest("refs of another gemeente")
        clock = self._store.clock

        def tx(conn: Connection) -> list[WrappedKey | KeyRowState]:
            start = clock()
            c = t.wrapped_keys.c
            rows: dict[KeyRef, bytes] = {}
            for chunk in _chunks(list(refs)):
                wanted = [(r.subject, r.event_id, r.key_id) for r in chunk]
                q = select(c.gemeentecode, c.subject, c.event_id, c.key_id, c.wrapped).where(
                    c.gemeentecode == gemeentecode, tuple_(c.subject, c.event_id, c.key_id).in_(wanted)
                )
                rows.update((_ref_of(row), bytes(row.wrapped)) for row in conn.execute(q))
            results = policy.resolve(refs, rows, self._store._erased(conn, {r.subject for r in refs}))
            entries = policy.release_entries(gemeentecode, results, purpose, trace, start, clock())
            if entries:
                conn.execute(insert(t.release_log), [
                    {**asdict(e), "event_ids": list(e.event_ids)} for e in entries
                ])
            return results

        return self._store.run(tx)

    def announcements(
        self, gemeentecode: str, kek_ids: Collection[str] = (), since: datetime | None = None
    ) -> list[KeyEpoch]:
        """Announcements for ``gemeentecode`` (only), oldest first; optionally only these KEK ids
        and/or only epochs still open after ``since``."""
        c = t.key_epochs.c
        q = select(c.announcement).where(c.gemeentecode == gemeentecode).order_by(c.not_before, c.kek_id)
        if kek_ids:
            q = q.where(c.kek_id.in_(sorted(kek_ids)))
        if since is not None:
            q = q.where(c.not_after > since)
        blobs = self._store.run(lambda conn: conn.execute(q).scalars().all())
        return [KeyEpoch.from_bytes(bytes(b)) for b in blobs]

    def forget_notices(self, gemeentecode: str, limit: int = policy.MAX_BATCH) -> list[ForgetNotice]:
        """The forget notices ``gemeentecode`` (only) has not confirmed yet, oldest first, at most
        ``limit`` (the gemeente asks again once it confirmed these)."""
        f = t.forget_notices.c
        q = (select(f.subject, f.gemeentecode, f.audit_id, f.created_at)
             .where(f.gemeentecode == gemeentecode, f.sent_at.is_(None))
             .order_by(f.created_at, f.subject).limit(limit))
        return [ForgetNotice(*r) for r in self._store.run(lambda conn: conn.execute(q).all())]

    def confirm_forget_notices(self, gemeentecode: str, subjects: Collection[str]) -> int:
        """``gemeentecode`` applied the forget notices of ``subjects``: set ``sent_at`` on its own
        pending rows of those subjects and write one audit record per confirmed notice, in one
        transaction. Subjects without a pending notice for this gemeente (never owed, another
        gemeente's, already confirmed) are ignored, so repeating it is a no-op. How many confirmed."""
        wanted = sorted(set(subjects))
        if not wanted:
            return 0
        f = t.forget_notices.c

        def tx(conn: Connection) -> int:
            now, confirmed = self._store.clock(), []
            for chunk in _chunks(wanted):
                # RETURNING: only the rows this statement changed (a racing confirmation of the same
                # notice changes none here), so each notice gets exactly one audit record.
                stmt = (update(t.forget_notices)
                        .where(f.gemeentecode == gemeentecode, f.sent_at.is_(None), f.subject.in_(chunk))
                        .values(sent_at=now).returning(f.subject, f.audit_id))
                confirmed += conn.execute(stmt).all()
            for subject, erasure_audit_id in sorted(confirmed):
                self._store._audit(conn, "forget_notice_confirmed", f"gemeente:{gemeentecode}", subject=subject,
                                   gemeentecode=gemeentecode, detail={"erasure_audit_id": erasure_audit_id})
            return len(confirmed)

        return self._store.run(tx)


# ---- ops ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasurePreview:
    subject: str
    key_rows: int
    gemeenten: tuple[str, ...]
    erased_at: datetime | None


@dataclass(frozen=True)
class ErasureResult:
    subject: str
    erased_at: datetime
    deleted_rows: int
    forget_notices: tuple[str, ...]  # gemeenten owed a forget notice by this erasure
    audit_id: str | None  # None: nothing was done (already erased, no rows left)


@dataclass(frozen=True)
class ForgetNotice:
    subject: str
    gemeentecode: str
    audit_id: str
    created_at: datetime


@dataclass(frozen=True)
class AuditRecord:
    audit_id: str
    at: datetime
    action: str
    actor: str
    subject: str | None
    gemeentecode: str | None
    detail: dict[str, Any]


class KeyAdmin:
    """What ops may do from the CLI. Every change writes an audit record."""

    def __init__(self, store: KeyStore) -> None:
        self._store = store

    def register_gemeente_key(self, key: GemeenteKey, actor: str) -> bool:
        """Add a public key to the directory (rotation = registering a newer one). True when new."""
        policy.check_gemeente(key.gemeentecode)
        pem = public_key_to_pem(key.public_key).decode("ascii")
        new = (key.gemeentecode, pem, key.valid_from, key.valid_until)

        def tx(conn: Connection) -> bool:
            c = t.gemeente_keys.c
            row = conn.execute(
                select(c.gemeentecode, c.public_key_pem, c.valid_from, c.valid_until).where(c.key_id == key.key_id)
            ).one_or_none()
            if not policy.decide_write(f"gemeente key {key.key_id}", row and tuple(row), new):
                return False
            conn.execute(insert(t.gemeente_keys).values(
                key_id=key.key_id, gemeentecode=key.gemeentecode, public_key_pem=pem,
                valid_from=key.valid_from, valid_until=key.valid_until, registered_at=self._store.clock(),
            ))
            self._store._audit(conn, "gemeente_key_registered", actor, gemeentecode=key.gemeentecode, detail={
                "key_id": key.key_id, "valid_from": key.valid_from.isoformat(),
                "valid_until": key.valid_until.isoformat() if key.valid_until else None,
            })
            return True

        return self._store.run(tx)

    def gemeente_keys(self, gemeentecode: str | None = None) -> list[GemeenteKey]:
        return _gemeente_keys(self._store, gemeentecode)

    def issue_token(self, gemeentecode: str, actor: str, *, replace: bool = False) -> str:
        """A new API token for ``gemeentecode`` (returned once, stored as a digest); ``replace``
        revokes the gemeente's earlier tokens."""
        policy.check_gemeente(gemeentecode)
        token = policy.new_token()

        def tx(conn: Connection) -> None:
            now, c = self._store.clock(), t.api_tokens.c
            revoked = 0
            if replace:
                revoked = conn.execute(
                    update(t.api_tokens).where(c.gemeentecode == gemeentecode, c.revoked_at.is_(None))
                    .values(revoked_at=now)
                ).rowcount
            conn.execute(insert(t.api_tokens).values(
                token_sha256=policy.token_digest(token), gemeentecode=gemeentecode, created_at=now
            ))
            self._store._audit(conn, "api_token_issued", actor, gemeentecode=gemeentecode,
                               detail={"revoked": revoked})

        self._store.run(tx)
        return token

    def erasure_preview(self, subject: str) -> ErasurePreview:
        c = t.wrapped_keys.c

        def tx(conn: Connection) -> ErasurePreview:
            gms = conn.execute(select(c.gemeentecode).where(c.subject == subject)).scalars().all()
            erased_at = conn.execute(
                select(t.erased_subjects.c.erased_at).where(t.erased_subjects.c.subject == subject)
            ).scalar_one_or_none()
            return ErasurePreview(subject, len(gms), policy.forget_targets(gms), erased_at)

        return self._store.run(tx)

    def erase(self, subject: str, actor: str) -> ErasureResult:
        """Crypto-shred a subject: delete its wrapped keys at every gemeente, write the tombstone,
        the audit record and the forget notices owed, in one transaction. Repeating it is a no-op
        (it only deletes rows a racing write may have added since)."""

        def tx(conn: Connection) -> ErasureResult:
            c, e, f = t.wrapped_keys.c, t.erased_subjects.c, t.forget_notices.c
            gms = conn.execute(select(c.gemeentecode).where(c.subject == subject)).scalars().all()
            deleted = conn.execute(delete(t.wrapped_keys).where(c.subject == subject)).rowcount
            tomb = conn.execute(select(e.erased_at).where(e.subject == subject)).scalar_one_or_none()
            if tomb is not None and not deleted:
                return ErasureResult(subject, tomb, 0, (), None)
            owed = conn.execute(select(f.gemeentecode).where(f.subject == subject)).scalars().all()
            targets = tuple(gm for gm in policy.forget_targets(gms) if gm not in owed)
            now = self._store.clock()
            audit_id = self._store._audit(conn, "subject_erased", actor, subject=subject, detail={
                "deleted_key_rows": deleted, "forget_notices": list(targets),
            })
            if tomb is None:
                conn.execute(insert(t.erased_subjects).values(subject=subject, erased_at=now, audit_id=audit_id))
            if targets:
                conn.execute(insert(t.forget_notices), [
                    {"subject": subject, "gemeentecode": gm, "audit_id": audit_id, "created_at": now} for gm in targets
                ])
            return ErasureResult(subject, tomb or now, deleted, targets, audit_id)

        return self._store.run(tx)

    def pending_forget_notices(self) -> list[ForgetNotice]:
        """Forget notices not sent yet (the router issue sends them and sets ``sent_at``)."""
        f = t.forget_notices.c
        q = select(f.subject, f.gemeentecode, f.audit_id, f.created_at).where(f.sent_at.is_(None)).order_by(
            f.created_at, f.subject, f.gemeentecode
        )
        return [ForgetNotice(*r) for r in self._store.run(lambda conn: conn.execute(q).all())]

    def release_log(self, subject: str) -> list[policy.ReleaseEntry]:
        """Who received which keys about ``subject``, when, why (oldest first)."""
        r = t.release_log.c
        cols = [r[name] for name in policy.ReleaseEntry.__dataclass_fields__]
        q = select(*cols).where(r.data_subject_id == subject).order_by(r.id)
        rows = self._store.run(lambda conn: conn.execute(q).all())
        return [policy.ReleaseEntry(*row[:-1], tuple(row[-1])) for row in rows]

    def audit_records(self, subject: str | None = None) -> list[AuditRecord]:
        a = t.audit_log.c
        q = select(a.audit_id, a.at, a.action, a.actor, a.subject, a.gemeentecode, a.detail).order_by(a.at, a.audit_id)
        if subject is not None:
            q = q.where(a.subject == subject)
        return [AuditRecord(*row) for row in self._store.run(lambda conn: conn.execute(q).all())]

    def records_by_suite(self) -> dict[tuple[str, str], int]:
        """Wrapped data keys per (gemeentecode, suite): a hybrid KEK id says so by its prefix."""
        c = t.wrapped_keys.c
        hybrid = c.key_id.like(HYBRID_SUITE.kek_prefix + "%")
        suite = case((hybrid, HYBRID_SUITE.name), else_=X25519_SUITE.name)
        q = select(c.gemeentecode, suite.label("suite"), func.count()).group_by(c.gemeentecode, suite)
        rows = self._store.run(lambda conn: conn.execute(q).all())
        return {(gm, name): n for gm, name, n in rows}

    def unrelayed_audit_records(self, limit: int = 500) -> list[AuditRecord]:
        """Audit rows not yet forwarded to herstel.audit.v1, oldest first."""
        a, r = t.audit_log.c, t.audit_relayed.c
        q = (select(a.audit_id, a.at, a.action, a.actor, a.subject, a.gemeentecode, a.detail)
             .outerjoin(t.audit_relayed, r.audit_id == a.audit_id).where(r.audit_id.is_(None))
             .order_by(a.at, a.audit_id).limit(limit))
        return [AuditRecord(*row) for row in self._store.run(lambda conn: conn.execute(q).all())]

    def mark_audit_relayed(self, audit_ids: Collection[str]) -> int:
        """Record that the broker acknowledged these audit records; one already marked is left."""
        def tx(conn: Connection) -> int:
            done: set[str] = set()
            for chunk in _chunks(sorted(set(audit_ids))):
                done.update(conn.execute(select(t.audit_relayed.c.audit_id)
                                         .where(t.audit_relayed.c.audit_id.in_(chunk))).scalars())
            now = self._store.clock()
            rows = [{"audit_id": i, "relayed_at": now} for i in sorted(set(audit_ids) - done)]
            if rows:
                conn.execute(insert(t.audit_relayed), rows)
            return len(rows)

        return self._store.run(tx)
