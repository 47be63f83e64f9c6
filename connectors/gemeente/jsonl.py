"""``jsonl:DIR``: one JSON object per event appended to ``DIR/<GMxxxx>.jsonl``.

Keys: ``event_id``, ``type``, ``gemeentecode``, ``subject``, ``routing_reason``, ``sequence``,
``data`` (the opened event in the contract's JSON form). Idempotent by ``event_id``: the ids
already in the file are read at start. Durable: every ``schrijf`` is one append followed by
``fsync``, so committing the offsets after it is safe. A torn last line (a crash mid-append, never
fsynced, so its offset was never committed) is cut off at start and arrives again. Sequence state
(the last volgnummer per dossier) is rebuilt at start from each line's ``gemeentecode`` and
``data.dossiernummer``; nothing beyond the lines is stored.

Forget notices (``vergeet``): the erased subjects' lines are removed by rewriting the file without
them into ``.<GMxxxx>.jsonl.vergeet.tmp`` beside it (fsynced), then ``os.replace`` (atomic) and a
directory fsync. The old file's blocks are freed, not overwritten: wipe the disk as your own
retention policy says.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
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
        with contextlib.suppress(OSError):  # left by a crash during vergeet: the file itself is whole
            self._tmp_path().unlink(missing_ok=True)

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

    def vergeet(self, subjects: Sequence[str], *, audit_ids: Mapping[str, str] | None = None) -> int:
        """Remove every line of these subjects: the kept lines go to a temporary file beside this
        one (fsynced), which then replaces it atomically (``os.replace``, directory fsynced). A
        crash before the replace leaves the old file whole; after it, the new one. Nothing of
        theirs: no rewrite, 0. Returns the number of lines removed."""
        weg = set(subjects)
        if not weg:
            return 0
        tmp = self._tmp_path()
        verwijderd: list[str] = []
        try:
            self._fh.flush()
            self._fh.seek(0)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, os.stat(self.path).st_mode & 0o777)
            with open(fd, "wb") as out:
                for line in self._fh:  # whole lines only: checked at start, appended whole since
                    obj = json.loads(line)
                    if obj["subject"] in weg:
                        verwijderd.append(obj["event_id"])
                    else:
                        out.write(line)
                out.flush()
                os.fsync(out.fileno())
            if not verwijderd:
                tmp.unlink()
                return 0
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            tmp.unlink(missing_ok=True)
            raise SinkFout(f"jsonl sink {self.path}: forget notices not applied "
                           f"({getattr(exc, 'strerror', None) or type(exc).__name__})") from None
        try:  # the old handle points at the replaced file: appends must go to the new one
            self._fh.close()
            self._fh = open(self.path, "a+b")
        except OSError as exc:
            raise SinkFout(f"jsonl sink {self.path}: {exc.strerror or type(exc).__name__}") from None
        self.gezien.difference_update(verwijderd)  # as after a restart: the file is the truth
        return len(verwijderd)

    def _tmp_path(self) -> Path:
        return self.path.with_name(f".{self.path.name}.vergeet.tmp")

    def close(self) -> None:
        self._fh.close()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["JsonlSink", "dump_regel", "regel"]
