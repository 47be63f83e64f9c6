"""Sealing and opening the personal data of one event (issue 4, properties 2, 3, 5, 7, 8).

Per event: the personal-data fields are taken out of the record as one *bundle* (the record
``contracts.pii.bundle_schema`` derives from the pii tags), encoded with fastavro, and sealed ONCE
with AES-256-GCM under a fresh random data key (DEK). The routed record keeps the clear fields and
gets the sealed bundle in ``verzegeld``; nulls are inside the bundle too, so even the presence of a
phone number or a toeslagpartner is hidden. The DEK is wrapped under the epoch's KEK and returned as
a ``WrappedKey`` row for the key store, never put in the record: deleting the row (erasure) makes
the record unreadable forever while every other subject still opens.

The AAD binds gemeentecode, subject pseudonym, event id, the field path, the source and bundle
schema fingerprints and the key id (FORMAT.md), so a bundle moved to another record, gemeente or
record type fails as ``Tampered``. Opening fails closed with a typed error and returns the whole
plain record or nothing.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, NamedTuple

import fastavro
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..contracts.pii import SEALED, bundle_schema
from ..contracts.schemas import fingerprint as schema_fingerprint
from . import _hazmat as hz
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

    record: dict[str, Any]  # the clear fields plus ``verzegeld``: the sealed bundle
    wrapped_key: WrappedKey  # for the key store, never for Kafka


# ---- the layout: which fields form the bundle, and its codec -------------------------------------


def _field_name(p: str | Sequence[str]) -> str:
    parts = (p,) if isinstance(p, str) else tuple(p)
    if not parts or not all(isinstance(x, str) and x for x in parts):
        raise InvalidIdentifier("bad_pii_path")
    return ".".join(parts)  # a dotted (nested) path is refused by bundle_schema


def _record_branch(ftype: Any, named: Mapping[str, Any]) -> str | None:
    """The full name of X in a (parsed) ``["null", X]`` field type whose X is a record, defined
    there or referenced by name; None otherwise."""
    if isinstance(ftype, list) and len(ftype) == 2 and "null" in ftype:
        branch = ftype[1 - ftype.index("null")]
        branch = named.get(branch) if isinstance(branch, str) else branch
        if isinstance(branch, dict) and branch.get("type") in ("record", "error"):
            return branch["name"]
    return None


class PiiLayout:
    """The personal-data bundle of one source schema version, compiled once and reused per event.

    ``pii_paths`` (top-level field names) defaults to the schema's ``"pii": true`` tags, as
    ``herstelbus.core.contracts.pii.pii_paths`` lists them. The bundle schema is
    ``contracts.pii.bundle_schema``, parsed once here; fastavro encodes and decodes it.
    """

    def __init__(self, schema: Any, pii_paths: Iterable[str | Sequence[str]] | None = None) -> None:
        names = None if pii_paths is None else list(dict.fromkeys(_field_name(p) for p in pii_paths))
        try:
            bundle = bundle_schema(schema, names)
        except (ValueError, KeyError, TypeError):  # nested, unknown or no fields: never seal half
            raise InvalidIdentifier("bad_pii_path") from None
        self.source_schema = schema
        self.bundle_schema = bundle
        self.fingerprint = schema_fingerprint(schema)  # the source's; the routed record's bron_schema
        self.fingerprint_hex = self.fingerprint.hex()
        self.bundle_fingerprint = schema_fingerprint(bundle)
        named: dict[str, Any] = {}
        self._parsed = fastavro.parse_schema(bundle, named_schemas=named)
        self.paths: tuple[str, ...] = tuple(f["name"] for f in bundle["fields"])
        self._pii = frozenset(self.paths)
        # Source order, so an opened record has the shape of the original event.
        self._order = tuple((f["name"], f["name"] in self._pii) for f in schema["fields"])
        self._names = tuple(n for n, _ in self._order)
        self._clear = frozenset(n for n, pii in self._order if not pii)
        # fastavro picks a union branch by validating the value against each branch, which for a
        # nullable record costs more than writing it; naming the branch (fastavro's documented
        # tuple notation) skips that. Only for ["null", record] fields at the bundle's top level:
        # the record writer still refuses a value without the record's fields.
        self._named_branches = tuple(
            (f["name"], name) for f in self._parsed["fields"] if (name := _record_branch(f["type"], named)) is not None
        )
        self._aad_tail = hz.sealed_aad_tail(SEALED, self.fingerprint, self.bundle_fingerprint)
        self._probes: tuple[tuple[str, Any], ...] | None = None

    def __repr__(self) -> str:
        return f"PiiLayout(paths={self.paths!r}, fingerprint={self.fingerprint_hex})"

    # -- codec ---------------------------------------------------------------------------------

    def _encode(self, record: Mapping[str, Any]) -> bytes:
        """fastavro schemaless encoding of the bundle taken from ``record``. A pii field missing
        from the record is an error, not a null: the sealer never guesses."""
        bundle = {n: record[n] for n in self.paths}
        for name, branch in self._named_branches:
            value = bundle[name]
            if value is not None:
                bundle[name] = (branch, value)
        out = BytesIO()  # per call: a shared buffer would race between threads sealing in parallel
        fastavro.schemaless_writer(out, self._parsed, bundle)
        return out.getvalue()

    def _decode(self, plaintext: bytes) -> dict[str, Any]:
        buf = BytesIO(plaintext)
        bundle = fastavro.schemaless_reader(buf, self._parsed, None)
        if buf.tell() != len(plaintext):
            raise MalformedSealedField("trailing_bytes", path=SEALED)
        return bundle

    def _why_not(self, record: Any) -> tuple[str, str | None]:
        """(reason, field) for a record ``_encode`` refused: each field encoded on its own through a
        one-field bundle of the same schema. Error path only; never looks at fastavro's message."""
        if not isinstance(record, Mapping):
            return "not_a_record", None
        missing = next((n for n in self.paths if n not in record), None)
        if missing is not None:
            return "missing_field", missing
        if self._probes is None:
            self._probes = tuple(
                (n, fastavro.parse_schema(bundle_schema(self.source_schema, [n]))) for n in self.paths
            )
        for name, probe in self._probes:
            try:
                fastavro.schemaless_writer(BytesIO(), probe, {name: record[name]})
            except Exception:
                return "value_does_not_match_schema", name
        return "value_does_not_match_schema", None

    # -- merging an opened bundle back ---------------------------------------------------------

    def _merge(self, sealed: Mapping[str, Any], bundle: Mapping[str, Any]) -> dict[str, Any]:
        """The routed record with the bundle's fields back in their source positions and
        ``verzegeld`` gone; routing metadata (subject, routering, ...) after the source fields. A
        clear field the routed record lacks (dropped by a later, compatible schema) stays absent."""
        if sealed.keys() >= self._clear:
            # Common case, all in C: the key order comes from the source, values from both parts.
            out = dict.fromkeys(self._names)
            out.update(sealed)
            out.update(bundle)
            del out[SEALED]
            return out
        out = {n: bundle[n] if pii else sealed[n] for n, pii in self._order if pii or n in sealed}
        out.update((k, v) for k, v in sealed.items() if k not in out and k != SEALED)
        return out


