"""A record whose header name is not UTF-8 no longer stops a worker (aiokafka 0.14.0, under faust).

Header names are bytes in Kafka's protocol and a librdkafka client writes any; aiokafka decodes them
strictly as UTF-8 while it reads a fetched batch. The UnicodeDecodeError ended faust's fetcher and
the worker (exit 1), and every restart met the same record again: one such record stopped all
routing. :func:`install` reads a batch that fails so once more with aiokafka's pure-Python reader,
the header names decoded with ``surrogateescape``: the record reaches the worker like any other, and
``name.encode("utf-8", "surrogateescape")`` gives back the bytes it had (the dead letter's sealed
original, ``core.privacy.ops.frame_record``). Logged as ``header_name_not_utf8`` with its position.

Pinned to the aiokafka version this was checked against, like :mod:`herstelbus.faustpatch`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import aiokafka
from aiokafka.consumer import fetcher
from aiokafka.record.default_records import _DefaultRecordBatchPy
from aiokafka.record.memory_records import MemoryRecords, _MemoryRecordsPy

from herstelbus.logs import get_logger

CHECKED_VERSION = "0.14.0"
_log = get_logger("herstelbus.fetchguard")


class _Fetched:
    """aiokafka's MemoryRecords that also keep the fetched bytes, to read them again if need be."""

    __slots__ = ("data", "_records")

    def __init__(self, data: Any) -> None:
        self.data = data
        self._records = MemoryRecords(data)

    def size_in_bytes(self) -> int:
        return self._records.size_in_bytes()

    def has_next(self) -> bool:
        return self._records.has_next()

    def next_batch(self) -> Any:
        return self._records.next_batch()


class _LenientName(bytes):
    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:  # noqa: ARG002
        return bytes.decode(self, encoding, "surrogateescape")


class _LenientBuffer(bytearray):
    """A batch's buffer whose slices decode leniently (the reader decodes only header names)."""

    def __getitem__(self, index: Any) -> Any:
        got = bytearray.__getitem__(self, index)
        return _LenientName(got) if isinstance(index, slice) else got


def _read_leniently(records: Any, data: Any) -> Iterator[Any]:
    """The rest of ``data`` from ``records.next_fetch_offset`` on, header names decoded leniently."""
    tp, batches = records._tp, _MemoryRecordsPy(bytes(data))
    while batches.has_next():
        raw = batches._next_slice
        batches.next_batch()
        batch = _DefaultRecordBatchPy(raw)
        if batch.is_transactional:  # ingest topics are not: leave such a batch to aiokafka's error
            raise UnicodeDecodeError("utf-8", b"", 0, 1, "header name in a transactional batch")
        if batch.is_control_batch:
            records.next_fetch_offset = batch.next_offset
            continue
        iter(batch)  # decompresses the records
        batch._buffer = _LenientBuffer(batch._buffer)
        for record in batch:
            if record.offset < records.next_fetch_offset:
                continue
            if any(_not_utf8(name) for name, _ in record.headers):
                _log.warning("header_name_not_utf8", topic=tp.topic, partition=tp.partition, offset=record.offset)
            consumer_record = records._consumer_record(tp, record)
            records.next_fetch_offset = record.offset + 1
            yield consumer_record
        records.next_fetch_offset = batch.next_offset


def _not_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _unpack_records(unpack: Any) -> Any:
    @functools.wraps(unpack)
    def unpack_or_reread(self: Any) -> Iterator[Any]:
        try:
            yield from unpack(self)
        except UnicodeDecodeError:
            data = getattr(self._records, "data", None)
            if data is None:
                raise
            yield from _read_leniently(self, data)
    return unpack_or_reread


def install() -> None:
    """Install the guard in aiokafka's fetcher (idempotent)."""
    if aiokafka.__version__ != CHECKED_VERSION:
        raise RuntimeError(f"herstelbus.fetchguard was checked against aiokafka {CHECKED_VERSION}, "
                           f"not {aiokafka.__version__}: review it before upgrading")
    if getattr(fetcher.PartitionRecords, "_herstelbus_patched", False):
        return
    fetcher.PartitionRecords._herstelbus_patched = True
    fetcher.MemoryRecords = _Fetched
    fetcher.PartitionRecords._unpack_records = _unpack_records(fetcher.PartitionRecords._unpack_records)
