"""Leak scan (issue 8): the whole flow with known personal data, then every byte the exchange and the
broker wrote is searched for it. Only UHT's ingest topics (plaintext by design, 24 h), the key store
and the gemeente's own sink may hold it.

Flow: UHT publishes overdrachten, a pauzeknop, an erkenning, a VOW overdracht (unroutable: sealed
for ops) and a record that is no Avro at all but JSON full of personal data (a dead letter: sealed
for ops); the real router routes; two gemeenten consume with `herstelbus gemeente consume --sink
jsonl --ack --once` into a sink outside the scanned folders; the real acks relay relays their acks.

Scanned: the broker's log.dirs except the ingest partitions, the broker's own logs, and the data
dir and logs of every herstelbus process here. Searched for: each BSN, name, postcode (with and
without its space), phone number (also as 06...) and e-mail address of the input, as UTF-8 bytes
(Avro stores strings as raw UTF-8, the logs are UTF-8 JSON; the values are ASCII, so no JSON
escaping hides them), case-insensitively. No compression is configured anywhere on these paths,
so a plaintext leak would be there to find; the positive control proves the scanner finds the
values in the ingest partitions. Values are invented and unique to this run; a hit names its kind
and file, never the value.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import random
import re
import string
import subprocess
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path

import pytest
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

from herstelbus.core import contracts
from herstelbus.core.bsn import is_valid_bsn
from herstelbus.core.privacy import private_key_to_pem, public_key_to_pem
from herstelbus.core.topology import STATUS, gemeente_events_topic
from herstelbus.keystore.store import KeyAdmin
from herstelbus.processes import stop
from herstelbus.settings import get_settings
from herstelbus.topics import provision, wanted_topics
from tests.integration.kafka_read import bron_of, read_until, wait_for_line
from tests.integration.keystore_server import running_keystore
from tests.integration.router_world import AMSTERDAM, ROTTERDAM, VECTORS, World

pytestmark = pytest.mark.kafka

INGEST_PARTITION = re.compile(r"uht\.(overdracht|pauzeknop|erkenning)\.v1-[0-9]+(\..*-delete)?")
_CHUNK = 8 << 20
_LETTERS = "GHJKLMNPRTVWXZ"  # postcode letters outside a-f: "1234GH" is never a piece of hex


def _word(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(n)).capitalize()


class Persoon:
    """An invented person: every value distinctive enough not to occur by chance."""

    def __init__(self, rng: random.Random) -> None:
        while not is_valid_bsn(bsn := str(rng.randrange(999_800_000, 999_900_000))):
            pass
        self.bsn = bsn
        self.voornamen, self.achternaam = _word(rng, 10), _word(rng, 12)
        self.postcode = f"{rng.randrange(1000, 10000)} {rng.choice(_LETTERS)}{rng.choice(_LETTERS)}"
        self.mobiel = "".join(rng.choice(string.digits) for _ in range(8))
        self.email = f"{self.voornamen.lower()}.{self.achternaam.lower()}@lekscan.example"

    def persoon(self) -> dict:
        return {"bsn": self.bsn, "voornamen": self.voornamen, "voorvoegsel": None,
                "achternaam": self.achternaam, "geboortedatum": "1984-02-29"}

    def needles(self) -> dict[str, list[str]]:
        return {"bsn": [self.bsn], "naam": [self.voornamen, self.achternaam],
                "postcode": [self.postcode, self.postcode.replace(" ", "")],
                "telefoon": [f"+316{self.mobiel}", f"06{self.mobiel}"], "email": [self.email]}


def _vector(name: str) -> dict:
    return copy.deepcopy(json.loads((VECTORS / f"{name}.json").read_text()))


def _events(people: list[Persoon], dossier: str) -> list[dict]:
    p1, p2, p3, p4, p5 = people[:5]
    at = "2025-06-02T10:00:00Z"

    def overdracht(who: Persoon, partner: Persoon, gm: str, contactwens: str, nr: str) -> dict:
        e = _vector("overdracht_volledig")
        e.update(event_id=str(uuid.uuid4()), occurred_at=at, dossiernummer=f"{dossier}{nr}", volgnummer=1,
                 gemeentecode=gm, persoon=who.persoon(), telefoon=f"+316{who.mobiel}", email=who.email,
                 contactwens=contactwens)
        e["adres"]["postcode"] = who.postcode
        e["toeslagpartner"] = {**partner.persoon(), "gemeentecode": gm}
        return e

    pauze = _vector("pauzeknop_start")
    pauze.update(event_id=str(uuid.uuid4()), occurred_at=at, dossiernummer=f"{dossier}1", volgnummer=2,
                 rol="OUDER", gemeentecode=AMSTERDAM, persoon=p1.persoon())
    erkenning = _vector("erkenning")
    erkenning.update(event_id=str(uuid.uuid4()), occurred_at=at, dossiernummer=f"{dossier}2", volgnummer=2,
                     gemeentecode=ROTTERDAM, persoon=p3.persoon())
    vow = _vector("overdracht_minimaal")  # VOW: unroutable, sealed for ops
    vow.update(event_id=str(uuid.uuid4()), occurred_at=at, dossiernummer=f"{dossier}3", persoon=p5.persoon())
    return [overdracht(p1, p2, AMSTERDAM, "JA", "1"), overdracht(p3, p4, ROTTERDAM, "NEE", "2"), pauze, erkenning, vow]


def _not_avro(who: Persoon) -> bytes:
    """What a broken UHT producer might send: JSON with personal data. A dead letter, sealed for ops."""
    return json.dumps({"type": "overdracht", "persoon": who.persoon(), "postcode": who.postcode,
                       "telefoon": f"+316{who.mobiel}", "email": who.email}).encode()


def _regions(fd: int, size: int) -> Iterable[tuple[int, int]]:
    """The data regions of a file, skipping holes: Kafka preallocates sparse 10 MB index files."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
            end = os.lseek(fd, start, os.SEEK_HOLE)
        except OSError:  # ENXIO: no data after pos; or no SEEK_DATA support: read it all
            if pos == 0 and not hasattr(os, "SEEK_DATA"):
                yield 0, size
            return
        yield start, min(end, size)
        pos = end