def _check_context(event_id: str, subject: str) -> None:
    if type(subject) is not str or not _SUBJECT.fullmatch(subject):
        raise InvalidIdentifier("subject_not_a_pseudonym")
    if type(event_id) is not str or not _EVENT_ID.fullmatch(event_id):
        raise InvalidIdentifier("bad_event_id")


# ---- seal -------------------------------------------------------------------------------------


def seal_event(
    record: Mapping[str, Any], *, layout: PiiLayout, epoch: SealingEpoch, event_id: str, subject: str
) -> SealedEvent:
    """Seal the personal data of ``record`` for ``epoch.gemeentecode``.

    ``subject`` is the pseudonym (``pseudonymise``) of the person the event is about; ``event_id``
    the id of the routed event. Returns the record's clear fields plus ``verzegeld`` (input
    untouched; the router adds the routing metadata) and the key-store row. Raises ``RecordInvalid``
    (a personal-data field missing or not matching its schema) rather than seal part of it.
    """
    return _seal(record, layout, epoch, event_id, subject, hz.SYSTEM_RNG)


def _seal(
    record: Mapping[str, Any], layout: PiiLayout, epoch: SealingEpoch, event_id: str, subject: str, rng: hz.Rng
) -> SealedEvent:
    _check_context(event_id, subject)
    try:
        plaintext = layout._encode(record)
    except Exception:  # fastavro's and Python's messages may quote the value: never chain them
        reason, path = layout._why_not(record)
        raise RecordInvalid(reason, path=path) from None
    ann = epoch.announcement
    event_ctx = hz.sealed_aad_event(subject, event_id)
    kid_lp = epoch._kid_lp
    rnd = rng(hz.KEY_LEN + 2 * hz.NONCE_LEN)  # one RNG call: DEK || DEK-wrap nonce || bundle nonce
    dek, wrap_nonce, nonce = rnd[: hz.KEY_LEN], rnd[hz.KEY_LEN : -hz.NONCE_LEN], rnd[-hz.NONCE_LEN :]
    wrapped = epoch._wrap_dek(dek, wrap_nonce, hz.LABEL_DEK_AAD + epoch._gm_lp + event_ctx + kid_lp)
    aad = epoch._aad_head + event_ctx + layout._aad_tail + kid_lp
    blob = epoch._header + nonce + AESGCM(dek).encrypt(nonce, plaintext, aad)
    out = dict(record)  # the caller's record stays untouched
    for name in layout.paths:  # all present: _encode read each one
        del out[name]
    out[SEALED] = blob
    return SealedEvent(out, WrappedKey(ann.gemeentecode, subject, event_id, ann.kek_id, wrapped))


