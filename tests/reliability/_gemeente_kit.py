"""What scenarios 3, 4 and 5 share: realistic UHT events for a few gemeenten, routed by the real
router (tests/integration/router_world.py), a tail of the output topics with arrival times, the
gemeente's side (private key, token, verify key, the key store API), and the checks that need no
process of their own: each receipt once, every record opens, no personal value in the clear.

Every event is invented (connectors/uht/synthetic.py's dossiers, a fresh seed per run so event ids
and BSNs are new on a broker that keeps earlier runs' records). Figures hold counts only.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from herstelbus.connectors.gemeente.openen import Opener
from herstelbus.connectors.gemeente.resultaat import Geopend
from herstelbus.connectors.uht import synthetic
from herstelbus.connectors.uht.publish import new_producer, send
from herstelbus.core import contracts
from herstelbus.core.gemeenten import gemeenten_on
from herstelbus.core.privacy import GemeenteKey, OpeningKeyring, private_key_to_pem, public_key_to_pem
from herstelbus.core.topology import STATUS, gemeente_acks_topic, gemeente_events_topic
from herstelbus.keystore import policy
from herstelbus.keystore.store import GemeenteAccess, KeyAdmin, KeyStore
from herstelbus.processes import stop
from herstelbus.settings import get_settings
from herstelbus.topics import provision, wanted_topics
from tests.conftest import free_port
from tests.integration.keystore_server import call
from tests.integration.router_world import PURPOSE, World

TERMINAL = frozenset({"ROUTED", "INVALID", "UNROUTABLE", "DUPLICATE"})
DUPLICATE_SHARE = 0.01  # UHT publishes an event twice now and then: a DUPLICATE receipt, nothing routed


def provision_topics(bootstrap: str) -> None:
    provision(bootstrap, wanted_topics(get_settings().topic_policy(), dt.date(2025, 1, 1)), 1)


# -- input ------------------------------------------------------------------------------------------
# The generator numbers dossiers from 1 in every call and draws BSNs afresh: two calls would share
# dossiers or persons, and the router rightly routes their later events to every gemeente that had
# them before. So numbers and BSNs are unique per process (a World's pseudonyms are its own).
_DOSSIERS = itertools.count(random.SystemRandom().randrange(800_000))
_BSNS: set[str] = set()


def make_events(gemeenten: list[str], count: int, seed: int | None = None) -> list[dict]:
    """About ``count`` UHT events: whole synthetic dossiers living in ``gemeenten`` (a toeslagpartner
    elsewhere lives in another of them), with the generator's unroutable edge cases (VOW,
    buitenland, unknown code, split) and a few duplicates. Herindeling dossiers are left out: their
    opvolger would be a gemeente without a key here."""
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    gen = synthetic._Generator(seed, dt.datetime(2025, 1, 6, 8, 0, tzinfo=dt.timezone.utc))
    gen.used_bsns = _BSNS
    namen = {g.code: g.naam for g in gemeenten_on(dt.date(2025, 1, 6))}
    events: list[dict] = []
    i = 0
    while len(events) < count:
        gm, elders = gemeenten[i % len(gemeenten)], gemeenten[(i + 1) % len(gemeenten)]
        i += 1
        gen.dossiers = next(_DOSSIERS)  # numbers unique in this process: one dossier, one gemeente history
        dossier = synthetic._dossier(gen, (gm, namen[gm]), (elders, namen[elders]))
        if dossier[0]["gemeentecode"] in synthetic.DISSOLVED:
            continue
        for event in dossier:
            events.append(event)
            if gen.rng.random() < DUPLICATE_SHARE:
                events.append(dict(event))
    return events


_PATTERNS = (rb"(?<![0-9])[0-9]{9}(?![0-9])", rb"UHT-[0-9]{4}-[0-9]{6}", rb"[0-9]{4} [A-Z]{2}",
             rb"\+316[0-9]{8}", rb"[a-z0-9.]+@voorbeeld\.invalid", rb"BES/[0-9]{4}/[0-9]{6}")


def personal_values(events: Iterable[dict]) -> set[bytes]:
    """The identifying values of ``events`` that have a recognisable shape (see ``in_the_clear``)."""
    out: set[bytes] = set()
    for e in events:
        for person in (e.get("persoon"), e.get("toeslagpartner")):
            if person:
                out.add(person["bsn"].encode())
        out.add(e["dossiernummer"].encode())
        if e.get("adres"):
            out.add(e["adres"]["postcode"].encode())
        for k in ("telefoon", "email", "besluitkenmerk"):
            if e.get(k):
                out.add(e[k].encode())
    return out


def clear_in_text(text: str, values: set[bytes]) -> int:
    """``in_the_clear`` for a process's output."""
    return in_the_clear([Seen("", 0, 0, None, text.encode(), [], 0.0)], values)


