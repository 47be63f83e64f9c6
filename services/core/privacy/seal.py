"""Sealing and opening the personal-data fields of one event (issue 4, properties 2, 3, 5, 7, 8).

Per event: a fresh random 256-bit data key (DEK); every personal-data field (nulls included, so the
presence of e.g. a phone number is hidden too) is encrypted with AES-256-GCM under it; the DEK is
wrapped under the epoch's KEK and returned as a ``WrappedKey`` row for the key store. The row is
never put in the record: deleting it (erasure) makes the record unreadable forever while every
other subject still opens.

AAD of a field binds gemeentecode, subject pseudonym, event id, field path, source-schema
fingerprint and key id (FORMAT.md), so a sealed field moved to another record, field or gemeente
fails as ``Tampered``. Opening fails closed with a typed error; no path hands back ciphertext or
skips a field.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import fastavro
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastavro.schema import fingerprint, to_parsing_canonical_form

from . import _hazmat as hz
from ._avro import FieldCodec
from .epochs import OpeningKeyring, SealingEpoch
from .errors import (
    ContextMismatch,
    InvalidIdentifier,
    KeyUnavailable,
    MalformedSealedField,
    RecordInvalid,
    SubjectErased,
    Tampered,
)
from .pseudonym import PSEUDONYM_PREFIX

_ABSENT = object()
_SUBJECT = re.compile(re.escape(PSEUDONYM_PREFIX) + r"[a-z2-7]{32}")
_EVENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


# ---- key-store rows ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyRef:
    """The key-store primary key of one wrapped data key."""

    gemeentecode: str
    subject: str  # pseudonym, never a BSN
    event_id: str
    key_id: str  # the KEK epoch id the DEK is wrapped under


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """One key-store row: a DEK wrapped under a KEK (FORMAT.md §Wrapped data key). Holds no personal
    data: the subject is a pseudonym and ``wrapped`` is ciphertext."""

    gemeentecode: str
    subject: str
    event_id: str
    key_id: str
    wrapped: bytes = field(repr=False)

    @property
    def ref(self) -> KeyRef:
        return KeyRef(self.gemeentecode, self.subject, self.event_id, self.key_id)

    def __repr__(self) -> str:
        return (
            f"WrappedKey(gemeentecode={self.gemeentecode!r}, subject={self.subject!r}, "
            f"event_id={self.event_id!r}, key_id={self.key_id!r}, wrapped=<{len(self.wrapped)} bytes>)"
        )


class KeyRowState(enum.Enum):
    """What the key store answers instead of a row. Modelled as an input so erasure is a typed
    result (``SubjectErased``), never a generic crypto failure."""

    ERASED = "erased"  # the subject was erased: rows deleted on purpose, forever
    MISSING = "missing"  # no row and no erasure record: a bug or a race, retry later
    UNREACHABLE = "unreachable"  # the key store did not answer


KeyLookup = WrappedKey | KeyRowState


class SealedEvent(NamedTuple):
    """``record, row = seal_event(...)``."""

    record: dict[str, Any]  # the routed record: every personal-data field is sealed bytes
    wrapped_key: WrappedKey  # for the key store, never for Kafka


# ---- which fields, and how their values are encoded ---------------------------------------------


@dataclass(frozen=True, slots=True)
class _PiiField:
    path: tuple[str, ...]
    name: str  # dotted path, as bound into the AAD
    codec: FieldCodec
    aad_base: bytes  # lp(path) || lp(fingerprint); lp(key_id) is appended per epoch
    key: str  # path[-1]
    top: bool  # a top-level field: no copying of parents needed


def _normalise_path(p: str | Sequence[str]) -> tuple[str, ...]:
    parts = tuple(p.split(".")) if isinstance(p, str) else tuple(p)
    if not parts or not all(isinstance(x, str) and x for x in parts):
        raise InvalidIdentifier("bad_pii_path")
    return parts


def _record_of(t: Any, named: Mapping[str, Any]) -> dict | None:
    """The record schema a path can descend into (through a named reference or ["null", record])."""
    if isinstance(t, str):
        t = named.get(t)
    if isinstance(t, list):
        non_null = [x for x in t if x != "null"]
        if len(non_null) != 1 or len(t) != 2:
            return None
        return _record_of(non_null[0], named)
    if isinstance(t, dict) and t.get("type") in ("record", "error"):
        return t
    return None


class PiiLayout:
    """Where the personal data sits in one source schema, compiled once per schema version.

    ``pii_paths`` are dotted paths (``"persoon"``, ``"adres.postcode"``) or tuples of names, as
    returned by ``herstelbus.core.contracts.pii.pii_paths(schema)`` (used when ``pii_paths`` is None).
    A path inside a sealed sub-record is covered by that sub-record and dropped. Paths through arrays
    or maps are refused (fail closed: they could not be sealed field by field).
    """

    def __init__(
        self,
        schema: Any,
        pii_paths: Iterable[str | Sequence[str]] | None = None,
        *,
        fingerprint_bytes: bytes | None = None,
    ) -> None:
        if pii_paths is None:
            from ..contracts.pii import pii_paths as _from_contracts  # type: ignore[import-not-found]

            pii_paths = _from_contracts(schema)
        named: dict[str, Any] = {}
        parsed = fastavro.parse_schema(schema, named_schemas=named)
        self.fingerprint = fingerprint_bytes if fingerprint_bytes is not None else schema_fingerprint(schema)
        paths = list(dict.fromkeys(_normalise_path(p) for p in pii_paths))  # schema order, no duplicates
        # A path inside another tagged path is covered by the enclosing sealed unit.
        kept = [p for p in paths if not any(a != p and p[: len(a)] == a for a in paths)]
        if not kept:
            raise InvalidIdentifier("no_pii_fields")
        fields = []
        for p in kept:
            rec: Any = parsed
            ftype: Any = None
            for depth, name in enumerate(p):
                if rec is None:
                    raise InvalidIdentifier("bad_pii_path", path=".".join(p))
                match = [f for f in rec["fields"] if f["name"] == name]
                if not match:
                    raise InvalidIdentifier("bad_pii_path", path=".".join(p))
                ftype = match[0]["type"]
                if depth < len(p) - 1:
                    rec = _record_of(ftype, named)
            dotted = ".".join(p)
            aad_base = hz.lp_str(dotted) + hz.lp(self.fingerprint)
            fields.append(_PiiField(p, dotted, FieldCodec(ftype, named), aad_base, p[-1], len(p) == 1))
        self._fields = tuple(fields)
        self.paths: tuple[str, ...] = tuple(f.name for f in fields)
        self._tails: dict[bytes, tuple[bytes, ...]] = {}
        self._nonces = tuple(hz.field_nonce(i) for i in range(len(fields)))

    def _aad_tails(self, kid_lp: bytes) -> tuple[bytes, ...]:
        """Per key id: each field's static AAD tail lp(path) || lp(fingerprint) || lp(key_id)."""
        tails = self._tails.get(kid_lp)
        if tails is None:
            if len(self._tails) > 256:  # epochs come and go; keep the cache small
                self._tails.clear()
            tails = self._tails[kid_lp] = tuple(f.aad_base + kid_lp for f in self._fields)
        return tails

    def __repr__(self) -> str:
        return f"PiiLayout(paths={self.paths!r}, fingerprint={self.fingerprint.hex()})"


