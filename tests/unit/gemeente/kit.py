"""A routed gemeente topic without Kafka or the key store: records sealed as the router seals them
(tests/unit/contracts/vectors, fictional 9999xxxxx persons) and a key store in a dict."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from herstelbus.core import contracts
from herstelbus.core.bsn import is_valid_bsn
from herstelbus.core.privacy import (
    GemeenteKey, KeyRef, KeyRowState, OpeningKeyring, PiiLayout, PseudonymSecret, WrappedKey, generate_gemeente_key,
    generate_signing_key, new_key_epoch, pseudonymise, seal_event,
)
from herstelbus.core.routing import Target, routed_record

VECTORS = Path(__file__).resolve().parents[1] / "contracts" / "vectors"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
GM = "GM0363"
SOURCE = contracts.source_urn("00000001003214345000", "herstelbus")
SECRET = PseudonymSecret.generate()
VECTOR = {"overdracht": "overdracht_volledig", "pauzeknop": "pauzeknop_start", "erkenning": "erkenning"}


_BSNS = iter([b for b in (str(n) for n in range(999_991_000, 999_999_999)) if is_valid_bsn(b)])


def dossier() -> str:
    """A fresh fictional dossiernummer (unique across runs: a PostgreSQL test database may be reused)."""
    return f"UHT-T-{uuid.uuid4().hex[:16]}"


def event(record_type: str = "overdracht", bsn: str | None = None, **changes) -> dict:
    """A fictional event for ``GM`` about a new person (a fresh 9999xxxxx BSN) in a new dossier unless
    told otherwise (``dossiernummer=...``: volgnummer counts per dossier)."""
    obj = copy.deepcopy(json.loads((VECTORS / f"{VECTOR[record_type]}.json").read_text()))
    obj["persoon"]["bsn"] = bsn or next(_BSNS)
    obj.update(event_id=str(uuid.uuid4()), gemeentecode=GM, dossiernummer=dossier())
    obj.update(changes)
    return contracts.parse_json_event(obj, now=NOW)[1]


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list = field(default_factory=list)


class FakeKluis:
    """The key store's two calls, counting requests."""

    def __init__(self) -> None:
        self.rows: dict[KeyRef, WrappedKey] = {}
        self.announcements: dict[str, bytes] = {}
        self.erased: set[str] = set()
        self.requests: list[str] = []

    def aankondigingen(self, kek_ids: Sequence[str]) -> dict[str, bytes]:
        self.requests.append("epochs")
        return {k: self.announcements[k] for k in kek_ids if k in self.announcements}

    def sleutels(self, refs: Sequence[KeyRef]) -> list:
        self.requests.append("keys")
        return [KeyRowState.ERASED if r.subject in self.erased else self.rows.get(r, KeyRowState.MISSING)
                for r in refs]


class Exchange:
    """Seals events for ``GM`` as the router does and keeps the keys in a ``FakeKluis``."""

    def __init__(self, gemeentecode: str = GM) -> None:
        self.gm = gemeentecode
        self.private = generate_gemeente_key()
        self.signing = generate_signing_key()
        public = GemeenteKey(gemeentecode, self.private.public_key(), NOW - dt.timedelta(days=30))
        self.epoch = new_key_epoch(public, self.signing, NOW)
        self.kluis = FakeKluis()
        self.kluis.announcements[self.epoch.kek_id] = self.epoch.announcement.to_bytes()
        self.offset = 0

    def keyring(self) -> OpeningKeyring:
        return OpeningKeyring(self.gm, [self.private], [self.signing.public_key()])

    def subject(self, record: dict) -> str:
        return pseudonymise(record["persoon"]["bsn"], SECRET)

    def message(self, record_type: str, record: dict, *, reden: str = "WOONGEMEENTE", headers: Sequence = ()) -> Message:
        layout = PiiLayout(contracts.get_catalogue().current(record_type).schema)
        subject, event_id = self.subject(record), str(record["event_id"])
        sealed = seal_event(record, layout=layout, epoch=self.epoch, event_id=event_id, subject=subject)
        routed = routed_record(sealed.record, subject=subject, target=Target(self.gm, reden),
                               sleutel_id=self.epoch.kek_id, bron_schema=layout.fingerprint_hex, gerouteerd_op=NOW)
        self.kluis.rows[sealed.wrapped_key.ref] = sealed.wrapped_key
        routed_type = f"gerouteerde_{record_type}"
        ce = contracts.cloudevent_headers(routed_type, id=event_id, source=SOURCE, time=NOW, subject=subject,
                                          sequence=record["volgnummer"])
        self.offset += 1
        return Message(f"gemeente.{self.gm}.events.v1", 0, self.offset - 1, subject.encode(),
                       contracts.encode(routed_type, routed), [*ce, *headers])


def tamper(message: Message) -> Message:
    """The same record with one bit of its sealed bundle flipped."""
    routed_type, record = contracts.decode(message.value)
    blob = bytearray(record["verzegeld"])
    blob[-1] ^= 1
    message.value = contracts.encode(routed_type, {**record, "verzegeld": bytes(blob)})
    return message


def geopend(record_type: str = "overdracht", bsn: str | None = None, *, offset: int = 0, **changes):
    """An opened event built directly (no sealing), for sink tests: ``event(...)`` as a ``Geopend``."""
    from herstelbus.connectors.gemeente.resultaat import Geopend, Positie

    record = event(record_type, bsn, **changes)
    return Geopend(str(record["event_id"]), record_type, GM, pseudonymise(record["persoon"]["bsn"], SECRET),
                   "WOONGEMEENTE", record["volgnummer"], record, {"reden": "WOONGEMEENTE"}, "normaal", False, NOW,
                   Positie(f"gemeente.{GM}.events.v1", 0, offset))