def in_the_clear(messages: Iterable[Any], values: set[bytes]) -> int:
    """How many of ``values`` (and of the invented surnames) appear in the records' keys, values or
    headers. Shapes are found by pattern in one pass, so 10,000 records cost seconds, not minutes."""
    blob = b"\x00".join(b"\x00".join([m.key or b"", m.value or b"", *(v or b"" for _, v in (m.headers or []))])
                        for m in messages)
    found = {hit for p in _PATTERNS for hit in re.findall(p, blob)} & values
    found |= {n.encode() for n in synthetic.ACHTERNAMEN if n.encode() in blob}
    return len(found)


class Publisher:
    """UHT's publisher (connectors/uht/publish.py: acks=all, idempotent), one producer for a run;
    ``paced`` publishes in a thread, spread over ``seconds``, so the router has work all along."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = new_producer(bootstrap)
        self.positions: list[tuple[str, int, int]] = []
        self._thread: threading.Thread | None = None

    def send(self, events: list[dict]) -> list[tuple[str, int, int]]:
        futures = send(self._producer, [contracts.parse_json_event(e) for e in events])
        positions = [(m.topic, m.partition, m.offset) for m in (f.get() for f in futures)]
        self.positions += positions
        return positions

    def paced(self, events: list[dict], seconds: float, chunks: int = 0) -> None:
        chunks = chunks or max(1, int(seconds * 4))
        size = max(1, -(-len(events) // chunks))

        def run() -> None:
            started = time.monotonic()
            for n, i in enumerate(range(0, len(events), size)):
                time.sleep(max(0.0, started + n * seconds / chunks - time.monotonic()))
                self.send(events[i:i + size])

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def join(self, timeout: float = 600) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
            assert not self._thread.is_alive(), "publisher still running"

    def close(self) -> None:
        self._producer.close()


# -- the world: router, key store on SQLite or PostgreSQL ------------------------------------------
def make_world(tmp: Path, bootstrap: str, gemeenten: list[str], keystore_url: str | None = None) -> World:
    """router_world's World, its key store moved to ``keystore_url`` when given (PostgreSQL)."""
    world = World(tmp, bootstrap, gemeenten)
    if keystore_url:
        world.store.close()
        world.store, world.db_url = KeyStore.open(keystore_url), keystore_url
        admin, since = KeyAdmin(world.store), dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
        for gm, key in world.gemeenten.items():
            admin.register_gemeente_key(GemeenteKey(gm, key.public_key(), since), "test")
        world.env["HERSTELBUS_KEYSTORE_URL"] = keystore_url
    return world


# -- following topics -------------------------------------------------------------------------------
@dataclass
class Seen:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list
    at: float  # time.monotonic() when the tail read it
    _record: dict | None = None

    @property
    def ce_id(self) -> str | None:
        return next((v.decode() for k, v in self.headers if k == "ce_id"), None)

    @property
    def record(self) -> dict:
        """The decoded value, decoded once (the waits below look at every receipt many times)."""
        if self._record is None:
            self._record = contracts.decode(self.value)[1]
        return self._record


