"""A UHT event file (JSON Lines or CSV) read, validated and reported: the pure half of
``herstelbus uht publish``. No Kafka here; the command publishes what :func:`geldige` yields.

JSON Lines: one event per line in the contract's JSON form with its ``type`` key, as
``herstelbus uht generate`` writes. CSV: a header row with the same names, nested fields flattened
with dots (``persoon.bsn``, ``adres.postcode``), a ``type`` column, an empty cell is null; a nested
record whose cells are all empty is null (``adres`` of a VOW parent); a column may be left out
where the field may be null; one file may mix the three types (empty cells in another type's
columns are ignored).

Reading happens twice (validate everything, then publish) instead of keeping every record in
memory: a file can hold all of UHT's ~300,000 events. Both passes use the same ``now`` so the
plausibility checks cannot flip in between.

The report holds counts, line numbers, reason codes and field paths; never a value.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from herstelbus.core import contracts
from herstelbus.core.contracts.jsonlines import TYPE_KEY, loads
from herstelbus.core.contracts.schemas import type_name, unwrap_nullable
from herstelbus.core.contracts.validation import safe_key
from herstelbus.errors import HerstelbusError

UHT_TYPES = ("overdracht", "pauzeknop", "erkenning")  # what UHT publishes; acks come from gemeenten
TYPE_NIET_VAN_UHT = "TYPE_NIET_VAN_UHT"
EVENT_ID_HERGEBRUIKT = "EVENT_ID_HERGEBRUIKT"  # same event_id, other content: which one is meant?
KOLOMMEN_ONGELDIG = "KOLOMMEN_ONGELDIG"  # a CSV row with more or fewer cells than the header
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}

Progress = Callable[[int], None]  # bytes consumed since the last call


@dataclass(frozen=True)
class Afwijzing:
    """A rejected line: its number and every (reason, path) it broke."""

    regel: int
    fouten: tuple[tuple[str, str], ...]


@dataclass
class Rapport:
    bestand: str
    formaat: str
    now: datetime  # the moment both passes judge plausibility against
    gelezen: int = 0  # events read (blank lines do not count)
    per_type: Counter = field(default_factory=Counter)  # valid, unique events
    afgewezen: list[Afwijzing] = field(default_factory=list)
    dubbel: list[tuple[int, int]] = field(default_factory=list)  # (line, line of its first occurrence)
    te_publiceren: set[int] = field(default_factory=set)  # line numbers of what gets published

    @property
    def geldig(self) -> int:
        return sum(self.per_type.values())

    @property
    def alles_geldig(self) -> bool:
        return not self.afgewezen

    def regels(self) -> list[str]:
        kind = "JSON Lines" if self.formaat == "jsonl" else "CSV"
        per_type = ", ".join(f"{t} {self.per_type[t]}" for t in UHT_TYPES if self.per_type[t])
        out = [f"{self.bestand} ({kind}): {self.gelezen} events read",
               f"  valid      {self.geldig:>7}" + (f"   ({per_type})" if per_type else ""),
               f"  duplicate  {len(self.dubbel):>7}   (same event_id and content as an earlier line: "
               "published once)",
               f"  rejected   {len(self.afgewezen):>7}"]
        if self.afgewezen:
            reasons = Counter(r for a in self.afgewezen for r in {reason for reason, _ in a.fouten})
            out.append("rejected lines (reason at field; no values shown) — by reason: "
                       + ", ".join(f"{r} {c}" for r, c in reasons.most_common()))
            out.extend(f"  line {a.regel}: " + "; ".join(f"{r} at {p}" if p else r for r, p in a.fouten)
                       for a in self.afgewezen)
        if self.dubbel:
            out.append("duplicate lines (not published again):")
            out.extend(f"  line {line}: same event as line {first}" for line, first in self.dubbel)
        return out


def formaat_van(path: Path) -> str:
    """'jsonl' or 'csv' by the file's suffix; a one-line error for anything else."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise HerstelbusError(f"{path}: expected a JSON Lines (.jsonl, .ndjson) or CSV (.csv) file")
    if not path.is_file():
        raise HerstelbusError(f"{path}: no such file")
    return fmt