def schema_fingerprint(schema: Any) -> bytes:
    """CRC-64-AVRO of the Parsing Canonical Form, as the 8 bytes of the single-object header."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(fastavro.parse_schema(schema)), "CRC-64-AVRO"))


# ---- record walking ---------------------------------------------------------------------------


def _parent(root: dict, path: tuple[str, ...], copies: dict[tuple[str, ...], dict]) -> dict | None:
    """The (copied) mapping holding the last element of ``path``; None when an optional ancestor is
    null (then there is nothing to seal or open). Copies so the caller's record is never mutated."""
    node = root
    for i in range(1, len(path)):
        prefix = path[:i]
        nxt = copies.get(prefix)
        if nxt is None:
            try:
                child = node[path[i - 1]]
            except KeyError:
                raise RecordInvalid("missing_field", path=".".join(prefix)) from None
            if child is None:
                return None
            if not isinstance(child, Mapping):
                raise RecordInvalid("value_does_not_match_schema", path=".".join(prefix))
            nxt = copies[prefix] = dict(child)
            node[path[i - 1]] = nxt
        node = nxt
    return node


def _check_context(event_id: str, subject: str) -> None:
    if type(subject) is not str or not _SUBJECT.fullmatch(subject):
        raise InvalidIdentifier("subject_not_a_pseudonym")
    if type(event_id) is not str or not _EVENT_ID.fullmatch(event_id):
        raise InvalidIdentifier("bad_event_id")