class Tail:
    """Reads ``topics`` from their end at construction, in a thread, noting when each record came."""

    def __init__(self, bootstrap: str, topics: Iterable[str]) -> None:
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                       max_partition_fetch_bytes=8 << 20)
        topics = list(topics)
        parts = [TopicPartition(t, p) for t in topics for p in sorted(self._consumer.partitions_for_topic(t) or ())]
        assert {tp.topic for tp in parts} == set(topics), "a topic to follow does not exist"
        self._consumer.assign(parts)
        ends = self._consumer.end_offsets(parts)
        for tp in parts:
            self._consumer.seek(tp, ends[tp])
        self.records: list[Seen] = []
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping:
            polled = self._consumer.poll(timeout_ms=200)
            now = time.monotonic()
            batch = [Seen(m.topic, m.partition, m.offset, m.key, m.value, list(m.headers or []), now)
                     for msgs in polled.values() for m in msgs]
            with self._lock:
                self.records.extend(batch)

    def of(self, topic: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.records if r.topic == topic]

    def close(self) -> None:
        self._stopping = True
        self._thread.join(timeout=10)
        self._consumer.close()


@dataclass
class Receipts:
    """The router's terminal receipts for our input positions (copies of one receipt count once)."""

    by_bron: dict[tuple[str, int, int], dict] = field(default_factory=dict)
    conflicting: int = 0  # two different terminal receipts for one input record: a double effect
    copies: int = 0  # the same receipt again (at-least-once redelivery): harmless
    first_at: dict[tuple[str, int, int], float] = field(default_factory=dict)

    @classmethod
    def of(cls, tail: Tail, positions: Iterable[tuple[str, int, int]]) -> Receipts:
        wanted, out = set(positions), cls()
        for seen in tail.of(STATUS):
            try:
                receipt = seen.record
            except contracts.ContractError:  # not a receipt (another test's garbage): not ours either
                continue
            bron = receipt.get("bron")
            bron = (bron["topic"], bron["partition"], bron["offset"]) if bron else None
            if bron not in wanted or receipt["status"] not in TERMINAL:
                continue
            known = out.by_bron.get(bron)
            if known is None:
                out.by_bron[bron], out.first_at[bron] = receipt, seen.at
            elif known["status_id"] == receipt["status_id"]:
                out.copies += 1
            else:
                out.conflicting += 1
        return out

    def statuses(self) -> Counter[str]:
        return Counter(r["status"] for r in self.by_bron.values())

    def routed_to(self, gm: str) -> set[str]:
        """Event ids whose ROUTED receipt names ``gm``."""
        return {str(r["event_id"]) for r in self.by_bron.values() if r["status"] == "ROUTED"
                and any(d["gemeentecode"] == gm for d in r["doelen"])}


def wait_for_receipts(tail: Tail, positions: list, alive: Any, timeout: float) -> Receipts:
    deadline = time.monotonic() + timeout
    while True:
        receipts = Receipts.of(tail, positions)
        if len(receipts.by_bron) >= len(set(positions)) or time.monotonic() > deadline or not alive():
            return receipts
        time.sleep(0.5)


def figures_of(events_in: int, receipts: Receipts) -> dict[str, int]:
    s = receipts.statuses()
    return {"events_in": events_in, "routed": s["ROUTED"], "unroutable": s["UNROUTABLE"],
            "duplicate": s["DUPLICATE"], "dead_lettered": s["INVALID"],
            "no_receipt": events_in - len(receipts.by_bron), "conflicting_receipts": receipts.conflicting}