def _lines(path: Path, progress: Progress | None) -> Iterator[tuple[int, str]]:
    """(line number, text) of every physical line, decoded strictly as UTF-8 (a BOM is skipped)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        with path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    text = decoder.decode(raw)
                except UnicodeDecodeError:
                    raise HerstelbusError(f"{path}: line {number} is not UTF-8 text") from None
                if progress:
                    progress(len(raw))
                yield number, text
    except OSError as exc:
        raise HerstelbusError(f"{path}: {exc.strerror}") from None


def _jsonl(path: Path, progress: Progress | None) -> Iterator[tuple[int, Any]]:
    for number, text in _lines(path, progress):
        if text.strip():
            yield number, text


# --- CSV ---------------------------------------------------------------------------------------


class _Conflict(Exception):
    """A column is both a value and a prefix of others ("adres" and "adres.straat")."""

    def __init__(self, path: str) -> None:
        self.path = path


def _nest(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column, cell in row.items():
        *parents, leaf = column.split(".")
        node = out
        for i, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise _Conflict(".".join(parents[: i + 1]))
        if isinstance(node.get(leaf), dict):
            raise _Conflict(column)
        node[leaf] = cell
    return out


def _empty(value: Any) -> bool:
    return value == "" or (isinstance(value, dict) and all(_empty(v) for v in value.values()))


def _typed(node: Any, value: Any) -> Any:
    """A CSV cell (or group of cells) as the JSON form has it: the schema says what a cell means."""
    inner, nullable = unwrap_nullable(node)
    kind = type_name(inner)
    if isinstance(value, dict):
        if kind != "record":
            return value  # the validator names the field as the wrong type
        if nullable and _empty(value):
            return None
        fields = {f["name"]: f["type"] for f in inner["fields"]}
        # An empty cell in another type's column is no field at all (one CSV can mix the three
        # types); a filled one is, and the validator rejects it as unknown.
        out = {k: _typed(fields[k], v) if k in fields else v for k, v in value.items()
               if k in fields or not _empty(v)}
        # A column may be left out where the field may be null.
        out.update({k: None for k, t in fields.items() if k not in out and unwrap_nullable(t)[1]})
        return out
    if value == "":
        return None
    if kind in ("int", "long") and not (isinstance(inner, dict) and inner.get("logicalType")):
        try:
            return int(value)
        except ValueError:
            return value
    if kind == "boolean":
        return {"true": True, "false": False}.get(value.strip().lower(), value)
    return value


def csv_object(row: dict[str, str]) -> dict[str, Any]:
    """One CSV row (header -> cell) as a JSON-form event; raises InvalidEvent on a header conflict."""
    try:
        nested = _nest(row)
    except _Conflict as conflict:
        raise contracts.InvalidEvent([contracts.ValidationError("VELD_DUBBEL", safe_key(conflict.path))]) from None
    record_type = nested.get(TYPE_KEY)
    if record_type not in UHT_TYPES:
        return nested  # parse_json_event says what is wrong with the type
    schema = contracts.get_catalogue().current(record_type).expanded
    return {TYPE_KEY: record_type, **_typed(schema, {k: v for k, v in nested.items() if k != TYPE_KEY})}


def csv_row(event: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """The inverse, for writing test files and examples: a JSON-form event flattened with dots.

    A null nested record becomes no columns; callers take the union of all rows' columns."""
    out: dict[str, str] = {}
    for key, value in event.items():
        if isinstance(value, dict):
            out.update(csv_row(value, f"{prefix}{key}."))
        elif value is not None:
            out[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, bool) else str(value)
    return out


