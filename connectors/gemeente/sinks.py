"""Where opened events go. A sink is idempotent by ``event_id`` and durable when ``schrijf``
returns: only then may the caller commit the offsets (and acknowledge ONTVANGEN). ``vergeet``
applies the key store's forget notices (vergeetverzoeken): the erased subjects' events leave the
sink (jsonl, sql) or a notice goes to the receiver (webhook); only then is the notice confirmed.

``jsonl:DIR`` (``jsonl``), ``webhook:URL`` (``webhook``) and ``sql:URL`` (``sqlsink``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from herstelbus.errors import HerstelbusError

from .resultaat import Geopend
from .volgorde import Gat


class SinkFout(HerstelbusError):
    """A sink that cannot be made or cannot take events durably."""


@dataclass(frozen=True, slots=True)
class Schrijfverslag:
    """What one ``schrijf`` did: ids newly stored, ids it already had, sequence gaps seen."""

    nieuw: tuple[str, ...] = ()
    dubbel: tuple[str, ...] = ()
    gaten: tuple[Gat, ...] = field(default=())


class Sink(Protocol):
    def schrijf(self, events: Sequence[Geopend]) -> Schrijfverslag: ...

    def vergeet(self, subjects: Sequence[str], *, audit_ids: Mapping[str, str] | None = None) -> int:
        """Apply forget notices: remove (or pass on) everything held about these subjects
        (pseudonyms) at this gemeente. Returns how many lines/rows were removed or notices sent;
        0 for a subject it holds nothing of (still applied). Done for all when it returns, or
        ``SinkFout`` and the caller confirms none (the notices come again). ``audit_ids``: the
        erasure's audit id per subject, for a sink that passes the notice on."""
        ...

    def close(self) -> None: ...


def open_sink(spec: str, gemeentecode: str) -> Sink:
    """A sink from its command-line form, ``KIND:TARGET``."""
    kind, sep, target = spec.partition(":")
    if not sep or not target:
        raise SinkFout(f"--sink {kind or spec!r}: expected KIND:TARGET, e.g. jsonl:DIR")
    if kind == "jsonl":
        from .jsonl import JsonlSink

        return JsonlSink(Path(target), gemeentecode)
    if kind == "webhook":
        from .webhook import WebhookSink

        return WebhookSink(target, gemeentecode)
    if kind == "sql":
        from .sqlsink import SqlSink

        return SqlSink(target, gemeentecode)
    raise SinkFout(f"--sink {kind}: unknown kind; known: jsonl, webhook, sql")


__all__ = ["Schrijfverslag", "Sink", "SinkFout", "open_sink"]
