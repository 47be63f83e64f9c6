"""A record whose header name is not UTF-8 no longer stops a worker or a tool (aiokafka 0.14.0
under faust; kafka-python 3.0.12 under the SDKs and ops tools).

Header names are bytes in Kafka's protocol and a librdkafka client writes any; aiokafka decodes them
strictly as UTF-8 while it reads a fetched batch. The UnicodeDecodeError ended faust's fetcher and
the worker (exit 1), and every restart met the same record again: one such record stopped all
routing. :func:`install` reads a batch that fails so once more with aiokafka's pure-Python reader,
the header names decoded with ``surrogateescape`` (:class:`WireName`, whose ``encode`` gives back the
bytes it had): the record reaches the worker like any other, its dead letter's sealed original
holds the name's own bytes. Logged as ``header_name_not_utf8`` with its position.
kafka-python reads records in Python and failed the same way (CorruptRecordError: reconcile, the
gemeente consumer): :func:`install_kafka_python` reads such a record again with the same lenient
buffer (its batch only; every other record keeps kafka-python's own speed).

Pinned to the versions this was checked against, like :mod:`herstelbus.faustpatch`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from herstelbus.logs import get_logger

CHECKED_VERSION = "0.14.0"
KAFKA_PYTHON_CHECKED_VERSION = "3.0.12"
_log = get_logger("herstelbus.fetchguard")


class _Fetched:
    """aiokafka's MemoryRecords that also keep the fetched bytes, to read them again if need be."""

    __slots__ = ("data", "_records")

    def __init__(self, data: Any) -> None:
        from aiokafka.record.memory_records import MemoryRecords

        self.data = data
        self._records = MemoryRecords(data)

    def size_in_bytes(self) -> int:
        return self._records.size_in_bytes()

    def has_next(self) -> bool:
        return self._records.has_next()

    def next_batch(self) -> Any:
        return self._records.next_batch()


class WireName(str):
    """A header name that was not UTF-8 on the wire: decoded with surrogateescape, and encoded the
    same way by default, so every client that writes or measures it (kafka-python's fetcher counts
    header bytes; redrive writes the original back) gets its own bytes rather than an error."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:  # noqa: ARG002
        return str.encode(self, encoding, "surrogateescape")


class _LenientName(bytes):
    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:  # noqa: ARG002
        try:
            return bytes.decode(self, encoding)
        except UnicodeDecodeError:
            return WireName(bytes.decode(self, encoding, "surrogateescape"))


class _LenientBuffer(bytearray):
    """A batch's buffer whose slices decode leniently (the reader decodes only header names)."""

    def __getitem__(self, index: Any) -> Any:
        got = bytearray.__getitem__(self, index)
        return _LenientName(got) if isinstance(index, slice) else got


def _read_leniently(records: Any, data: Any, error: UnicodeDecodeError) -> Iterator[Any]:
    """The rest of ``data`` from ``records.next_fetch_offset`` on, header names decoded leniently."""
    from aiokafka.record.default_records import _DefaultRecordBatchPy
    from aiokafka.record.memory_records import _MemoryRecordsPy

    tp, batches = records._tp, _MemoryRecordsPy(bytes(data))
    while batches.has_next():
        raw = batches._next_slice
        batches.next_batch()
        batch = _DefaultRecordBatchPy(raw)
        if batch.is_transactional:  # ingest topics are not: such a batch keeps aiokafka's error
            raise error
        if batch.is_control_batch:
            records.next_fetch_offset = batch.next_offset
            continue
        iter(batch)  # decompresses the records
        batch._buffer = _LenientBuffer(batch._buffer)
        for record in batch:
            if record.offset < records.next_fetch_offset:
                continue
            if _has_wire_name(record.headers):
                _log.warning("header_name_not_utf8", topic=tp.topic, partition=tp.partition, offset=record.offset)
            consumer_record = records._consumer_record(tp, record)
            records.next_fetch_offset = record.offset + 1
            yield consumer_record
        records.next_fetch_offset = batch.next_offset


def _has_wire_name(headers: Any) -> bool:
    return any(isinstance(name, WireName) for name, _ in headers)


def _unpack_records(unpack: Any) -> Any:
    @functools.wraps(unpack)
    def unpack_or_reread(self: Any) -> Iterator[Any]:
        try:
            yield from unpack(self)
        except UnicodeDecodeError as error:
            data = getattr(self._records, "data", None)
            if data is None:
                raise
            yield from _read_leniently(self, data, error)
    return unpack_or_reread


def install() -> None:
    """Install the guard in aiokafka's fetcher (idempotent)."""
    import aiokafka
    from aiokafka.consumer import fetcher

    if aiokafka.__version__ != CHECKED_VERSION:
        raise RuntimeError(f"herstelbus.fetchguard was checked against aiokafka {CHECKED_VERSION}, "
                           f"not {aiokafka.__version__}: review it before upgrading")
    if getattr(fetcher.PartitionRecords, "_herstelbus_patched", False):
        return
    fetcher.PartitionRecords._herstelbus_patched = True
    fetcher.MemoryRecords = _Fetched
    fetcher.PartitionRecords._unpack_records = _unpack_records(fetcher.PartitionRecords._unpack_records)


def _read_leniently_once(read_msg: Any) -> Any:
    @functools.wraps(read_msg)
    def read(self: Any, *args: Any) -> Any:
        if not isinstance(self._buffer, _LenientBuffer):
            try:
                return read_msg(self, *args)
            except UnicodeDecodeError:  # only a header name is decoded; the failed read moved nothing
                self._buffer = _LenientBuffer(self._buffer)  # the rest of this batch only
        record = read_msg(self, *args)
        if _has_wire_name(record.headers):
            _log.warning("header_name_not_utf8", offset=record.offset)
        return record
    return read


def install_kafka_python() -> None:
    """Install the guard in kafka-python's record reader (idempotent)."""
    import kafka
    from kafka.record.default_records import DefaultRecordBatch

    if kafka.__version__ != KAFKA_PYTHON_CHECKED_VERSION:
        raise RuntimeError(f"herstelbus.fetchguard was checked against kafka-python {KAFKA_PYTHON_CHECKED_VERSION}, "
                           f"not {kafka.__version__}: review it before upgrading")
    if getattr(DefaultRecordBatch, "_herstelbus_patched", False):
        return
    DefaultRecordBatch._herstelbus_patched = True
    DefaultRecordBatch._read_msg = _read_leniently_once(DefaultRecordBatch._read_msg)