# ---- seal -------------------------------------------------------------------------------------


def seal_event(
    record: Mapping[str, Any], *, layout: PiiLayout, epoch: SealingEpoch, event_id: str, subject: str
) -> SealedEvent:
    """Seal every personal-data field of ``record`` for ``epoch.gemeentecode``.

    ``subject`` is the pseudonym (``pseudonymise``) of the person the event is about; ``event_id``
    the id of the routed event. Returns the routed record (input untouched) and the key-store row.
    Raises ``RecordInvalid`` (missing/ill-typed personal data) rather than emit a partly sealed record.
    """
    return _seal(record, layout, epoch, event_id, subject, hz.SYSTEM_RNG)


def _seal(
    record: Mapping[str, Any], layout: PiiLayout, epoch: SealingEpoch, event_id: str, subject: str, rng: hz.Rng
) -> SealedEvent:
    _check_context(event_id, subject)
    ann = epoch.announcement
    # AADs are assembled from length-prefixed parts computed once per epoch / per event; the
    # result is byte-identical to hz.dek_aad / hz.event_aad_prefix (pinned by the test vectors).
    ctx = epoch._gm_lp + hz.lp_str(subject) + hz.lp_str(event_id)
    kid_lp = epoch._kid_lp
    rnd = rng(hz.KEY_LEN + hz.NONCE_LEN)  # one RNG call: DEK || DEK-wrap nonce
    dek = rnd[: hz.KEY_LEN]
    wrapped = epoch._wrap_dek(dek, rnd[hz.KEY_LEN :], hz.LABEL_DEK_AAD + ctx + kid_lp)
    aead = AESGCM(dek)
    prefix = hz.LABEL_FIELD_AAD + ctx
    heads = epoch._heads(len(layout._fields))  # version || key id || nonce, per field index
    nonces = layout._nonces
    tails = layout._aad_tails(kid_lp)
    encrypt = aead.encrypt
    out = dict(record)
    copies: dict[tuple[str, ...], dict] = {}
    f = None
    try:
        for i, f in enumerate(layout._fields):
            parent = out if f.top else _parent(out, f.path, copies)
            if parent is None:
                continue
            parent[f.key] = heads[i] + encrypt(nonces[i], f.codec._encode(parent[f.key]), prefix + tails[i])
    except RecordInvalid as e:
        raise RecordInvalid(e.reason, path=e.path or (f.name if f else None)) from None
    except KeyError:
        raise RecordInvalid("missing_field", path=f.name if f else None) from None
    except Exception:  # the codec's or Python's own errors may quote the value: never chain them
        raise RecordInvalid("value_does_not_match_schema", path=f.name if f else None) from None
    return SealedEvent(out, WrappedKey(ann.gemeentecode, subject, event_id, ann.kek_id, wrapped))


# ---- open -------------------------------------------------------------------------------------


def key_ref(sealed: Mapping[str, Any], *, layout: PiiLayout, gemeentecode: str, event_id: str, subject: str) -> KeyRef | None:
    """Which key-store row opens ``sealed`` (for batch fetching). None only when no personal-data
    field is present at all (every optional ancestor null): then there is nothing to open."""
    kid = _record_key_id(sealed, layout)
    return None if kid is None else KeyRef(gemeentecode, subject, event_id, kid)


def _record_key_id(sealed: Mapping[str, Any], layout: PiiLayout) -> str | None:
    kid: str | None = None
    for f in layout._fields:
        parent = _peek_parent(sealed, f.path)
        if parent is None:
            continue
        try:
            blob = parent[f.path[-1]]
        except KeyError:
            raise MalformedSealedField("missing_field", path=f.name) from None
        this, _, _ = _parse(blob, f.name)
        if kid is None:
            kid = this
        elif this != kid:
            raise Tampered("mixed_key_ids", path=f.name)
    return kid


