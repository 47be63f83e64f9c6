"""Scenario 7 (issue 10): fuzz. Malformed input straight to the ingest topics, past UHT's publisher.

On a broker of its own (a record no router gets past would stall every later router test on the
session's broker: they share one consumer group), the router gets raw records written with
kafka-python: JSON documents drawn by hypothesis (``@given`` run with ``@seed``, generation phase
only: the same seed gives the same documents) and UHT's JSON Lines where Avro belongs; random
bytes; the Avro marker with random fingerprints and bodies; valid synthetic events
(``contracts.encode``) truncated or with bits flipped; a valid event of another type on the wrong
topic; valid records of other contracts (receipts, dead letters, routed events); events with
random field values, invalid BSNs, unknown gemeentecodes; values close to the broker's limit;
random keys and headers. Everything but the hypothesis documents comes from one seeded RNG.

Every input is malformed by construction: a mutation the contracts still accept is drawn again
(``_refused``). So each gets an INVALID receipt with a reason code and a dead letter at its
``doel``; the validly encoded events with an unknown gemeentecode get UNROUTABLE and a record on
herstel.unroutable.v1. Nothing is routed, the router never ends itself (no exit 70, no
``router_bug``), and no receipt or dead letter (outside its sealed original) holds any personal
data of the valid-looking inputs.

Records that once stopped the router have a test each at the end: a value whose dead letter was
larger than the router's producer could send (faust's 1,000,000-byte default request limit, below
the broker's 1 MiB; now the ops topics and producers take twice Kafka's record limit), and a header
name that is not UTF-8 (aiokafka decoded it strictly; now ``herstelbus.fetchguard``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

import pytest
from kafka import KafkaProducer

from herstelbus.connectors.uht.publish import UHT_OIN
from herstelbus.core import contracts
from herstelbus.core.contracts.evolution import samples
from herstelbus.core.topology import DEADLETTER, INGEST, UNROUTABLE
from herstelbus.router.pipeline import TOPIC_TYPES
from tests.reliability import figures
from tests.reliability.harness import (
    Pos, RouterProcess, Scenario, bron_of, check, from_start, own_broker, read_range, scenario, valid_events,
    wait_drained,
)

pytestmark = pytest.mark.kafka

INPUTS = figures.size(1_500, 100_000)
HYPOTHESIS_JSON = figures.size(300, 5_000)  # hypothesis draws ~200 a second here: the rest is seeded RNG
OVERSIZE = figures.size(3, 20)
BASE_EVENTS = figures.size(400, 5_000)  # the valid synthetic events the mutations start from
# The dead letter embeds the input sealed plus ~730 bytes: above this input size it did not fit
# faust's default producer limit (1,000,000 bytes); the ingest topics take records up to 1,048,588.
DEAD_LETTER_FITS = 990_000
BROKER_TAKES = 1_040_000

TOPIC_OF = {record_type: topic for topic, record_type in TOPIC_TYPES.items()}
SOURCE = contracts.source_urn(UHT_OIN, "uht")
PII_FIELDS = frozenset({"bsn", "voornamen", "achternaam", "postcode", "telefoon", "email", "dossiernummer",
                        "besluitkenmerk", "straat"})
NOT_TEXT = frozenset({"origineel", "sleutel_id", "event_id", "status_id", "deadletter_id", "ack_id", "at"})
CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
# Shares of the inputs after the hypothesis documents and the oversize ones.
KINDS = (("json_event", 6), ("random_bytes", 12), ("marker_random", 8), ("truncated", 12), ("bitflip", 14),
         ("wrong_topic", 6), ("wrong_schema", 5), ("bad_values", 16), ("bad_bsn", 9), ("unknown_gemeente", 12))


@dataclass
class Input:
    kind: str
    topic: str
    value: bytes | None
    key: bytes | None = b"fuzz"
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    expect: str = "INVALID"
    pii: frozenset[str] = frozenset()  # personal data in the input that must not come back


# -- the inputs -------------------------------------------------------------------------------------
def hypothesis_json(count: int, seed: int) -> list[Any]:
    """``count`` JSON documents from hypothesis, reproducible by ``seed`` (no database, no shrinking)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
    documents = st.recursive(leaves, lambda inner: st.lists(inner, max_size=6)
                             | st.dictionaries(st.text(max_size=20), inner, max_size=6), max_leaves=20)
    # Shaped like UHT's events, so a parser that reads JSON at all gets past the first brace.
    events = st.fixed_dictionaries({
        "type": st.sampled_from(["overdracht", "pauzeknop", "erkenning", "statusbericht"]) | st.text(max_size=12),
        "event_id": st.uuids().map(str) | st.text(max_size=40),
        "occurred_at": st.datetimes().map(dt.datetime.isoformat) | st.integers(),
        "persoon": st.dictionaries(st.sampled_from(["bsn", "voornamen", "achternaam", "geboortedatum"]), leaves),
        "gemeentecode": st.from_regex(r"GM[0-9]{4}", fullmatch=True) | st.text(max_size=8) | st.none(),
    }, optional={"volgnummer": st.integers(), "extra": documents})
    drawn: list[Any] = []

    @hypothesis_seed(seed)
    @settings(max_examples=count, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(documents | events)
    def collect(document: Any) -> None:
        drawn.append(document)

    collect()
    return drawn


def _refused(topic: str, value: bytes | None) -> bool:
    """Whether the contracts refuse ``value`` on ``topic`` (as the router decides INVALID)."""
    try:
        record_type, record = contracts.decode(value or b"")
    except Exception:  # noqa: BLE001 - WireError; anything else the router's bug path dead-letters
        return True
    return record_type != TOPIC_TYPES[topic] or bool(contracts.validate(record_type, record))


def _pii(record: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(record, dict):
        for name, value in record.items():
            if name in PII_FIELDS and isinstance(value, str) and len(value) >= 4:
                found.add(value)
            found |= _pii(value)
    return found


ALPHABET = "abcdefghijklmnopqrstuvwxyz 0123456789\x00\x01\x1f\x7f\u200b\ufeff\u202eéøßЖ中文😀𝔘<>&\"'\\/%{}$;"


def _random_text(rng: Random, longest: int = 5_000) -> str:
    length = rng.choice((0, 1, rng.randint(2, 40), rng.randint(41, 300), rng.randint(300, 5_000)))
    return "".join(rng.choices(ALPHABET, k=min(length, longest)))


def _random_like(rng: Random, value: Any) -> Any:
    """Another value of ``value``'s type (what Avro can still carry), often one no rule allows."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return rng.choice((0, -1, 2**31 - 1, -(2**31), rng.randint(-10**6, 10**6)))
    if isinstance(value, dt.datetime):
        utc = dt.timezone.utc
        return rng.choice((dt.datetime(1970, 1, 1, tzinfo=utc), dt.datetime(2200, 1, 1, tzinfo=utc),
                           dt.datetime.now(utc) + dt.timedelta(days=rng.randint(1, 3_000))))
    if isinstance(value, dt.date):
        return rng.choice((dt.date(1, 1, 1), dt.date(9999, 12, 31),
                           dt.date(1850, 1, 1) + dt.timedelta(days=rng.randint(0, 150_000))))
    if isinstance(value, uuid.UUID):
        return rng.choice((uuid.UUID(int=0), uuid.UUID(int=rng.getrandbits(128))))
    return _random_text(rng)


def _leaves(record: dict, prefix: tuple = ()) -> list[tuple]:
    paths = []
    for name, value in record.items():
        if isinstance(value, dict):
            paths += _leaves(value, (*prefix, name))
        elif value is not None:
            paths.append((*prefix, name))
    return paths


def _with(record: dict, path: tuple, value: Any) -> dict:
    copy = dict(record)
    copy[path[0]] = _with(record[path[0]], path[1:], value) if len(path) > 1 else value
    return copy


class Fuzzer:
    """Malformed inputs from valid synthetic events and a seeded RNG."""

    def __init__(self, rng: Random, base: list[tuple[str, dict]]) -> None:
        self.rng = rng
        self.base = [(t, r, contracts.encode(t, r), contracts.headers_for(t, r, source=SOURCE)) for t, r in base]
        self.others = [(t, s) for t in contracts.get_catalogue().types() if t not in TOPIC_OF
                       for s in samples(contracts.get_catalogue().current(t).schema)]

    def pick(self) -> tuple[str, dict, bytes, list]:
        return self.rng.choice(self.base)

    def fresh(self, record: dict) -> dict:
        return dict(record, event_id=uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def random_bytes(self, size: int | None = None) -> bytes:
        if size is None:
            size = self.rng.choice((0, 1, 2, 9, 10, self.rng.randint(3, 64), self.rng.randint(65, 2_000)))
        return self.rng.randbytes(size)

    def make(self, kind: str) -> Input:
        """One input of ``kind``; mutations the contracts would accept are drawn again."""
        for _ in range(50):
            made = getattr(self, f"_{kind}")()
            if made.value is None and kind != "random_bytes":  # Avro could not carry the mutation
                continue
            if made.expect != "INVALID" or _refused(made.topic, made.value):
                return made
        return self._bad_bsn()

    def topic(self) -> str:
        return self.rng.choice(INGEST)

    def _json_event(self) -> Input:
        record_type, record, _, headers = self.pick()
        line = contracts.dumps(record_type, record).encode()
        if self.rng.random() < 0.3:
            line = line[:self.rng.randint(0, len(line))]
        return Input("json_event", TOPIC_OF[record_type], line, headers=headers, pii=frozenset(_pii(record)))

    def _random_bytes(self) -> Input:
        value = self.random_bytes()
        if self.rng.random() < 0.05:
            value = None  # a tombstone: no value at all
        return Input("random_bytes", self.topic(), value, key=self.random_bytes(16))

    def _marker_random(self) -> Input:
        _, _, encoded, _ = self.pick()
        fingerprint = encoded[2:10] if self.rng.random() < 0.5 else self.random_bytes(8)
        return Input("marker_random", self.topic(), b"\xc3\x01" + fingerprint + self.random_bytes())

    def _truncated(self) -> Input:
        record_type, record, encoded, headers = self.pick()
        return Input("truncated", TOPIC_OF[record_type], encoded[:self.rng.randrange(len(encoded))],
                     headers=headers, pii=frozenset(_pii(record)))

    def _bitflip(self) -> Input:
        record_type, record, encoded, headers = self.pick()
        flipped = bytearray(encoded)
        for _ in range(self.rng.choice((1, 1, 2, 3, 8))):
            flipped[self.rng.randrange(len(flipped))] ^= 1 << self.rng.randrange(8)
        return Input("bitflip", TOPIC_OF[record_type], bytes(flipped), headers=headers, pii=frozenset(_pii(record)))

    def _wrong_topic(self) -> Input:
        record_type, record, _, headers = self.pick()
        record = self.fresh(record)
        topic = self.rng.choice([t for t in INGEST if t != TOPIC_OF[record_type]])
        return Input("wrong_topic", topic, contracts.encode(record_type, record), headers=headers,
                     pii=frozenset(_pii(record)))

    def _wrong_schema(self) -> Input:
        record_type, record = self.rng.choice(self.others)
        return Input("wrong_schema", self.topic(), contracts.encode(record_type, record, checked=False))

    def _encoded(self, kind: str, record_type: str, record: dict, headers: list, pii: set[str]) -> Input:
        try:
            value = contracts.encode(record_type, record, checked=False)
        except contracts.ContractError:  # Avro cannot carry it (an enum symbol): drawn again
            value = None
        return Input(kind, TOPIC_OF[record_type], value, headers=headers, pii=frozenset(pii | _pii(record)))

    def _bad_values(self) -> Input:
        record_type, record, _, headers = self.pick()
        changed = self.fresh(record)
        for _ in range(self.rng.choice((1, 1, 2, 4))):
            path = self.rng.choice([p for p in _leaves(changed) if p != ("event_id",)])
            changed = _with(changed, path, _random_like(self.rng, _get(changed, path)))
        return self._encoded("bad_values", record_type, changed, headers, _pii(record))

    def _bad_bsn(self) -> Input:
        record_type, record, _, headers = self.pick()
        bsn = record["persoon"]["bsn"]
        wrong = self.rng.choice((bsn[:-1] + str((int(bsn[-1]) + 1) % 10), bsn[:8], bsn + "0", "000000000",
                                 "12345678A", f"{self.rng.randrange(10**9):09d}"))
        changed = _with(self.fresh(record), ("persoon", "bsn"), wrong)
        return self._encoded("bad_bsn", record_type, changed, headers, _pii(record))

    def _unknown_gemeente(self) -> Input:
        record_type, record, _, headers = self.pick()
        changed = dict(self.fresh(record), woonsituatie="BINNENLAND", gemeentecode=f"GM{self.rng.randint(9000, 9999)}")
        made = self._encoded("unknown_gemeente", record_type, changed, headers, _pii(record))
        made.expect = "INVALID" if _refused(made.topic, made.value) else "UNROUTABLE"
        return made

    def oversize(self, size: int) -> Input:
        """A value of ``size`` bytes: random bytes, or an event whose name holds them as text."""
        if self.rng.random() < 0.5:
            return Input("oversize", self.topic(), self.random_bytes(size))
        record_type, record, encoded, headers = self.pick()
        filler = "x" * (size - len(encoded) - 8)
        changed = _with(self.fresh(record), ("persoon", "voornamen"), filler)
        return self._encoded("oversize", record_type, changed, headers, _pii(record))

    def odd_key_and_headers(self, made: Input) -> Input:
        """Now and then a random key (none, empty, long) and random headers."""
        if self.rng.random() < 0.15:
            made.key = self.rng.choice((None, b"", self.random_bytes(), self.random_bytes(10_000)))
            if made.value is None and made.key is None:
                made.key = b""
        if self.rng.random() < 0.15:
            made.headers = [(_random_text(self.rng, 50), self.rng.choice((b"", self.random_bytes())))
                            for _ in range(self.rng.randint(0, 12))]
        return made


def _get(record: dict, path: tuple) -> Any:
    for name in path:
        record = record[name]
    return record


def fuzz_inputs(rng: Random, seed: int, count: int) -> list[Input]:
    fuzzer = Fuzzer(rng, valid_events(BASE_EVENTS, seed))
    inputs = [Input("hypothesis_json", fuzzer.topic(),
                    json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass"))
              for doc in hypothesis_json(HYPOTHESIS_JSON, seed)]
    inputs += [fuzzer.oversize(rng.randint(DEAD_LETTER_FITS - 90_000, BROKER_TAKES)) for _ in range(OVERSIZE)]
    names, weights = zip(*KINDS, strict=True)
    inputs += [fuzzer.make(kind) for kind in rng.choices(names, weights, k=count - len(inputs))]
    # Not the oversize ones: a key or headers on top could take them past what the broker accepts.
    inputs = [made if made.kind == "oversize" else fuzzer.odd_key_and_headers(made) for made in inputs]
    rng.shuffle(inputs)
    return inputs


# -- on the broker ----------------------------------------------------------------------------------
def write(bootstrap: str, inputs: list[Input]) -> list[Pos]:
    """Raw records, as any client could write them; each input's position once acknowledged."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_request_size=1_100_000)
    try:
        futures = [producer.send(i.topic, key=i.key, value=i.value, headers=i.headers) for i in inputs]
        producer.flush()
        return [(m.topic, m.partition, m.offset) for m in (f.get(timeout=60) for f in futures)]
    finally:
        producer.close()


def _without_original(letter: dict) -> dict:
    return {k: v for k, v in letter.items() if k != "origineel"}  # up to 1 MB each, never opened here


def _text(record: dict) -> str:
    """A receipt or dead letter as text, without its sealed original and its ids (random hex and
    digits that a nine-digit BSN could match by chance)."""
    return json.dumps({k: v for k, v in record.items() if k not in NOT_TEXT}, default=str)


@dataclass
class FuzzOutcome:
    figures: dict[str, Any]
    failures: list[str]


def check_fuzz(bootstrap: str, inputs: list[Input], positions: list[Pos], receipts: list[dict]) -> FuzzOutcome:
    """Per input: the receipt status it must get, a reason code, its dead letter (or unroutable
    record) at the receipt's ``doel`` with the same reason and source, and no personal data back."""
    held = {(m.topic, m.offset): _without_original(contracts.decode(m.value)[1])
            for m in read_range(bootstrap, from_start(bootstrap, (DEADLETTER, UNROUTABLE)))}
    receipt_of = {bron_of(r): r for r in receipts}
    failures: Counter = Counter()
    examples: dict[str, str] = {}
    statuses, reasons, kinds = Counter(), Counter(), Counter()

    def fail(what: str, made: Input, position: Pos) -> None:
        failures[what] += 1
        examples.setdefault(what, f"{made.kind} at {position}")

    for made, position in zip(inputs, positions, strict=True):
        kinds[made.kind] += 1
        receipt = receipt_of.get(position)
        if receipt is None:
            continue  # check() counts it as lost
        statuses[receipt["status"]] += 1
        reasons[receipt["reden"]] += 1
        if receipt["status"] != made.expect:
            fail(f"{made.expect} expected, got {receipt['status']}", made, position)
        if not CODE.fullmatch(receipt["reden"] or ""):
            fail("a receipt without a reason code", made, position)
        doel = receipt.get("doel") or {}
        letter = held.get((doel.get("topic"), doel.get("offset")))
        wanted = DEADLETTER if receipt["status"] == "INVALID" else UNROUTABLE
        if letter is None or doel.get("topic") != wanted:
            fail(f"no record on {wanted} at the receipt's doel", made, position)
        elif bron_of(letter) != position or letter["reden"] != receipt["reden"] or not all(
                CODE.fullmatch(f["reden"]) for f in letter["fouten"]):
            fail("a dead letter that is not this input's, or without reason codes", made, position)
        seen = _text(receipt) + (_text(letter) if letter else "")
        if any(value in seen for value in made.pii):
            fail("personal data in a receipt or dead letter", made, position)
    return FuzzOutcome({
        "kinds": dict(sorted(kinds.items())), "statuses": dict(sorted(statuses.items())),
        "dead_lettered": statuses["INVALID"], "reasons": dict(reasons.most_common(12)),
        "reason_codes": len(reasons),
    }, [f"{n} x {what}, e.g. {examples[what]}" for what, n in failures.items()])


def run_fuzz(sc: Scenario, kafka: Any, tmp_path: Path, inputs: list[Input],
             drain_s: float) -> tuple[Any, FuzzOutcome, RouterProcess, int | None]:
    """The router under supervise, the inputs written, drained; then every check."""
    router = RouterProcess(sc.world, tmp_path / "router.log")

    def running() -> None:
        assert router.alive(), f"the router ended, exit {router.proc.returncode} (seed {sc.seed}):\n{_errors(router)}"
        assert router.self_restarts() == 0, f"the router ended itself, exit 70 (seed {sc.seed}):\n{_errors(router)}"

    router.start()
    try:
        positions = write(kafka.bootstrap, inputs)
        wait_drained(sc.watch, positions, drain_s, running)
        running()
    finally:
        exit_code = router.stop()
        sc.watch.close()
    outcome = check(sc.world, sc.watch, positions, sc.since_ends, sc.started, tmp_path / "sinks")
    fuzz = check_fuzz(kafka.bootstrap, inputs, positions, sc.watch.for_positions(positions))
    return outcome, fuzz, router, exit_code


def _errors(router: RouterProcess, most: int = 6) -> str:
    """The router's error lines (its own and faust's; the cause is rarely in the log's tail)."""
    lines = [line[:700] for line in router.text().splitlines()
             if ('"level": "error"' in line or '"level": "critical"' in line) and '"logger": "aiokafka' not in line]
    return "\n".join(lines[-most:])


def _router_bugs(router: RouterProcess) -> int:
    """Inputs that made the pipeline raise (caught, dead-lettered VERWERKINGSFOUT): a bug all the same."""
    return router.text().count('"router_bug"')


def test_fuzz_every_malformed_input_is_dead_lettered_with_a_receipt(tmp_path) -> None:
    with own_broker(tmp_path) as kafka:
        sc = scenario(kafka, tmp_path, "scenario 7", 0)
        made_at = time.monotonic()
        inputs = fuzz_inputs(sc.rng, sc.seed, INPUTS)
        generating_s = time.monotonic() - made_at
        outcome, fuzz, router, exit_code = run_fuzz(sc, kafka, tmp_path, inputs, figures.size(240, 1500))
    figures.record("7 fuzz: malformed input", **outcome.figures, **fuzz.figures,
                   self_restarts=router.self_restarts(), router_bugs=_router_bugs(router), seed=sc.seed,
                   generating_seconds=round(generating_s), seconds=round(time.monotonic() - sc.began))
    assert exit_code == 0, f"exit {exit_code}\n" + router.tail()
    assert not outcome.failures, f"seed {sc.seed}: " + "\n".join(outcome.failures)
    assert not fuzz.failures, f"seed {sc.seed}: " + "\n".join(fuzz.failures)
    assert outcome.figures["routed"] == 0
    assert _router_bugs(router) == 0, router.tail()


class NonUtf8Name(str):
    """A header name whose bytes on the wire are not UTF-8. Header names are bytes in Kafka's
    protocol and a librdkafka client writes any; kafka-python writes ``name.encode("utf-8")``,
    so a str that encodes to other bytes writes what such a client would."""

    def encode(self, *_: Any, **__: Any) -> bytes:
        return b"\xffce_type"


def _oversize_dead_letter(fuzzer: Fuzzer, rng: Random) -> list[Input]:
    """Values the broker takes (up to 1 MiB) whose dead letter (the input sealed, plus ~730 bytes)
    was larger than faust's default ``producer_max_request_size`` (1,000,000) let the router send."""
    return [Input("oversize", topic, fuzzer.random_bytes(rng.randint(DEAD_LETTER_FITS + 10_000, BROKER_TAKES)))
            for topic in INGEST]


def _non_utf8_header_name(fuzzer: Fuzzer, rng: Random) -> list[Input]:
    """A record whose header name is no UTF-8 (aiokafka decodes header names strictly)."""
    return [Input("non_utf8_header_name", topic, fuzzer.random_bytes(rng.randint(10, 100)),
                  headers=[(NonUtf8Name("x"), b"1")]) for topic in INGEST]


@pytest.mark.parametrize("poison", [_oversize_dead_letter, _non_utf8_header_name],
                         ids=["dead_letter_above_producer_limit", "non_utf8_header_name"])
def test_fuzz_record_the_router_cannot_pass_is_dead_lettered(tmp_path, poison: Callable) -> None:
    """Inputs that once stopped the router itself rather than get a dead letter, one on each ingest
    topic with ordinary malformed inputs behind it: each must get its receipt and dead letter like
    any other, the inputs behind it too, and the router must run on. One test each, on a broker of
    its own: were one to end the router again, every restart would meet it, and no later test on a
    shared broker could pass."""
    with own_broker(tmp_path) as kafka:
        sc = scenario(kafka, tmp_path, f"scenario 7, {poison.__name__.strip('_')}", 0)
        fuzzer = Fuzzer(sc.rng, valid_events(20, sc.seed))
        inputs = poison(fuzzer, sc.rng) + [fuzzer.make(kind) for kind in ("random_bytes", "truncated", "bad_bsn") * 10]
        outcome, fuzz, router, exit_code = run_fuzz(sc, kafka, tmp_path, inputs, 120)
    figures.record(f"7 fuzz: {poison.__name__.strip('_')}", **outcome.figures, **fuzz.figures,
                   self_restarts=router.self_restarts(), seed=sc.seed)
    assert exit_code == 0, f"exit {exit_code}\n" + router.tail()
    assert not outcome.failures, f"seed {sc.seed}: " + "\n".join(outcome.failures)
    assert not fuzz.failures, f"seed {sc.seed}: " + "\n".join(fuzz.failures)
