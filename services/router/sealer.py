"""Per-gemeente key epochs for the router, kept over the key store.

A new epoch costs one HPKE seal and one signature; it is announced (stored for the gemeente to
fetch) before the first record sealed under it is written, so a gemeente never sees a key id it
cannot resolve. The gemeente key directory is re-read now and then, so a rotation is picked up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from herstelbus import metrics
from herstelbus.core.privacy import (
    GemeenteKey, PiiLayout, SealedEvent, SealingEpoch, choose_wrapping_key, needs_new_epoch, new_key_epoch,
    seal_event,
)
from herstelbus.keystore.store import ExchangeWriter

DIRECTORY_REFRESH = timedelta(seconds=60)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Sealer:
    def __init__(self, writer: ExchangeWriter, signing_key: Any, clock: Callable[[], datetime] = _utcnow) -> None:
        self._writer = writer
        self._signing_key = signing_key
        self._clock = clock
        self._epochs: dict[str, SealingEpoch] = {}
        self._directory: dict[str, list[GemeenteKey]] = {}  # by gemeentecode: 342 keys, looked up per event
        self._directory_at: datetime | None = None

    def _keys(self, gemeentecode: str, now: datetime) -> list[GemeenteKey]:
        if self._directory_at is None or now - self._directory_at > DIRECTORY_REFRESH:
            directory: dict[str, list[GemeenteKey]] = {}
            with metrics.keystore_call("gemeente_keys"):
                keys = self._writer.gemeente_keys()
            for key in keys:
                directory.setdefault(key.gemeentecode, []).append(key)
            self._directory, self._directory_at = directory, now
        return self._directory.get(gemeentecode, [])

    def epoch(self, gemeentecode: str) -> SealingEpoch:
        """The epoch to seal for ``gemeentecode`` now; ``KeyUnavailable`` when it has no key."""
        now = self._clock()
        key = choose_wrapping_key(self._keys(gemeentecode, now), gemeentecode, now)
        current = self._epochs.get(gemeentecode)
        if needs_new_epoch(current, key, now):
            current = new_key_epoch(key, self._signing_key, now)
            with metrics.keystore_call("put_announcement"):
                self._writer.put_announcement(current.announcement)  # durable before any use
            self._epochs[gemeentecode] = current
        return current

    def renew(self, gemeentecodes) -> None:
        """Start fresh epochs: after a key-row conflict (a retry sealed the same event again with a
        new data key) a new key id makes both rows, and both copies of the record, openable."""
        for code in gemeentecodes:
            self._epochs.pop(code, None)

    def seal(self, record: Mapping[str, Any], layout: PiiLayout, gemeentecode: str, event_id: str,
             subject: str) -> tuple[SealedEvent, SealingEpoch]:
        epoch = self.epoch(gemeentecode)
        return seal_event(record, layout=layout, epoch=epoch, event_id=event_id, subject=subject), epoch