def _parse(blob: Any, path: str) -> tuple[str, bytes, bytes]:
    try:
        return hz.parse_field(blob)
    except MalformedSealedField as e:
        raise MalformedSealedField(e.reason, path=path) from None


def _peek_parent(root: Mapping[str, Any], path: tuple[str, ...]) -> Mapping[str, Any] | None:
    node: Any = root
    for name in path[:-1]:
        try:
            node = node[name]
        except (KeyError, TypeError):
            raise MalformedSealedField("missing_field", path=".".join(path)) from None
        if node is None:
            return None
        if not isinstance(node, Mapping):
            raise MalformedSealedField("not_a_record", path=".".join(path))
    return node


def open_event(
    sealed: Mapping[str, Any],
    *,
    layout: PiiLayout,
    keyring: OpeningKeyring,
    event_id: str,
    subject: str,
    key: KeyLookup,
) -> dict[str, Any]:
    """Open a routed record at the gemeente that owns ``keyring``.

    ``key`` is what the key store answered for ``key_ref(...)``: the ``WrappedKey`` row, or a
    ``KeyRowState``. Raises ``SubjectErased``, ``KeyUnavailable``, ``UnknownKeyEpoch``, ``Tampered``,
    ``MalformedSealedField`` or ``ContextMismatch``; returns the record with every personal-data field
    decoded, never a partly opened one. The announcement for the record's epoch must have been added
    to ``keyring`` (which verified its signature).
    """
    if key is KeyRowState.ERASED:
        raise SubjectErased()
    if key is KeyRowState.UNREACHABLE:
        raise KeyUnavailable("keystore_unreachable")
    if key is KeyRowState.MISSING or not isinstance(key, WrappedKey):
        raise KeyUnavailable("key_row_missing")
    _check_context(event_id, subject)
    gm = keyring.gemeentecode
    if key.gemeentecode != gm or key.subject != subject or key.event_id != event_id:
        raise ContextMismatch("key_row_mismatch", key_id=key.key_id)
    kid = key.key_id
    kek = keyring._kek(kid)  # UnknownKeyEpoch / KeyUnavailable / Tampered; cached after the first
    ctx = keyring._gm_lp + hz.lp_str(subject) + hz.lp_str(event_id)
    kid_lp = hz.lp_str(kid)
    dek = hz.unwrap_dek(kek, key.wrapped, hz.LABEL_DEK_AAD + ctx + kid_lp)
    aead = AESGCM(dek)
    prefix = hz.LABEL_FIELD_AAD + ctx
    header = hz.field_header(kid)
    hlen = len(header)
    body = hlen + hz.NONCE_LEN
    minimum = body + hz.TAG_LEN
    tails = layout._aad_tails(kid_lp)
    decrypt = aead.decrypt
    out = dict(sealed)
    copies: dict[tuple[str, ...], dict] = {}
    for i, f in enumerate(layout._fields):
        if f.top:
            parent = out
        else:
            try:
                parent = _parent(out, f.path, copies)
            except RecordInvalid:
                raise MalformedSealedField("missing_field", path=f.name) from None
            if parent is None:
                continue
        blob = parent.get(f.key, _ABSENT)
        # A well-formed field under this row's key id starts with exactly this header; anything
        # else gets the precise reason from the slow path and is refused.
        if blob.__class__ is not bytes or len(blob) < minimum or not blob.startswith(header):
            if blob is _ABSENT:
                raise MalformedSealedField("missing_field", path=f.name)
            _parse(blob, f.name)
            raise Tampered("key_id_mismatch", path=f.name)
        try:
            plaintext = decrypt(blob[hlen:body], blob[body:], prefix + tails[i])
        except InvalidTag:
            raise Tampered(path=f.name) from None
        try:
            parent[f.key] = f.codec._decode(plaintext)
        except MalformedSealedField as e:
            raise MalformedSealedField(e.reason, path=f.name) from None
        except Exception:
            raise MalformedSealedField("bad_plaintext_encoding", path=f.name) from None
    return out