def _csv(path: Path, progress: Progress | None) -> Iterator[tuple[int, Any]]:
    """(line number of the row's first line, object or the InvalidEvent for it)."""
    lines = _lines(path, progress)
    current = [0]

    def texts() -> Iterator[str]:
        for number, text in lines:
            current[0] = number
            yield text

    reader = csv.reader(texts(), strict=True)
    try:
        header = next(reader, None)
    except csv.Error:
        header = None
    if not header or TYPE_KEY not in header:
        raise HerstelbusError(f"{path}: a CSV file needs a header row with a '{TYPE_KEY}' column")
    if len(set(header)) != len(header):
        raise HerstelbusError(f"{path}: the CSV header names a column twice")
    while True:
        start = current[0] + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:  # e.g. an unterminated quote: the rest of the file cannot be trusted
            raise HerstelbusError(f"{path}: line {start} is not valid CSV (quoting)") from None
        if not any(cells):
            continue
        if len(cells) != len(header):
            yield start, contracts.InvalidEvent([contracts.ValidationError(KOLOMMEN_ONGELDIG, "")])
            continue
        try:
            yield start, csv_object(dict(zip(header, cells)))
        except contracts.InvalidEvent as invalid:
            yield start, invalid


# --- validating and the second pass -----------------------------------------------------------


def _events(path: Path, progress: Progress | None) -> Iterator[tuple[int, Any]]:
    return (_jsonl if formaat_van(path) == "jsonl" else _csv)(path, progress)


def _parse(item: Any, now: datetime) -> tuple[str, dict[str, Any]]:
    if isinstance(item, contracts.InvalidEvent):
        raise item
    obj = loads(item) if isinstance(item, str) else item
    if isinstance(obj, dict) and obj.get(TYPE_KEY) in contracts.INPUT_TYPES and obj[TYPE_KEY] not in UHT_TYPES:
        raise contracts.InvalidEvent([contracts.ValidationError(TYPE_NIET_VAN_UHT, TYPE_KEY)])
    return contracts.parse_json_event(obj, now=now)


def valideer(path: Path, *, now: datetime | None = None, progress: Progress | None = None) -> Rapport:
    """Read and validate the whole file; nothing is published here."""
    rapport = Rapport(str(path), formaat_van(path), now or datetime.now(timezone.utc))
    first_seen: dict[str, tuple[int, bytes]] = {}  # event_id -> (line, digest of the record)
    for number, item in _events(path, progress):
        rapport.gelezen += 1
        try:
            record_type, record = _parse(item, rapport.now)
        except contracts.InvalidEvent as invalid:
            rapport.afgewezen.append(Afwijzing(number, tuple((e.reason, e.path) for e in invalid.errors)))
            continue
        event_id = str(record["event_id"])
        digest = hashlib.sha256(contracts.encode(record_type, record)).digest()
        if event_id in first_seen:
            line, earlier = first_seen[event_id]
            if digest == earlier:
                rapport.dubbel.append((number, line))
            else:
                rapport.afgewezen.append(Afwijzing(number, ((EVENT_ID_HERGEBRUIKT, "event_id"),)))
            continue
        first_seen[event_id] = (number, digest)
        rapport.per_type[record_type] += 1
        rapport.te_publiceren.add(number)
    return rapport


def geldige(path: Path, rapport: Rapport) -> Iterator[tuple[str, dict[str, Any]]]:
    """The second pass: (record_type, record) of exactly the lines the report approved, in file order."""
    yielded = 0
    for number, item in _events(path, None):
        if number not in rapport.te_publiceren:
            continue
        try:
            parsed = _parse(item, rapport.now)
        except contracts.InvalidEvent:
            parsed = None
        if parsed is None:
            raise HerstelbusError(f"{path} changed while it was being published (line {number})")
        yielded += 1
        yield parsed
    if yielded != len(rapport.te_publiceren):
        raise HerstelbusError(f"{path} changed while it was being published ({yielded} of "
                              f"{len(rapport.te_publiceren)} events found again)")