# ---- open -------------------------------------------------------------------------------------


def _sealed_blob(sealed: Mapping[str, Any]) -> Any:
    blob = sealed.get(SEALED, _ABSENT)
    if blob is _ABSENT:
        raise MalformedSealedField("missing_field", path=SEALED)
    return blob


def _parse(blob: Any) -> tuple[str, bytes, bytes]:
    try:
        return hz.parse_sealed(blob)
    except MalformedSealedField as e:
        raise MalformedSealedField(e.reason, path=SEALED) from None


def key_ref(sealed: Mapping[str, Any], *, layout: PiiLayout, gemeentecode: str, event_id: str, subject: str) -> KeyRef:
    """Which key-store row opens ``sealed`` (for batch fetching): the key id comes from the sealed
    bundle's header. ``MalformedSealedField`` when there is no well-formed bundle."""
    kid, _, _ = _parse(_sealed_blob(sealed))
    return KeyRef(gemeentecode, subject, event_id, kid)


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

    ``layout`` is the one for the record's source schema (its ``bron_schema``); ``key`` is what the
    key store answered for ``key_ref(...)``: the ``WrappedKey`` row, or a ``KeyRowState``. Returns
    the full plain record: the clear fields and the opened personal data in their source positions,
    then the routing metadata. Raises ``SubjectErased``, ``KeyUnavailable``, ``UnknownKeyEpoch``,
    ``Tampered``, ``MalformedSealedField`` or ``ContextMismatch``; never a partly opened record. The
    announcement for the record's epoch must have been added to ``keyring`` (which verified its
    signature), so nothing is decrypted under a key the exchange did not sign.
    """
    if key is KeyRowState.ERASED:
        raise SubjectErased()
    if key is KeyRowState.UNREACHABLE:
        raise KeyUnavailable("keystore_unreachable")
    if key is KeyRowState.MISSING or not isinstance(key, WrappedKey):
        raise KeyUnavailable("key_row_missing")
    _check_context(event_id, subject)
    if key.gemeentecode != keyring.gemeentecode or key.subject != subject or key.event_id != event_id:
        raise ContextMismatch("key_row_mismatch", key_id=key.key_id)
    if sealed.get("bron_schema", layout.fingerprint_hex) != layout.fingerprint_hex:
        raise ContextMismatch("schema_mismatch")  # the caller picked the layout of another schema
    if not layout._pii.isdisjoint(sealed):  # plaintext personal data where only the bundle belongs
        raise MalformedSealedField("plaintext_in_record", path=next(p for p in layout.paths if p in sealed))
    # KEK first: UnknownKeyEpoch / KeyUnavailable / Tampered; only verified epochs are known here.
    kek, header, kid_lp = keyring._opening_keys(key.key_id)
    blob = _sealed_blob(sealed)
    start = len(header) + hz.NONCE_LEN
    # A well-formed bundle under this row's key id starts with exactly this header; anything else
    # gets the precise reason from the parser and is refused.
    if blob.__class__ is not bytes or len(blob) < start + hz.TAG_LEN or not blob.startswith(header):
        _parse(blob)
        raise Tampered("key_id_mismatch", path=SEALED)
    event_ctx = hz.sealed_aad_event(subject, event_id)
    dek = hz.unwrap_dek(kek, key.wrapped, hz.LABEL_DEK_AAD + keyring._gm_lp + event_ctx + kid_lp)
    try:
        plaintext = AESGCM(dek).decrypt(
            blob[len(header) : start], blob[start:], keyring._aad_head + event_ctx + layout._aad_tail + kid_lp
        )
    except InvalidTag:
        raise Tampered(path=SEALED) from None
    try:
        bundle = layout._decode(plaintext)
    except MalformedSealedField:
        raise
    except Exception:  # authentic bytes that are not one bundle value: a sealer bug, refused
        raise MalformedSealedField("bad_plaintext_encoding", path=SEALED) from None
    return layout._merge(sealed, bundle)
