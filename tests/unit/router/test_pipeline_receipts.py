"""A receipt read back from the router's table (a redelivery) is emitted like a new one."""

import datetime as dt
import uuid

from herstelbus.core import contracts
from herstelbus.core import routing as r
from herstelbus.core.privacy import generate_gemeente_key
from herstelbus.router.pipeline import Pipeline, decode_receipt, encode_receipt


def test_stored_receipt_is_emitted_again_unchanged() -> None:
    bron = r.KafkaRef("uht.overdracht.v1", 0, 7)
    receipt = r.unroutable_receipt("overdracht", str(uuid.uuid4()), "VOW", bron=bron,
                                   doel=r.KafkaRef("herstel.unroutable.v1", 0, 3),
                                   at=dt.datetime(2025, 6, 2, tzinfo=dt.timezone.utc))
    stored = decode_receipt(encode_receipt(receipt))  # UUIDs come back as uuid.UUID
    pipeline = Pipeline(sealer=None, secret=None, ops_key=generate_gemeente_key().public_key(),
                        source=contracts.source_urn("00000001003214345000", "herstelbus"))
    again = r.repeat_receipt(stored, record_type="overdracht", event_id=receipt["event_id"], bron=bron,
                             at=dt.datetime(2025, 6, 3, tzinfo=dt.timezone.utc))
    out = pipeline.receipt_out(again)
    assert out.key == receipt["event_id"].encode()
    assert contracts.decode(out.value)[1] == stored