def _found_in(path: Path, needles: dict[bytes, str]) -> set[str]:
    """Kinds of the needles in ``path`` (bytes, case-insensitive)."""
    overlap = max(map(len, needles)) - 1
    kinds: set[str] = set()
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, IsADirectoryError):
        return kinds  # the broker deleted or rolled it meanwhile
    try:
        size = os.fstat(fd).st_size
        for start, end in _regions(fd, size):
            pos, tail = start, b""
            while pos < end:
                chunk = os.pread(fd, min(_CHUNK, end - pos), pos)
                if not chunk:
                    break
                window = (tail + chunk).lower()
                kinds |= {kind for needle, kind in needles.items() if needle in window}
                tail, pos = window[-overlap:], pos + len(chunk)
    finally:
        os.close(fd)
    return kinds


def scan(roots: Iterable[Path], needles: dict[bytes, str], skip=lambda p: False) -> list[tuple[str, str]]:
    hits = []
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not skip(Path(folder) / d)]
            for name in files:
                path = Path(folder) / name
                if not skip(path):
                    hits += [(kind, str(path)) for kind in sorted(_found_in(path, needles))]
    return hits


def _commit_end(bootstrap: str, topic: str, group: str) -> None:
    """The gemeente's group starts at the topic's current end: it reads this test's records only,
    not what other tests routed to the same gemeente (sealed with keys this test does not have)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(parts)
        consumer.seek_to_end()
        consumer.commit({tp: OffsetAndMetadata(consumer.position(tp), "", -1) for tp in parts})
    finally:
        consumer.close()


@pytest.mark.timeout(900)
def test_no_personal_data_outside_ingest_key_store_and_sink(kafka, tmp_path: Path) -> None:
    if kafka.data_dir is None:
        pytest.skip("needs the broker's data dir: a broker this session or `herstelbus kafka up` started")
    provision(kafka.bootstrap, wanted_topics(get_settings().topic_policy(), dt.date(2025, 1, 1)), 1)
    scanned, outside = tmp_path / "scanned", tmp_path / "outside"  # logs and data dirs / key store, sink
    scanned.mkdir()
    outside.mkdir()
    world = World(outside, kafka.bootstrap)
    env = {**world.env, "HERSTELBUS_DATA_DIR": str(scanned / "data"), "HERSTELBUS_STALL_AFTER_S": "30"}
    (outside / "signing.pub.pem").write_bytes(public_key_to_pem(world.signing.public_key()))
    admin = KeyAdmin(world.store)
    tokens = {gm: admin.issue_token(gm, "test") for gm in world.gemeenten}
    for gm, key in world.gemeenten.items():
        (outside / "keys" / gm).mkdir(parents=True)
        (outside / "keys" / gm / f"{gm}.pem").write_bytes(private_key_to_pem(key))
    world.store.close()

    rng = random.Random(uuid.uuid4().int)
    people = [Persoon(rng) for _ in range(6)]
    events = _events(people, f"UHT-2025-{rng.randrange(10**5):05d}")
    groups = {gm: f"herstelbus-gemeente-{gm}-leakscan-{uuid.uuid4().hex[:8]}" for gm in world.gemeenten}
    for gm, group in groups.items():
        _commit_end(kafka.bootstrap, gemeente_events_topic(gm), group)

    def start(args: list[str], log: Path) -> subprocess.Popen:
        with open(log, "w") as out:
            return subprocess.Popen([sys.executable, "-m", "herstelbus", *args], env={**os.environ, **env},
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    router_log = scanned / "router.log"
    router = start(["router"], router_log)
    try:
        wait_for_line(router_log, "Worker ready", alive=lambda: router.poll() is None)
        positions = set(world.publish([*events, _not_avro(people[5])]))
        receipts: dict = {}

        def all_receipted(seen: list) -> bool:
            for message in seen:
                record = contracts.decode(message.value)[1]
                if bron_of(record) in positions:
                    receipts[bron_of(record)] = record["status"]
            return router.poll() is not None or positions <= set(receipts)

        read_until(kafka.bootstrap, STATUS, all_receipted, timeout=240)
    finally:
        assert stop(router, timeout_s=30) == 0, router_log.read_text()[-3000:]
    assert sorted(receipts.values()) == ["INVALID", "ROUTED", "ROUTED", "ROUTED", "ROUTED", "UNROUTABLE"], \
        router_log.read_text()[-3000:]

    sink = outside / "sink"
    with running_keystore(env, scanned / "keystore.log") as base:
        for gm in world.gemeenten:
            run_env = {**os.environ, **env, "HERSTELBUS_KEYSTORE_API": base, "HERSTELBUS_GEMEENTE_TOKEN": tokens[gm],
                       "HERSTELBUS_EXCHANGE_VERIFY_KEY_FILE": str(outside / "signing.pub.pem")}
            done = subprocess.run([sys.executable, "-m", "herstelbus", "gemeente", "consume", gm, "--key-dir",
                                   str(outside / "keys" / gm), "--sink", f"jsonl:{sink}", "--ack", "--once",
                                   "--group-id", groups[gm]],
                                  env=run_env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
            (scanned / f"consume-{gm}.out").write_text(done.stdout + done.stderr)
            assert done.returncode == 0, done.stderr[-3000:]
            assert "refused 0" in done.stdout and "acked 2" in done.stdout, done.stdout

    routed_ids = {e["event_id"] for e in events[:4]}
    acks_log = scanned / "acks.log"
    relay = start(["acks"], acks_log)
    try:
        relayed: set[str] = set()

        def acks_relayed(seen: list) -> bool:
            for message in seen:
                record = contracts.decode(message.value)[1]
                if record.get("status") == "ONTVANGEN" and str(record.get("event_id")) in routed_ids:
                    relayed.add(str(record["event_id"]))
            return relay.poll() is not None or relayed == routed_ids

        read_until(kafka.bootstrap, STATUS, acks_relayed, timeout=300)
    finally:
        assert stop(relay, timeout_s=30) == 0, acks_log.read_text()[-3000:]
    assert relayed == routed_ids, acks_log.read_text()[-3000:]

    # The flow delivered the personal data to the gemeenten: the sink holds it (outside the scan).
    in_sink = b"".join(p.read_bytes() for p in sink.glob("*.jsonl"))
    assert all(p.bsn.encode() in in_sink for p in people[:4])

    needles = {v.lower().encode(): kind for p in people for kind, values in p.needles().items() for v in values}
    # Positive control: the scanner finds the input in the ingest partitions, which hold plaintext.
    ingest = [d for d in kafka.data_dir.iterdir() if INGEST_PARTITION.fullmatch(d.name)]
    in_ingest = {kind for kind, _ in scan(ingest, needles)}
    assert in_ingest == {"bsn", "naam", "postcode", "telefoon", "email"}

    roots = [kafka.data_dir, kafka.logs_dir, scanned]
    hits = scan(roots, needles, skip=lambda p: p.parent == kafka.data_dir and bool(INGEST_PARTITION.fullmatch(p.name)))
    assert hits == [], "personal data found (kind, file): " + repr(hits[:20])
    assert {p.name for p in scanned.iterdir()} >= {"router.log", "acks.log", "keystore.log", "data"}
