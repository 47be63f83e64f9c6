"""``jsonl:DIR``: one JSON object per event appended to ``DIR/<GMxxxx>.jsonl``.

Keys: ``event_id``, ``type``, ``gemeentecode``, ``subject``, ``routing_reason``, ``sequence``,
``data`` (the opened event in the contract's JSON form). Idempotent by ``event_id``: the ids
already in the file are read at start. Durable: every ``schrijf`` is one append followed by
``fsync``, so committing the offsets after it is safe. A torn last line (a crash mid-append, never
fsynced, so its offset was never committed) is cut off at start and arrives again. Sequence state
(the last volgnummer per dossier) is rebuilt at start from each line's ``gemeentecode`` and
``data.dossiernummer``; nothing beyond the lines is stored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .resultaat import Geopend
from .sinks import Schrijfverslag, SinkFout
from .volgorde import Volgorde, reekssleutel


def regel(event: Geopend) -> dict[str, Any]:
    """The JSON object of one event, in the issue's key order."""
    return {
        "event_id": event.event_id, "type": event.type, "gemeentecode": event.gemeentecode,
        "subject": event.subject, "routing_reason": event.routing_reason, "sequence": event.sequence,
        "data": event.json_data(),
    }


def dump_regel(event: Geopend) -> str:
    return json.dumps(regel(event), ensure_ascii=False, separators=(",", ":"))


class JsonlSink:
    def __init__(self, directory: Path, gemeentecode: str) -> None:
        self.path = directory / f"{gemeentecode}.jsonl"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            nieuw = not self.path.exists()
            self._fh = open(self.path, "a+b")
            if nieuw:  # the file's directory entry must survive a crash too
                _fsync_dir(directory)
        except OSError as exc:
            raise SinkFout(f"jsonl sink {self.path}: {exc.strerror or type(exc).__name__}") from None
        self.gezien: set[str] = set()
        self.volgorde = Volgorde()
        self._lees_bestaand()

    def _lees_bestaand(self) -> None:
        self._fh.seek(0)
        goed = 0
        for line in self._fh:
            if not line.endswith(b"\n"):
                break  # torn tail
            try:
                obj = json.loads(line)
                event_id, subject, sequence = obj["event_id"], obj["subject"], obj["sequence"]
                reeks = reekssleutel(obj["gemeentecode"], obj["data"]["dossiernummer"])
            except (ValueError, KeyError, TypeError):
                # not ours to repair: the line number only (the line may hold personal data)
                raise SinkFout(f"jsonl sink {self.path}: line {self._count_lines(goed) + 1} is not an event "
                               "object; fix or move the file") from None
            self.gezien.add(event_id)
            self.volgorde.pas_toe(event_id, subject, sequence, reeks=reeks)
            goed += len(line)
        if goed != self._fh.tell():
            self._fh.truncate(goed)
            os.fsync(self._fh.fileno())

    def _count_lines(self, upto: int) -> int:
        self._fh.seek(0)
        return self._fh.read(upto).count(b"\n")

    def schrijf(self, events: Sequence[Geopend]) -> Schrijfverslag:
        nieuw, dubbel, lines, volg = [], [], [], []
        for event in events:
            if event.event_id in self.gezien:
                dubbel.append(event.event_id)
                continue
            self.gezien.add(event.event_id)
            nieuw.append(event.event_id)
            lines.append(dump_regel(event))
            volg.append((event.event_id, event.subject, event.sequence, event.reeks))
        if lines:
            try:
                self._fh.write(("\n".join(lines) + "\n").encode("utf-8"))
                self._fh.flush()
                os.fsync(self._fh.fileno())
            except OSError as exc:
                self.gezien.difference_update(nieuw)  # not durable: they must be written again
                raise SinkFout(f"jsonl sink {self.path}: {exc.strerror or type(exc).__name__}") from None
        # Sequence state only for what is durable: a failed write must not leave it advanced.
        gaten = [gat for event_id, subject, sequence, reeks in volg
                 if (gat := self.volgorde.pas_toe(event_id, subject, sequence, reeks=reeks)) is not None]
        return Schrijfverslag(tuple(nieuw), tuple(dubbel), tuple(gaten))

    def close(self) -> None:
        self._fh.close()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["JsonlSink", "dump_regel", "regel"]
