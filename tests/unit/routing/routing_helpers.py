"""Fictional UHT events for the routing tests, from the contract's golden vectors (99999xxxx BSNs)."""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
from pathlib import Path

from herstelbus.core.contracts import get_catalogue, parse_json_event
from herstelbus.core.privacy import (
    GemeenteKey, OpeningKeyring, PiiLayout, generate_gemeente_key, generate_signing_key, new_key_epoch,
)

VECTORS = Path(__file__).resolve().parents[1] / "contracts" / "vectors"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)  # validation instant: vectors never age
VECTOR = {"overdracht": "overdracht_volledig", "pauzeknop": "pauzeknop_start", "erkenning": "erkenning"}
SECRET_B64 = "aGVyc3RlbGJ1cy10ZXN0LXNlY3JldC0zMi1ieXRlcyEhIQ=="  # a fixed test secret (34 bytes)


@functools.cache
def _json(name: str) -> dict:
    return json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))


def event(record_type: str, **changes) -> dict:
    """A valid record (record form) of ``record_type``; ``changes`` in JSON form."""
    obj = copy.deepcopy(_json(VECTOR[record_type]))
    obj.update(changes)
    got_type, record = parse_json_event(obj, now=NOW)
    assert got_type == record_type
    return record


class Gemeente:
    """One gemeente's keys, as the exchange (epoch) and the gemeente (keyring) hold them."""

    def __init__(self, code: str) -> None:
        self.code = code
        private = generate_gemeente_key()
        signing = generate_signing_key()
        public = GemeenteKey(code, private.public_key(), NOW - dt.timedelta(days=30))
        self.epoch = new_key_epoch(public, signing, NOW)
        self.keyring = OpeningKeyring(code, [private], [signing.public_key()])
        self.keyring.add(self.epoch.announcement.to_bytes())


@functools.cache
def layout(record_type: str) -> PiiLayout:
    return PiiLayout(get_catalogue().current(record_type).schema)
