"""A fetched batch holding a header name that is not UTF-8 reaches the worker whole (aiokafka's
own reader, a real record batch; no broker needed for the bytes a broker would hand over)."""

from __future__ import annotations

import gzip  # noqa: F401 - the codec aiokafka needs for the compressed case

import pytest
from aiokafka.consumer import fetcher
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from herstelbus import fetchguard
from herstelbus.core.privacy.ops import frame_record

NAME = b"\xffce_type"


class _WireName(str):
    """A header name whose bytes on the wire are not UTF-8 (what a librdkafka client may write)."""

    def encode(self, *_: object, **__: object) -> bytes:
        return NAME


def _batch(base_offset: int, compression: int) -> bytes:
    builder = _DefaultRecordBatchBuilderPy(magic=2, compression_type=compression, is_transactional=False,
                                        producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                        batch_size=1 << 20)
    for delta, headers in enumerate(([("ce_id", b"1")], [(_WireName("x"), b"2"), ("ok", b"3")], [])):
        builder.append(delta, timestamp=1_700_000_000_000 + delta, key=b"k%d" % delta, value=b"v%d" % delta,
                       headers=headers)
    data = builder.build()
    data[0:8] = base_offset.to_bytes(8, "big")  # the offset a broker assigns
    return bytes(data)


def _fetch(data: bytes, from_offset: int) -> list:
    tp = TopicPartition("uht.overdracht.v1", 0)
    return list(fetcher.PartitionRecords(tp, fetcher.MemoryRecords(data), [], from_offset, None, None, False,
                                         fetcher.READ_UNCOMMITTED))


@pytest.fixture
def unguarded(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiokafka as shipped for the test, whatever another test installed; restored afterwards."""
    records = fetcher.PartitionRecords
    original = getattr(records._unpack_records, "__wrapped__", records._unpack_records)
    monkeypatch.setattr(records, "_unpack_records", original)
    monkeypatch.setattr(records, "_herstelbus_patched", False, raising=False)
    monkeypatch.setattr(fetcher, "MemoryRecords", MemoryRecords)


@pytest.mark.parametrize("compression", [0, 1], ids=["plain", "gzip"])
def test_a_non_utf8_header_name_no_longer_stops_the_fetch(unguarded: None, compression: int) -> None:
    data = _batch(40, compression) + _batch(43, compression)
    with pytest.raises(UnicodeDecodeError):  # aiokafka on its own: the worker's fetcher ended here
        _fetch(data, 40)
    fetchguard.install()
    records = _fetch(data, 41)  # a fetch that starts inside the batch skips what came before
    assert [r.offset for r in records] == [41, 42, 43, 44, 45]
    assert [r.value for r in records] == [b"v1", b"v2", b"v0", b"v1", b"v2"]
    name, value = records[0].headers[0]
    assert value == b"2" and records[0].headers[1] == ("ok", b"3")
    assert isinstance(name, fetchguard.WireName) and name.encode("utf-8") == NAME
    assert type(records[0].headers[1][0]) is str  # a valid name stays a plain str
    # The dead letter's sealed original holds the name's own bytes.
    assert NAME in frame_record(records[0].key, records[0].value, list(records[0].headers))


def test_another_aiokafka_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import aiokafka

    monkeypatch.setattr(aiokafka, "__version__", "0.15.0")
    with pytest.raises(RuntimeError, match="review it before upgrading"):
        fetchguard.install()


def test_kafka_python_reads_a_non_utf8_header_name_too() -> None:
    """The SDKs and ops tools (reconcile failed with CorruptRecordError on such a record)."""
    from kafka.record.default_records import DefaultRecordBatchBuilder
    from kafka.record.memory_records import MemoryRecords as KafkaPythonRecords

    import herstelbus.kafkaclient  # noqa: F401 - installs the guard, as for every client made there

    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for offset, headers in enumerate(([("a", b"1")], [(_WireName("x"), b"2")], [("c", b"3")])):
        builder.append(offset, timestamp=1_700_000_000_000, key=None, value=b"v%d" % offset, headers=headers)
    batch = KafkaPythonRecords(bytes(builder.build())).next_batch()
    records = list(batch)
    assert [r.value for r in records] == [b"v0", b"v1", b"v2"]
    assert records[1].headers[0][0].encode("utf-8") == NAME  # its own bytes, for whoever writes it again
    assert records[2].headers == [("c", b"3")] and type(records[2].headers[0][0]) is str
