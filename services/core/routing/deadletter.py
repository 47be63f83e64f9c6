"""Records for ops: the dead letter (rule 1) and the unroutable record (rule 4).

Both use the ``deadletter`` contract: ``herstel.deadletter.v1`` holds input that is not a valid
event, ``herstel.unroutable.v1`` valid events without a gemeente. In both, ``origineel`` is the
input record (key, value, headers) sealed for ops by the caller: it still carries plaintext
personal data, which may not outlive the 24-hour ingest topic. Reasons and messages are built
from reason codes and field paths only, never from a value.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .besluit import BUITENLAND, VOW
from .refs import KafkaRef, derived_id

ROUTER = "router"
MAX_FOUTEN = 100  # the contract's maxItems
MAX_MELDING = 2000  # the contract's maxLength

_NOT_CODE = re.compile(r"[^A-Z0-9_]")
_NOT_PAD = re.compile(r"[^A-Za-z0-9_.*]")

# A fout is a contract or privacy error (``reason``, ``path``) or a (reden, pad) pair.
Fout = Any


def _code(reason: object) -> str:
    """A stable reason code in the contract's format (privacy errors use lower case)."""
    code = _NOT_CODE.sub("_", str(reason).upper())[:64]
    return code if code[:1].isalpha() else "ONBEKEND"


def _pad(path: object) -> str:
    """A field path in the contract's format; header names ("content-type") lose their dash."""
    return _NOT_PAD.sub("_", str(path or ""))[:200]


def _pairs(fouten: Iterable[Fout]) -> list[tuple[str, str]]:
    out = []
    for f in fouten:
        reason, path = f if isinstance(f, tuple) else (getattr(f, "reason", None), getattr(f, "path", None))
        out.append((_code(reason), _pad(path)))
    return out


def _melding(pairs: list[tuple[str, str]], kop: str) -> str:
    """``<kop>: CODE at pad; CODE; ...``, cut to the contract's length with the number left out."""
    parts = [f"{code} at {pad}" if pad else code for code, pad in pairs]
    text = f"{kop}: " + "; ".join(parts)
    shown = len(parts)
    while len(text) > MAX_MELDING and shown > 1:
        shown -= 1
        text = f"{kop}: " + "; ".join(parts[:shown]) + f"; ... (+{len(parts) - shown})"
    return text[:MAX_MELDING]


def _record(kind: str, *, reden: str, pairs: list[tuple[str, str]], kop: str, event_id: uuid.UUID | str | None,
            event_type: str | None, component: str, bron: KafkaRef, origineel: bytes, sleutel_id: str,
            at: datetime) -> dict[str, Any]:
    return {
        "deadletter_id": derived_id(kind, bron, component),
        "reden": reden,
        "melding": _melding(pairs, kop),
        # Whole-input errors (wire format) have no path; the contract wants one per fout.
        "fouten": [{"reden": code, "pad": pad} for code, pad in pairs if pad][:MAX_FOUTEN],
        "event_id": None if event_id is None else str(event_id),
        "event_type": event_type,
        "component": component,
        "at": at,
        "bron": bron.as_record(),
        "origineel": origineel,
        "sleutel_id": sleutel_id,
    }


def deadletter_record(fouten: Iterable[Fout], *, bron: KafkaRef, origineel: bytes, sleutel_id: str, at: datetime,
                      event_id: uuid.UUID | str | None = None, event_type: str | None = None,
                      component: str = ROUTER) -> dict[str, Any]:
    """For ``herstel.deadletter.v1``. ``fouten``: e.g. ``InvalidEvent.errors``, ``[wire_error]``;
    the first is the main ``reden``. ``origineel`` and ``sleutel_id``: the input sealed for ops."""
    pairs = _pairs(fouten) or [("ONBEKEND", "")]
    n = len(pairs)
    return _record("deadletter/v1", reden=pairs[0][0], pairs=pairs, kop=f"{n} fout{'' if n == 1 else 'en'}",
                   event_id=event_id, event_type=event_type, component=component, bron=bron,
                   origineel=origineel, sleutel_id=sleutel_id, at=at)


# A routed event that could not reach every gemeente that should have it (rule 3).
OVERGESLAGEN = "EERDER_BETROKKEN_OVERGESLAGEN"


def overgeslagen_record(record_type: str, event_id: uuid.UUID | str, overgeslagen: Iterable[tuple[str, str]], *,
                        bron: KafkaRef, origineel: bytes, sleutel_id: str, at: datetime,
                        component: str = ROUTER) -> dict[str, Any]:
    """For ``herstel.unroutable.v1``: an event that was routed, but not to these earlier involved
    gemeenten (``(gemeentecode, reason)``, e.g. split since): a creditor that must pause or forgive
    would otherwise silently miss it. Ops route it from ``origineel``; gemeentecodes are no
    personal data, so they are in the paths."""
    pairs = [(_code(reason), _pad(f"eerder_betrokken.{code}")) for code, reason in overgeslagen]
    return _record("overgeslagen/v1", reden=OVERGESLAGEN, pairs=pairs, kop="eerder betrokken niet bereikt",
                   event_id=event_id, event_type=record_type, component=component, bron=bron,
                   origineel=origineel, sleutel_id=sleutel_id, at=at)


def unroutable_record(record_type: str, event_id: uuid.UUID | str, reden: str, *, bron: KafkaRef, origineel: bytes,
                      sleutel_id: str, at: datetime, component: str = ROUTER) -> dict[str, Any]:
    """For ``herstel.unroutable.v1``: a valid event without a gemeente; ``reden`` from
    ``Unroutable.reason``. Ops fix the data and re-route it from ``origineel``."""
    pad = "woonsituatie" if reden in (VOW, BUITENLAND) else "gemeentecode"
    code = _code(reden)
    return _record("unroutable/v1", reden=code, pairs=[(code, pad)], kop="niet routeerbaar", event_id=event_id,
                   event_type=record_type, component=component, bron=bron, origineel=origineel,
                   sleutel_id=sleutel_id, at=at)
