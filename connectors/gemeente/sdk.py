"""The gemeente SDK: read ``gemeente.<GM>.events.v1``, open every record, hand out typed results.

    with GemeenteConsumer.from_env("GM0363", key_dir=Path("keys")) as consumer:
        for batch in consumer.batches():          # one poll, opened with ONE key-store request
            sink.schrijf(batch.geopend)           # durable first ...
            consumer.commit(batch)                # ... then the offsets, never before

``batch.resultaten`` holds every record of the poll, in topic order except that each dossier's
events are put in sequence (volgnummer) order: ``Geopend`` or ``Geweigerd`` (with a ``Weigercode``);
nothing is skipped. ``commit(batch)`` commits exactly up to that batch, so a crash before it means
the batch is delivered again and the (idempotent) sink sees it twice, never zero times.

Configuration from the environment: ``HERSTELBUS_KEYSTORE_API`` (key store base URL),
``HERSTELBUS_GEMEENTE_TOKEN`` (its bearer token), ``HERSTELBUS_EXCHANGE_VERIFY_KEY_FILE`` (the
exchange's verify keys PEM, Ed25519 and ML-DSA-65; ``herstelbus dev up`` writes ``<data dir>/dev/signing.pub.pem``),
``HERSTELBUS_BOOTSTRAP_SERVERS``. Private keys: every ``*.pem`` private key in ``key_dir`` (several
= rotation: records under an older key keep opening); files named for another gemeente are ignored.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any


from herstelbus.kafkaclient import security
from herstelbus.core.privacy import OpeningKeyring, PrivacyError, load_gemeente_private_key, load_verify_key
from herstelbus.core.privacy.keys import check_gemeentecode
from herstelbus.core.topology import gemeente_events_topic
from herstelbus.errors import HerstelbusError
from herstelbus.settings import get_settings

from .openen import Opener, Sleutelbron
from .resultaat import Geopend, Geweigerd, Resultaat
from .sleutelkluis import DEFAULT_PURPOSE, Sleutelkluis
from .volgorde import orden

_GEMEENTE_IN_NAME = re.compile(r"GM[0-9]{4}")
ASSIGN_TIMEOUT_S = 60.0
DEFAULT_BATCH = 500  # records per poll: one key-store request each (the API takes up to 1000 refs)


class ConfigFout(HerstelbusError):
    """Missing or unreadable configuration: key dir, verify key, key store URL or token."""


def load_private_keys(key_dir: Path, gemeentecode: str) -> list[Any]:
    """Every private key PEM in ``key_dir`` that is not named for another gemeente."""
    keys = []
    for path in sorted(key_dir.glob("*.pem")):
        named = _GEMEENTE_IN_NAME.match(path.name)
        if (named and named.group() != gemeentecode) or path.name.endswith(".public.pem"):
            continue
        data = path.read_bytes()
        if b"PRIVATE KEY" not in data:
            continue  # a public key or certificate beside the private ones
        try:
            keys.append(load_gemeente_private_key(data))
        except PrivacyError as exc:
            raise ConfigFout(f"{path}: not a gemeente private key, x25519 or mlkem768x25519 ({exc.reason})") from None
    if not keys:
        raise ConfigFout(f"--key-dir {key_dir}: no private key (*.pem) for {gemeentecode}")
    return keys


def _classical_until() -> datetime | None:
    text = os.environ.get("HERSTELBUS_GEMEENTE_CLASSICAL_UNTIL")
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigFout("HERSTELBUS_GEMEENTE_CLASSICAL_UNTIL: an ISO 8601 time with offset, e.g. 2027-01-01T00:00:00+00:00")
    return moment


def load_verify_key_file(path: Path) -> Any:
    try:
        return load_verify_key(path.read_bytes())
    except OSError as exc:
        raise ConfigFout(f"exchange verify key {path}: {exc.strerror or type(exc).__name__}") from None
    except PrivacyError as exc:
        raise ConfigFout(f"exchange verify key {path}: not the exchange's Ed25519 (+ ML-DSA-65) public keys ({exc.reason})") from None


@dataclass(slots=True)
class Batch:
    """The results of one poll and the offsets to commit once they are safe."""

    resultaten: list[Resultaat]
    offsets: dict[Any, int] = field(repr=False)  # TopicPartition -> next offset to read

    @property
    def geopend(self) -> list[Geopend]:
        return [r for r in self.resultaten if isinstance(r, Geopend)]

    @property
    def geweigerd(self) -> list[Geweigerd]:
        return [r for r in self.resultaten if isinstance(r, Geweigerd)]


class GemeenteConsumer:
    def __init__(self, gemeentecode: str, keyring: OpeningKeyring, sleutelbron: Sleutelbron, *,
                 bootstrap: str | None = None, group_id: str | None = None, max_records: int = DEFAULT_BATCH,
                 **consumer_config: Any) -> None:
        from kafka import KafkaConsumer

        self.gemeentecode = check_gemeentecode(gemeentecode)
        self.topic = gemeente_events_topic(gemeentecode)
        self.sleutelbron = sleutelbron
        self.opener = Opener(gemeentecode, keyring, sleutelbron)
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap or get_settings().bootstrap,
            group_id=group_id or f"herstelbus-gemeente-{gemeentecode}",
            enable_auto_commit=False,  # offsets follow the sink, never a timer
            auto_offset_reset="earliest",  # a new gemeente gets everything retained
            max_poll_records=max_records,
            **{**security(), **consumer_config},
        )
        self._consumer.subscribe([self.topic])
        self._einde: dict[Any, int] | None = None
        self._handed_out: Batch | None = None
        self._started = time.monotonic()

    @classmethod
    def from_env(cls, gemeentecode: str, *, key_dir: Path, keystore_url: str | None = None,
                 token: str | None = None, verify_key_file: Path | None = None,
                 purpose: str = DEFAULT_PURPOSE, keystore_retry_s: float | None = None,
                 **kw: Any) -> GemeenteConsumer:
        """Arguments win over ``HERSTELBUS_KEYSTORE_API`` / ``_GEMEENTE_TOKEN`` / ``_EXCHANGE_VERIFY_KEY_FILE``.
        ``HERSTELBUS_GEMEENTE_CLASSICAL_UNTIL`` (ISO 8601 with offset): once this gemeente is on the
        hybrid suite, refuse classical key epochs starting at or after it (older ones keep opening)."""
        keystore_url = keystore_url or os.environ.get("HERSTELBUS_KEYSTORE_API")
        token = token or os.environ.get("HERSTELBUS_GEMEENTE_TOKEN")
        verify = verify_key_file or (Path(v) if (v := os.environ.get("HERSTELBUS_EXCHANGE_VERIFY_KEY_FILE")) else None)
        if not keystore_url:
            raise ConfigFout("no key store URL: set HERSTELBUS_KEYSTORE_API or pass --keystore")
        if not token:
            raise ConfigFout("no key store token: set HERSTELBUS_GEMEENTE_TOKEN")
        if verify is None:
            raise ConfigFout("no exchange verify key: set HERSTELBUS_EXCHANGE_VERIFY_KEY_FILE or pass --verify-key")
        keyring = OpeningKeyring(gemeentecode, load_private_keys(key_dir, gemeentecode), [load_verify_key_file(verify)],
                                 classical_until=_classical_until())
        kluis = Sleutelkluis(keystore_url, token, gemeentecode, purpose=purpose, retry_for_s=keystore_retry_s)
        return cls(gemeentecode, keyring, kluis, **kw)

    # -- reading ----------------------------------------------------------------------------------
    def poll(self, timeout_ms: int = 1000) -> Batch:
        """One poll, opened. Empty when nothing came within ``timeout_ms``."""
        polled = self._consumer.poll(timeout_ms=timeout_ms)
        messages = [m for tp in sorted(polled, key=lambda tp: tp.partition) for m in polled[tp]]
        offsets = {tp: msgs[-1].offset + 1 for tp, msgs in polled.items() if msgs}
        return Batch(orden(self.opener.open_batch(messages)) if messages else [], offsets)

    def batches(self, *, until_caught_up: bool = False, idle_timeout_s: float | None = None,
                ook_leeg: bool = False) -> Iterator[Batch]:
        """Batches as they come. ``until_caught_up``: stop once every assigned partition reached the
        end offset it had when the assignment was first known (``--once``). ``ook_leeg``: also yield
        the empty batch of a poll that brought nothing (about once a second), so the caller can do
        periodic work (forget notices) while the topic is quiet."""
        idle_since = time.monotonic()
        while True:
            batch = self.poll()
            if batch.resultaten:
                idle_since = time.monotonic()
            if batch.resultaten or ook_leeg:
                yield batch
            if until_caught_up and self.caught_up():
                return
            if idle_timeout_s is not None and time.monotonic() - idle_since > idle_timeout_s:
                return

    def __iter__(self) -> Iterator[Resultaat]:
        """Result by result. ``commit()`` commits the batch whose last result was handed out: call
        it after the sink took that result and it covers the whole batch; called earlier it
        commits the batch before (safe: the rest comes again)."""
        for batch in self.batches():
            last = len(batch.resultaten) - 1
            for i, result in enumerate(batch.resultaten):
                if i == last:
                    self._handed_out = batch
                yield result

    def caught_up(self) -> bool:
        assigned = self._consumer.assignment()
        if not assigned:  # the group has not assigned us the topic yet
            if time.monotonic() - self._started > ASSIGN_TIMEOUT_S:
                raise ConfigFout(f"{self.topic}: no partition assigned in {ASSIGN_TIMEOUT_S:.0f} s (does the topic exist?)")
            return False
        if self._einde is None:
            self._einde = self._consumer.end_offsets(list(assigned))
        return all(self._consumer.position(tp) >= self._einde.get(tp, 0) for tp in assigned)

    # -- committing ---------------------------------------------------------------------------------
    def commit(self, batch: Batch | None = None) -> None:
        """Commit the offsets up to ``batch`` (default: the last batch handed out by iteration).
        Call it only once the sink has the batch's events durably."""
        from kafka.structs import OffsetAndMetadata

        batch = batch if batch is not None else self._handed_out
        if batch is None or not batch.offsets:
            return
        self._consumer.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in batch.offsets.items()})

    def close(self) -> None:
        self._consumer.close(autocommit=False)
        close = getattr(self.sleutelbron, "close", None)
        if close:
            close()

    def __enter__(self) -> GemeenteConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Batch", "ConfigFout", "DEFAULT_BATCH", "GemeenteConsumer", "load_private_keys", "load_verify_key_file"]
