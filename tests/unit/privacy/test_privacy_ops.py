"""Originals of dead letters and unroutable events: sealed to ops, bound to their dead letter."""

import pytest

from herstelbus.core.privacy import Tampered, generate_gemeente_key, key_id_for
from herstelbus.core.privacy.ops import frame_record, open_for_ops, seal_for_ops, unframe_record

RECORD = (b"UHT-2021-000123", b"\xc3\x01 invalid body with 999990019", [("ce_id", b"x"), ("leeg", None)])


def test_frame_round_trip_keeps_nulls_and_header_order() -> None:
    assert unframe_record(frame_record(*RECORD)) == RECORD
    assert unframe_record(frame_record(None, None, [])) == (None, None, [])


def test_only_ops_opens_and_only_in_its_context() -> None:
    ops, other = generate_gemeente_key(), generate_gemeente_key()
    blob, key_id = seal_for_ops(frame_record(*RECORD), ops.public_key(), "dl-1")
    assert key_id == key_id_for(ops.public_key())
    assert b"999990019" not in blob
    assert unframe_record(open_for_ops(blob, ops, "dl-1")) == RECORD
    with pytest.raises(Tampered):
        open_for_ops(blob, ops, "dl-2")  # moved to another dead letter
    with pytest.raises(Tampered):
        open_for_ops(blob, other, "dl-1")
    with pytest.raises(Tampered):
        open_for_ops(blob[:-1] + bytes([blob[-1] ^ 1]), ops, "dl-1")
