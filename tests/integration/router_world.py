"""A router test world on the real broker: secrets, a key store with gemeente keys, the router as
a subprocess started from the repo, and the gemeente's view (fetch keys, open records)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from kafka import KafkaProducer

from herstelbus.connectors.uht.publish import publish
from herstelbus.core import contracts
from herstelbus.core.bsn import is_valid_bsn
from herstelbus.core.privacy import (
    GemeenteKey, KeyRowState, OpeningKeyring, PiiLayout, PseudonymSecret, generate_gemeente_key,
    generate_signing_key, key_ref, open_event, private_key_to_pem, public_key_to_pem,
)
from herstelbus.keystore import policy
from herstelbus.keystore.store import GemeenteAccess, KeyAdmin, KeyStore
from tests.integration.kafka_read import read_until

VECTORS = Path(__file__).resolve().parents[1] / "unit" / "contracts" / "vectors"
AMSTERDAM, ROTTERDAM, WEESP = "GM0363", "GM0599", "GM0457"
PURPOSE = "https://gemeente.example/verwerkingen/herstel-kot"


def fresh_bsn(rng) -> str:
    """A valid BSN no other test uses (the broker's routing memory and erasures outlive tests)."""
    while not is_valid_bsn(bsn := f"{rng.randrange(10**8, 10**9)}"):
        pass
    return bsn


def _event(name: str, **changes) -> dict:
    obj = copy.deepcopy(json.loads((VECTORS / f"{name}.json").read_text()))
    obj.update(event_id=str(uuid.uuid4()), occurred_at="2025-06-02T10:00:00Z", **changes)
    return obj


class World:
    def __init__(self, tmp: Path, bootstrap: str, gemeenten: Iterable[str] = (AMSTERDAM, ROTTERDAM)) -> None:
        self.tmp, self.bootstrap = tmp, bootstrap
        self.ops = generate_gemeente_key()
        self.signing = generate_signing_key()
        self.gemeenten = {gm: generate_gemeente_key() for gm in gemeenten}
        (tmp / "pseudonym.key").write_text(PseudonymSecret.generate().export_base64())
        (tmp / "signing.pem").write_bytes(private_key_to_pem(self.signing))
        (tmp / "ops.pub.pem").write_bytes(public_key_to_pem(self.ops.public_key()))
        self.db_url = f"sqlite:///{tmp / 'keystore.sqlite'}"
        self.store = KeyStore.open(self.db_url)
        admin = KeyAdmin(self.store)
        since = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
        for gm, key in self.gemeenten.items():
            admin.register_gemeente_key(GemeenteKey(gm, key.public_key(), since), "test")
        self.env = {
            "HERSTELBUS_BOOTSTRAP_SERVERS": bootstrap, "HERSTELBUS_DATA_DIR": str(tmp / "data"),
            "HERSTELBUS_KEYSTORE_URL": self.db_url, "HERSTELBUS_PSEUDONYM_KEY_FILE": str(tmp / "pseudonym.key"),
            "HERSTELBUS_SIGNING_KEY_FILE": str(tmp / "signing.pem"),
            "HERSTELBUS_OPS_PUBLIC_KEY_FILE": str(tmp / "ops.pub.pem"), "HERSTELBUS_LOG_FORMAT": "json",
            # Well above faust's commit interval: the watchdog runs in every router test, so a
            # false alarm (or a real stall) ends the router with 70 and fails the test.
            "HERSTELBUS_STALL_AFTER_S": "15",
        }

    def publish(self, events: list[dict | bytes]) -> list[tuple[str, int, int]]:
        """As UHT (events first, then any raw bytes that are no event at all)."""
        positions = publish(self.bootstrap, [contracts.parse_json_event(e) for e in events if isinstance(e, dict)])
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        broken = [producer.send("uht.overdracht.v1", key=b"kapot", value=e) for e in events if isinstance(e, bytes)]
        producer.flush()
        producer.close()
        return positions + [(m.topic, m.partition, m.offset) for m in (f.get() for f in broken)]

    def read(self, topic: str, until, timeout: float = 180) -> list:  # generous: CI machines are busy
        return read_until(self.bootstrap, topic, until, timeout)

    def open_all(self, gm: str, messages: list) -> list[dict | KeyRowState]:
        """As the gemeente: verify announcements, fetch keys, open with its own private key."""
        access = GemeenteAccess(self.store)
        ring = OpeningKeyring(gm, [self.gemeenten[gm]], [self.signing.public_key()])
        for announcement in access.announcements(gm):
            ring.add(announcement.to_bytes())
        opened = []
        for message in messages:
            record_type, record = contracts.decode(message.value)
            layout = PiiLayout(contracts.get_catalogue().current(record_type.removeprefix("gerouteerde_")).schema)
            ref = key_ref(record, layout=layout, gemeentecode=gm, event_id=str(record["event_id"]),
                          subject=record["subject"])
            (key,) = access.release(gm, [ref], PURPOSE, policy.trace_from(None))
            opened.append(open_event(record, layout=layout, keyring=ring, event_id=str(record["event_id"]),
                                     subject=record["subject"], key=key))
        return opened


def supervised(*args: str) -> list[str]:
    """argv of ``herstelbus supervise -- herstelbus ARGS``: a faust worker as it runs in production,
    restarted when it ends itself with 70 (each restart is logged)."""
    return [sys.executable, "-m", "herstelbus", "supervise", "--", sys.executable, "-m", "herstelbus", *args]


def start_router(world: World, log: Path, *, wait_ready: bool = True) -> subprocess.Popen:
    """``herstelbus supervise -- herstelbus router`` with the world's settings (as in production, a
    router that ends itself with 70 is restarted: the supervisor logs each restart), its output
    appended to ``log``. Stopping it (SIGTERM) stops the router; the exit code is the router's."""
    ready_before = log.read_text().count("Worker ready") if log.exists() else 0
    with open(log, "a") as out:
        started = subprocess.Popen(supervised("router"), env={**os.environ, **world.env},
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while wait_ready and log.read_text().count("Worker ready") <= ready_before and started.poll() is None:
        assert time.monotonic() < deadline, "router not ready in 120 s"
        time.sleep(0.2)
    return started