# -- the gemeente's side ------------------------------------------------------------------------------
class GemeenteSide:
    """Per gemeente: its private key in a key dir, a key store token, the exchange's verify key."""

    def __init__(self, world: World, gemeenten: Iterable[str]) -> None:
        self.world = world
        self.verify_key = world.tmp / "signing.pub.pem"
        self.verify_key.write_bytes(public_key_to_pem(world.signing.public_key()))
        admin = KeyAdmin(world.store)
        self.tokens: dict[str, str] = {}
        for gm in gemeenten:
            (world.tmp / "keys" / gm).mkdir(parents=True, exist_ok=True)
            (world.tmp / "keys" / gm / f"{gm}.pem").write_bytes(private_key_to_pem(world.gemeenten[gm]))
            self.tokens[gm] = admin.issue_token(gm, "test")

    def key_dir(self, gm: str) -> Path:
        return self.world.tmp / "keys" / gm

    def env(self, gm: str, keystore_api: str, **extra: str) -> dict[str, str]:
        return {**os.environ, **self.world.env, "HERSTELBUS_KEYSTORE_API": keystore_api,
                "HERSTELBUS_GEMEENTE_TOKEN": self.tokens[gm],
                "HERSTELBUS_EXCHANGE_VERIFY_KEY_FILE": str(self.verify_key),
                **extra}


class KeysServer:
    """``herstelbus keys serve`` on one port for its whole life, so it can be stopped and started
    again where the consumers expect it."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.port = env, log, free_port()
        self.proc: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "a") as out:
            argv = [sys.executable, "-m", "herstelbus", "keys", "serve", "--port", str(self.port)]
            self.proc = subprocess.Popen(argv, env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                if call("GET", f"{self.base}/v1/health")[0] == 200:
                    return
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            assert time.monotonic() < deadline, "keys serve did not answer in 30 s"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, timeout_s=10)
            self.proc = None


def start_group_at_end(bootstrap: str, group: str, topic: str) -> None:
    """Commit ``group``'s offsets at ``topic``'s end: a new consumer group then reads only what is
    routed from now on, not what earlier tests left on a shared gemeente topic."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = consumer.end_offsets(parts)
        consumer.commit({tp: OffsetAndMetadata(ends[tp], "", -1) for tp in parts})
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) for p in sorted(consumer.partitions_for_topic(topic))}
    finally:
        consumer.close()


def acks_of(tail: Tail, gm: str, event_ids: set[str]) -> tuple[Counter[str], Counter[str]]:
    """(raw acks per event id, distinct ack_ids per event id) on gemeente.GM.acks.v1 for ``event_ids``."""
    raw: Counter[str] = Counter()
    distinct: dict[str, set[str]] = {}
    for seen in tail.of(gemeente_acks_topic(gm)):
        ack = seen.record
        eid = str(ack["event_id"])
        if eid in event_ids:
            raw[eid] += 1
            distinct.setdefault(eid, set()).add(str(ack["ack_id"]))
    return raw, Counter({k: len(v) for k, v in distinct.items()})


# -- opening as the gemeente --------------------------------------------------------------------------
class _StoreSleutelbron:
    """The key store API's two calls, straight on the store (no HTTP: this is the test's check)."""

    def __init__(self, store: KeyStore, gm: str) -> None:
        self.access, self.gm = GemeenteAccess(store), gm

    def aankondigingen(self, kek_ids):  # noqa: ANN001, ANN201
        return {a.kek_id: a.to_bytes() for a in self.access.announcements(self.gm, kek_ids)}

    def sleutels(self, refs):  # noqa: ANN001, ANN201
        out = []
        for start in range(0, len(refs), 500):
            out += self.access.release(self.gm, list(refs[start:start + 500]), PURPOSE, policy.trace_from(None))
        return out


def open_records(world: World, gm: str, records: list[Seen]) -> tuple[int, int]:
    """Open ``records`` as the gemeente does (connectors/gemeente/openen.py: verify each epoch's
    signed announcement, fetch the wrapped keys, open): (opened, refused)."""
    ring = OpeningKeyring(gm, [world.gemeenten[gm]], [world.signing.public_key()])
    opener = Opener(gm, ring, _StoreSleutelbron(world.store, gm))
    opened = refused = 0
    for start in range(0, len(records), 500):
        for result in opener.open_batch(records[start:start + 500]):
            if isinstance(result, Geopend):
                opened += 1
            else:
                refused += 1
    return opened, refused


def gemeente_records(tail: Tail, gm: str, event_ids: set[str]) -> list[Seen]:
    return [r for r in tail.of(gemeente_events_topic(gm)) if r.ce_id in event_ids]
