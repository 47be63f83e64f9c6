"""Validation of records against the contracts: shape, formats, plausibility, cross-field rules.

Style: ``validate`` *returns* a list of ``ValidationError`` (empty = valid) and never raises for
bad input; ``check`` raises one ``InvalidEvent`` holding them all. The rules that belong to a
single field live in the schema as attributes (``format``, ``maxLength``, ``minimum``,
``maximum``, ``maxItems``) so every consumer reads the same contract; rules spanning fields
(reden for STOP/GEWEIGERD, dates against occurred_at) live here.

Two value forms are walked by the same code:
  record form - what ``decode`` returns: date, aware datetime (UTC), uuid.UUID (str accepted)
  JSON form   - what JSON Lines carries: "YYYY-MM-DD", RFC 3339 UTC, UUID string, base64 bytes;
                converted into record form while walking (see jsonlines.py).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import unicodedata
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

from fastavro import schemaless_writer

from herstelbus.core.bsn import BSN_IN_TEXT, is_valid_bsn

from . import errors as E
from .catalogue import Catalogue, SchemaEntry, get_catalogue
from .errors import InvalidEvent, ValidationError
from .schemas import logical_type

MAX_EVENT_BYTES = 64 * 1024
DEFAULT_MAX_STRING = 4096  # fields without maxLength still have a ceiling
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1

# The hersteloperatie started in 2020; nothing the exchange carries happened before 2019.
EARLIEST_EVENT = datetime(2019, 1, 1, tzinfo=timezone.utc)
CLOCK_SKEW = timedelta(hours=1)  # "no event far in the future": a clock may run a little ahead
EARLIEST_BIRTH = date(1900, 1, 1)
EARLIEST_CASE_DATE = date(2019, 1, 1)
# A Dutch calendar date may be one day ahead of the UTC occurred_at (23:30Z is tomorrow in NL).
DATE_SLACK = timedelta(days=1)
# Per date field: (earliest, days it may lie after the event's date).
DATE_RULES: dict[str, tuple[date, int]] = {
    "geboortedatum": (EARLIEST_BIRTH, 0),
    "aanmelddatum": (EARLIEST_CASE_DATE, 0),
    "besluitdatum": (EARLIEST_CASE_DATE, 0),
    "ingangsdatum": (EARLIEST_CASE_DATE, 366),  # a pause may be announced ahead of its start
}

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
TIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(?:[Zz]|\+00:00)"
)
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SAFE_KEY = re.compile(r"[a-z][a-z0-9_]{0,47}")


def safe_key(key: object) -> str:
    """An input key fit for an error path: contract-style names only, anything else is '*'.

    Keys are input too; a key that is a BSN or an e-mail address must not reach an error.
    """
    if isinstance(key, str) and _SAFE_KEY.fullmatch(key) and not BSN_IN_TEXT.search(key):
        return key
    return "*"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# --- string formats -----------------------------------------------------------------------

_GEMEENTECODE = re.compile(r"GM[0-9]{4}")
# PostNL never issues the letter pairs SA, SD and SS (wartime connotations): they do not exist.
_POSTCODE = re.compile(r"[1-9][0-9]{3} ?(?!SA|SD|SS)[A-Z]{2}")
_HUISLETTER = re.compile(r"[A-Za-z]")
_TOEVOEGING = re.compile(r"[A-Za-z0-9]{1,4}")  # BAG huisnummertoevoeging: at most 4 characters
# 0/00/+ then at least 10 digits in all: a bare 9-digit number (a BSN?) is never a phone number.
_TELEFOON = re.compile(r"(?:\+|00|0)[ -]?[1-9](?:[ -]?[0-9]){8,13}")
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_DOSSIERNUMMER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,39}")
_KENMERK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/ -]{0,59}")
_REDENCODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_VELDPAD = re.compile(r"[A-Za-z0-9_.*]{0,200}")
_NAAMCODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_PSEUDONIEM = re.compile(r"[A-Za-z0-9._:~+/=-]{16,128}")
_FINGERPRINT = re.compile(r"[0-9a-f]{16}")
_TELLING_KEY = re.compile(r"[a-z][a-z0-9_.]{0,63}")
_NAME_PUNCT = frozenset(" -'.,\u2019\u2018")
# Personal data that must not appear in free text: e-mail, postcode, Dutch phone number.
_EMAIL_IN_TEXT = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
_POSTCODE_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])[1-9][0-9]{3} ?[A-Z]{2}(?![0-9A-Za-z])")
_PHONE_IN_TEXT = re.compile(r"(?:\+31|0031|(?<![0-9])0)[ -]?[1-9](?:[ -]?[0-9]){7,8}(?![0-9])")


def _is_name(s: str) -> bool:
    return all(c in _NAME_PUNCT or unicodedata.category(c)[0] in "LM" for c in s)


def _free_text_has_personal_data(s: str) -> bool:
    if any(is_valid_bsn(m.group(0)) for m in BSN_IN_TEXT.finditer(s) if m.group(0).isascii()):
        return True
    return bool(
        _EMAIL_IN_TEXT.search(s) or _POSTCODE_IN_TEXT.search(s) or _PHONE_IN_TEXT.search(s)
    )


def _fmt(rx: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda s: rx.fullmatch(s) is not None


FORMATS: dict[str, Callable[[str], bool]] = {
    "bsn": lambda s: s.isascii() and is_valid_bsn(s),  # \d in is_valid_bsn also takes non-ASCII digits
    "gemeentecode": _fmt(_GEMEENTECODE),
    "postcode": _fmt(_POSTCODE),
    "huisletter": _fmt(_HUISLETTER),
    "toevoeging": _fmt(_TOEVOEGING),
    "telefoon": _fmt(_TELEFOON),
    "email": _fmt(_EMAIL),
    "dossiernummer": _fmt(_DOSSIERNUMMER),
    "kenmerk": _fmt(_KENMERK),
    "redencode": _fmt(_REDENCODE),
    "veldpad": _fmt(_VELDPAD),
    "naamcode": _fmt(_NAAMCODE),
    "topic": _fmt(_TOPIC),
    "pseudoniem": lambda s: _PSEUDONIEM.fullmatch(s) is not None and not s.isdigit(),
    "fingerprint": _fmt(_FINGERPRINT),
    "naam": _is_name,
    "tekst": lambda s: True,
    "vrije_tekst": lambda s: True,  # checked separately: PERSOONSGEGEVENS_IN_TEKST
}


def _format_reason(fmt: str) -> str:
    return f"{fmt.upper()}_ONGELDIG"


_BAD_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # controls; lone surrogates (not UTF-8)
_BAD_FREE_TEXT_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _bad_chars(s: str, free_text: bool) -> bool:
    return (_BAD_FREE_TEXT_CHARS if free_text else _BAD_CHARS).search(s) is not None


# --- the walker ---------------------------------------------------------------------------


class _Walk:
    """Walks an expanded schema and a value, collecting errors; returns the record-form value.

    ``json``: the value is in JSON form and is converted. ``rules``: also apply field rules
    (formats, lengths, ranges); off for the shape-only check that guards ``encode``.
    """

    def __init__(self, *, json: bool, rules: bool) -> None:
        self.json = json
        self.rules = rules
        self.errors: list[ValidationError] = []

    def err(self, reason: str, path: str) -> None:
        self.errors.append(ValidationError(reason, path))

    def record(self, node: dict[str, Any], value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            self.err(E.TYPE_ONGELDIG, path)
            return None
        for key in getattr(value, "duplicates", ()):
            self.err(E.VELD_DUBBEL, _join(path, safe_key(key)))
        known = {f["name"] for f in node["fields"]}
        for key in value:
            if key not in known:
                self.err(E.VELD_ONBEKEND, _join(path, safe_key(key)))
        out: dict[str, Any] = {}
        for f in node["fields"]:
            fpath = _join(path, f["name"])
            if f["name"] not in value:
                # Nullable fields too must be present: the contract says "required to exist".
                self.err(E.VELD_ONTBREEKT, fpath)
                continue
            ok, v = self.typed(f["type"], value[f["name"]], fpath, f)
            if ok:
                out[f["name"]] = v
        return out

    def typed(self, node: Any, value: Any, path: str, field: dict[str, Any]) -> tuple[bool, Any]:
        """(converted ok, value). Errors are recorded; ok=False keeps bad parts out of ``out``."""
        before = len(self.errors)
        v = self._typed(node, value, path, field)
        return len(self.errors) == before, v

    def _typed(self, node: Any, value: Any, path: str, field: dict[str, Any]) -> Any:
        if isinstance(node, list):
            if value is None:
                if "null" not in node:
                    self.err(E.NULL_NIET_TOEGESTAAN, path)
                return None
            branches = [b for b in node if b != "null"]
            if len(branches) != 1:  # the contracts only use ["null", T]
                self.err(E.TYPE_ONGELDIG, path)
                return None
            return self._typed(branches[0], value, path, field)
        if value is None and node != "null":
            self.err(E.NULL_NIET_TOEGESTAAN, path)
            return None
        if isinstance(node, str):
            return self.primitive(node, None, value, path, field)
        kind = node["type"]
        if isinstance(kind, (dict, list)):
            return self._typed(kind, value, path, field)
        if kind == "record":
            return self.record(node, value, path)
        if kind == "enum":
            if not isinstance(value, str) or value not in node["symbols"]:
                self.err(E.ENUM_ONGELDIG, path)
            return value
        if kind == "array":
            if not isinstance(value, list):
                self.err(E.TYPE_ONGELDIG, path)
                return None
            if len(value) > field.get("maxItems", 10_000):
                self.err(E.TE_VEEL, path)
                return None
            item_field = {"name": field.get("name", "")}
            return [self._typed(node["items"], v, _join(path, str(i)), item_field)
                    for i, v in enumerate(value)]
        if kind == "map":
            if not isinstance(value, dict):
                self.err(E.TYPE_ONGELDIG, path)
                return None
            if len(value) > field.get("maxItems", 10_000):
                self.err(E.TE_VEEL, path)
                return None
            for key in getattr(value, "duplicates", ()):
                self.err(E.VELD_DUBBEL, _join(path, safe_key(key)))
            out = {}
            tellingen = field.get("format") == "tellingen"
            for k, v in value.items():
                kpath = _join(path, safe_key(k))
                if not isinstance(k, str) or (self.rules and tellingen and not _TELLING_KEY.fullmatch(k)):
                    self.err(E.VELD_ONBEKEND, kpath)
                    continue
                item = self._typed(node["values"], v, kpath, {"name": k})
                if self.rules and tellingen and isinstance(item, int) and item < 0:
                    self.err(E.BUITEN_BEREIK, kpath)
                out[k] = item
            return out
        return self.primitive(kind, logical_type(node), value, path, field)

    # primitives with their logical types

    def primitive(self, kind: str, logical: str | None, value: Any, path: str, field: dict[str, Any]) -> Any:
        if kind == "null":
            return None
        if kind == "boolean":
            if not isinstance(value, bool):
                self.err(E.TYPE_ONGELDIG, path)
            return value
        if kind in ("int", "long"):
            if logical == "date":
                return self.date(value, path)
            if logical in ("timestamp-millis", "timestamp-micros"):
                return self.timestamp(value, path)
            if not isinstance(value, int) or isinstance(value, bool):
                self.err(E.TYPE_ONGELDIG, path)
                return None
            lo, hi = (INT_MIN, INT_MAX) if kind == "int" else (LONG_MIN, LONG_MAX)
            lo = max(lo, field.get("minimum", lo)) if self.rules else lo
            hi = min(hi, field.get("maximum", hi)) if self.rules else hi
            if not lo <= value <= hi:
                self.err(E.BUITEN_BEREIK, path)
            return value
        if kind in ("float", "double"):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                self.err(E.TYPE_ONGELDIG, path)
            return value
        if kind == "bytes":
            if self.json:
                if not isinstance(value, str):
                    self.err(E.TYPE_ONGELDIG, path)
                    return None
                try:
                    return base64.b64decode(value.encode("ascii"), validate=True)
                except (binascii.Error, ValueError, UnicodeEncodeError):
                    pass  # base64 error texts are harmless, but stay uniform: no chained errors
                self.err(E.TYPE_ONGELDIG, path)
                return None
            if not isinstance(value, (bytes, bytearray)):
                self.err(E.TYPE_ONGELDIG, path)
            return value
        if kind == "string":
            if logical == "uuid":
                return self.uuid(value, path)
            return self.string(value, path, field)
        self.err(E.TYPE_ONGELDIG, path)
        return None

    def string(self, value: Any, path: str, field: dict[str, Any]) -> Any:
        if not isinstance(value, str):
            self.err(E.TYPE_ONGELDIG, path)
            return None
        fmt = field.get("format")
        free = fmt == "vrije_tekst"
        if _bad_chars(value, free):
            self.err(E.TEKEN_ONGELDIG, path)
            return value
        if not self.rules:
            return value
        if value == "":
            self.err(E.LEEG, path)
        elif len(value) > field.get("maxLength", DEFAULT_MAX_STRING):
            self.err(E.TE_LANG, path)
        elif fmt in FORMATS and not FORMATS[fmt](value):
            self.err(_format_reason(fmt), path)
        elif free and _free_text_has_personal_data(value):
            self.err(E.PERSOONSGEGEVENS_IN_TEKST, path)
        return value

    def uuid(self, value: Any, path: str) -> Any:
        if isinstance(value, uuid.UUID):
            u = value
        elif isinstance(value, str) and _UUID_RE.fullmatch(value):
            u = uuid.UUID(value)
        else:
            self.err(E.UUID_ONGELDIG if isinstance(value, str) else E.TYPE_ONGELDIG, path)
            return None
        if self.rules and u.int == 0:
            self.err(E.UUID_ONGELDIG, path)
        return u if self.json else value

    def date(self, value: Any, path: str) -> Any:
        if self.json:
            m = _DATE_RE.fullmatch(value) if isinstance(value, str) else None
            if m is None:
                self.err(E.DATUM_ONGELDIG if isinstance(value, str) else E.TYPE_ONGELDIG, path)
                return None
            try:
                return date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                pass
            self.err(E.DATUM_ONGELDIG, path)
            return None
        if not isinstance(value, date) or isinstance(value, datetime):
            self.err(E.TYPE_ONGELDIG, path)
        return value

    def timestamp(self, value: Any, path: str) -> Any:
        if self.json:
            m = TIME_RE.fullmatch(value) if isinstance(value, str) else None
            if m is None:
                self.err(E.TIJD_ONGELDIG if isinstance(value, str) else E.TYPE_ONGELDIG, path)
                return None
            millis = int((m[7] or "0").ljust(3, "0")[:3])  # millisecond precision on the wire
            try:
                return datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]),
                                millis * 1000, tzinfo=_UTC)
            except ValueError:
                pass
            self.err(E.TIJD_ONGELDIG, path)
            return None
        if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
            self.err(E.TIJD_ONGELDIG if isinstance(value, datetime) else E.TYPE_ONGELDIG, path)
        return value


# --- cross-field rules --------------------------------------------------------------------


def _get(record: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(record, dict):
            return None
        record = record.get(part)
    return record


def _plausibility(entry: SchemaEntry, record: dict[str, Any], now: datetime, out: list[ValidationError]) -> None:
    latest = now + CLOCK_SKEW
    occurred = record.get("occurred_at")
    if isinstance(occurred, datetime) and occurred.tzinfo is not None:
        ref = min(occurred, latest).astimezone(_UTC).date()
    else:
        ref = latest.astimezone(_UTC).date()

    def walk(node: dict[str, Any], value: Any, path: str) -> None:
        if not isinstance(value, dict):
            return
        for f in node["fields"]:
            v = value.get(f["name"])
            fpath = _join(path, f["name"])
            inner = f["type"]
            if isinstance(inner, list):
                inner = next((b for b in inner if b != "null"), "null")
            if isinstance(inner, dict) and isinstance(inner.get("type"), dict):
                inner = inner["type"]
            lt = logical_type(inner)
            if lt in ("timestamp-millis", "timestamp-micros") and isinstance(v, datetime) and v.tzinfo:
                if not EARLIEST_EVENT <= v <= latest:
                    out.append(ValidationError(E.TIJD_ONAANNEMELIJK, fpath))
            elif lt == "date" and isinstance(v, date) and not isinstance(v, datetime):
                earliest, ahead = DATE_RULES.get(f["name"], (EARLIEST_BIRTH, 366))
                if not earliest <= v <= ref + DATE_SLACK + timedelta(days=ahead):
                    out.append(ValidationError(E.DATUM_ONAANNEMELIJK, fpath))
            elif isinstance(inner, dict) and inner.get("type") == "record":
                walk(inner, v, fpath)

    walk(entry.expanded, record, "")


def _reden_rule(record: dict[str, Any], when: Callable[[Any], bool], field: str, path: str,
                out: list[ValidationError], *, forbid_otherwise: bool = True) -> None:
    if field not in record:
        return
    needed = when(record)
    present = record.get(field) is not None
    if needed and not present:
        out.append(ValidationError(E.REDEN_VERPLICHT, path))
    elif forbid_otherwise and present and not needed:
        out.append(ValidationError(E.REDEN_NIET_TOEGESTAAN, path))


def _cross_field(record_type: str, record: dict[str, Any], out: list[ValidationError]) -> None:
    if record_type == "pauzeknop" and "actie" in record:
        # The reasons (kwijtschelding, definitief niet gedupeerd) end a pause; a START has none.
        _reden_rule(record, lambda r: r.get("actie") == "STOP", "reden", "reden", out)
    elif record_type == "ontvangstbevestiging" and "status" in record:
        _reden_rule(record, lambda r: r.get("status") == "GEWEIGERD", "reden", "reden", out)
    elif record_type == "overdracht":
        urg = record.get("urgentie")
        if isinstance(urg, dict) and urg.get("urgent") is False and urg.get("reden") is not None:
            out.append(ValidationError(E.REDEN_NIET_TOEGESTAAN, "urgentie.reden"))
        p_bsn, t_bsn = _get(record, "persoon.bsn"), _get(record, "toeslagpartner.bsn")
        if isinstance(p_bsn, str) and p_bsn == t_bsn:
            out.append(ValidationError(E.TOESLAGPARTNER_GELIJK, "toeslagpartner.bsn"))
    elif record_type == "statusbericht" and "status" in record:
        status = record.get("status")
        needs_reden = ("INVALID", "UNROUTABLE", "DUPLICATE", "HELD", "GEWEIGERD", "OVERDUE")
        _reden_rule(record, lambda r: status in needs_reden, "reden", "reden", out, forbid_otherwise=False)
        if status in ("ONTVANGEN", "VERWERKT", "GEWEIGERD") and record.get("ack_id") is None and "ack_id" in record:
            out.append(ValidationError(E.VELD_ONTBREEKT, "ack_id"))
        if status in ("ONTVANGEN", "VERWERKT", "GEWEIGERD", "OVERDUE") \
                and record.get("gemeentecode") is None and "gemeentecode" in record:
            out.append(ValidationError(E.VELD_ONTBREEKT, "gemeentecode"))
        # Only unreadable input may lack an event id; a ROUTED receipt names where it went.
        if status != "INVALID" and record.get("event_id") is None and "event_id" in record:
            out.append(ValidationError(E.VELD_ONTBREEKT, "event_id"))
        if status == "ROUTED" and "doelen" in record and not record.get("doelen"):
            out.append(ValidationError(E.VELD_ONTBREEKT, "doelen"))
    if record_type.startswith("gerouteerde_"):
        rout = record.get("routering")
        if isinstance(rout, dict) and rout.get("reden") == "HERINDELING" \
                and "opvolger_gemeentecode" in rout and rout.get("opvolger_gemeentecode") is None:
            out.append(ValidationError(E.VELD_ONTBREEKT, "routering.opvolger_gemeentecode"))


def _max_size(node: Any, field: dict[str, Any] | None = None) -> int | None:
    """Upper bound of the Avro body size of a value of ``node``; None when unbounded."""
    field = field or {}
    if isinstance(node, list):
        sizes = [_max_size(b, field) for b in node]
        return None if None in sizes else 10 + max(sizes)  # type: ignore[type-var]
    if isinstance(node, str):
        if node == "string":
            limit = min(field.get("maxLength", DEFAULT_MAX_STRING),
                        _FORMAT_MAX_LENGTH.get(field.get("format"), DEFAULT_MAX_STRING))
            return 10 + 4 * limit  # UTF-8: at most 4 bytes a character
        return {"null": 0, "boolean": 1, "int": 5, "long": 10, "float": 4, "double": 8}.get(node)
    kind = node["type"]
    if isinstance(kind, (dict, list)):
        return _max_size(kind, field)
    if kind == "record":
        sizes = [_max_size(f["type"], f) for f in node["fields"]]
        return None if None in sizes else sum(sizes)  # type: ignore[arg-type]
    if kind == "enum":
        return 5
    if logical_type(node) == "uuid":
        return 10 + 36
    if kind in ("int", "long", "string"):
        return _max_size(kind, field)
    return None  # bytes, arrays, maps: no static bound


# Lengths the format regexes imply (used only for the size bound, never to accept a value).
_FORMAT_MAX_LENGTH = {"bsn": 9, "gemeentecode": 6, "postcode": 7, "huisletter": 1, "toevoeging": 4,
                      "telefoon": 40, "fingerprint": 16}
_BOUNDED: dict[str, bool] = {}


def _statically_small(entry: SchemaEntry) -> bool:
    """True when no record of this schema can exceed the limit, so encoding to measure is moot."""
    key = entry.fingerprint.hex() + entry.name
    if key not in _BOUNDED:
        bound = _max_size(entry.expanded)
        _BOUNDED[key] = bound is not None and bound + 10 <= MAX_EVENT_BYTES
    return _BOUNDED[key]


def encoded_size(entry: SchemaEntry, record: dict[str, Any]) -> int | None:
    """Avro body size in bytes, or None when fastavro cannot write the record."""
    buf = io.BytesIO()
    try:
        schemaless_writer(buf, entry.parsed, record, strict=True)
    except Exception:  # noqa: BLE001 - shape problems are reported by the walker instead
        return None
    return buf.tell() + 10  # + marker and fingerprint: the size on the wire


# --- public API ---------------------------------------------------------------------------


def structural_errors(entry: SchemaEntry, record: Any) -> list[ValidationError]:
    """Shape-only check of a record-form value (types, fields, enums, nulls): guards ``encode``."""
    w = _Walk(json=False, rules=False)
    w.record(entry.expanded, record, "")
    return w.errors


def _semantic(entry: SchemaEntry, record_type: str, record: dict[str, Any], now: datetime | None,
              errors: list[ValidationError], *, check_size: bool) -> None:
    now = now or datetime.now(_UTC)
    _plausibility(entry, record, now, errors)
    _cross_field(record_type, record, errors)
    # A dead letter wraps a whole (possibly oversized) input; every other record obeys the limit.
    if check_size and not errors and record_type != "deadletter" and not _statically_small(entry):
        size = encoded_size(entry, record)
        if size is not None and size > MAX_EVENT_BYTES:
            errors.append(ValidationError(E.TE_GROOT, ""))


def validate(record_type: str, record: Any, *, now: datetime | None = None,
             catalogue: Catalogue | None = None) -> list[ValidationError]:
    """Every rule ``record`` (record form) breaks for ``record_type``; empty when valid.

    Never raises for bad input: an unknown type gives ``[ValidationError(TYPE_ONBEKEND, "type")]``.
    ``now`` (aware) pins the clock for the plausibility rules; default: the current time.
    """
    cat = catalogue or get_catalogue()
    if not isinstance(record_type, str) or record_type not in cat.types():
        return [ValidationError(E.TYPE_ONBEKEND, "type")]
    entry = cat.current(record_type)
    w = _Walk(json=False, rules=True)
    w.record(entry.expanded, record, "")
    errors = w.errors
    if isinstance(record, dict):
        _semantic(entry, record_type, record, now, errors, check_size=True)
    return errors


def check(record_type: str, record: Any, *, now: datetime | None = None,
          catalogue: Catalogue | None = None) -> None:
    """Raise ``InvalidEvent`` (all errors inside) unless ``validate`` finds nothing."""
    errors = validate(record_type, record, now=now, catalogue=catalogue)
    if errors:
        raise InvalidEvent(errors)


def from_json(record_type: str, obj: Any, *, now: datetime | None = None,
              catalogue: Catalogue | None = None) -> tuple[dict[str, Any], list[ValidationError]]:
    """Convert a JSON-form object to record form and validate it: (record, errors)."""
    cat = catalogue or get_catalogue()
    if not isinstance(record_type, str) or record_type not in cat.types():
        return {}, [ValidationError(E.TYPE_ONBEKEND, "type")]
    entry = cat.current(record_type)
    w = _Walk(json=True, rules=True)
    record = w.record(entry.expanded, obj, "")
    errors = w.errors
    if isinstance(record, dict):
        _semantic(entry, record_type, record, now, errors, check_size=not errors)
    return (record if isinstance(record, dict) else {}), errors
