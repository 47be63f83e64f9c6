"""Every input's dead letter fits the ops topic; one that would not is recorded without its original."""

import datetime as dt

from herstelbus.core import contracts
from herstelbus.core import routing as r
from herstelbus.core.contracts.errors import ValidationError
from herstelbus.core.privacy import generate_gemeente_key
from herstelbus.core.privacy.ops import frame_record, open_for_ops
from herstelbus.core.topology import DEADLETTER, MAX_MESSAGE_BYTES, OPS_MAX_MESSAGE_BYTES, topic_specs
from herstelbus.router.pipeline import ORIGINEEL_MAX_BYTES, Pipeline

NOW = dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)
BRON = r.KafkaRef("uht.overdracht.v1", 2, 41)


def _letter(value: bytes) -> tuple[dict, bytes, object]:
    ops = generate_gemeente_key()
    pipeline = Pipeline(sealer=None, secret=None, ops_key=ops.public_key(),
                        source=contracts.source_urn("00000001003214345000", "herstelbus"))
    plan = pipeline.dead_letter("overdracht", None, [ValidationError("TE_GROOT", "")], BRON, b"k", value,
                                [("ce_type", b"x")], NOW)
    (out,) = plan.outputs
    return contracts.decode(out.value)[1], out.value, ops


def test_the_largest_input_the_ingest_topics_take_is_dead_lettered_whole_within_the_ops_limit() -> None:
    value = bytes(range(256)) * (MAX_MESSAGE_BYTES // 256)
    letter, wire, ops = _letter(value)
    assert len(wire) < OPS_MAX_MESSAGE_BYTES
    assert open_for_ops(letter["origineel"], ops, str(letter["deadletter_id"])) == frame_record(
        b"k", value, [("ce_type", b"x")])


def test_an_input_too_large_for_the_ops_topic_is_named_by_its_position_not_carried() -> None:
    letter, wire, _ = _letter(b"\x00" * (ORIGINEEL_MAX_BYTES + 1))
    assert letter["origineel"] == b"" and letter["bron"] == {"topic": BRON.topic, "partition": 2, "offset": 41}
    assert letter["reden"] == "TE_GROOT" and len(wire) < 10_000


def test_the_ops_topics_take_twice_what_every_other_topic_takes() -> None:
    limits = {spec.name: int(spec.configs["max.message.bytes"]) for spec in topic_specs(["GM0363"])}
    assert limits.pop(DEADLETTER) == limits.pop("herstel.unroutable.v1") == OPS_MAX_MESSAGE_BYTES
    assert set(limits.values()) == {MAX_MESSAGE_BYTES}
