"""Kafka fetches decoded into Arrow columns, every record of a fetch at once.

kafka-python decodes every record of a fetch in Python (a few varints, a
``ConsumerRecord`` and two ``bytes`` copies per record): about 4 µs a record,
as much as validating it. The ingester wants columns anyway, so
:func:`columnar` makes a consumer hand over one :class:`RecordColumns` per
partition fetch instead: the record batches (message format v2, the only one
Kafka 4 writes) are checked (CRC), decompressed by kafka-python's codecs and
then read with numpy, a field of every record at once. Offsets, keys and
values come out as Arrow arrays; the values are copied once, by Arrow.

The batch format is Kafka's (``RecordBatch`` in the protocol guide)::

    record: length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
            keyLength varint, key, valueLength varint, value, headers count varint, headers

Everything else stays kafka-python's: the group, fetch sessions, positions,
transactions (aborted batches and control batches are skipped as it does) and
errors. Old message formats (v0/v1) are decoded by kafka-python record by
record and turned into the same columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from kafka.consumer.fetcher import Fetcher, IsolationLevel
from kafka.errors import CorruptRecordError

#: The columns of polled records.
POLLED_SCHEMA = pa.schema([("topic", pa.string()), ("partition", pa.int32()), ("offset", pa.int64()),
                           ("timestamp", pa.int64()), ("key", pa.binary()), ("value", pa.binary())])

_PAD = 16  # zero bytes after a buffer: a varint read near the end never reads past it
_LOG_APPEND_TIME = 0x08


@dataclass
class RecordColumns:
    """The records of one partition fetch, as an Arrow table of :data:`POLLED_SCHEMA`."""

    topic: str
    partition: int
    table: pa.Table

    @property
    def offset(self) -> int:  # kafka-python's fetcher skips records below the fetch offset by this
        return self.table.column("offset")[0].as_py()

    def __len__(self) -> int:
        return self.table.num_rows


def _varints(data: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zigzag varints at ``pos`` (one per record): their values and the positions after them."""
    byte = data[pos]
    value = (byte & 0x7F).astype(np.uint64)
    end = pos + 1
    more = np.flatnonzero(byte & 0x80)
    shift = 7
    while more.size:
        if shift > 63:
            raise CorruptRecordError("varint longer than 10 bytes in a record batch")
        byte = data[end[more]]
        value[more] |= (byte & 0x7F).astype(np.uint64) << np.uint64(shift)
        end[more] += 1
        more = more[(byte & 0x80) != 0]
        shift += 7
    signed = (value >> np.uint64(1)).astype(np.int64) ^ -(value & np.uint64(1)).astype(np.int64)
    return signed, end


def _record_starts(buffer: bytes, parts: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Where each record's fields start and where it ends, for the batches ``parts`` = (position in
    ``buffer``, size, record count): the one sequential walk (a record's length is a varint in
    front of it)."""
    total = sum(count for _, _, count in parts)
    starts = np.empty(total, np.int64)
    ends = np.empty(total, np.int64)
    i = 0
    for pos, size, count in parts:
        stop = pos + size
        for _ in range(count):
            b = buffer[pos]
            if b < 0x80:
                raw, pos = b, pos + 1
            else:
                raw, shift, pos = b & 0x7F, 7, pos + 1
                while True:
                    b = buffer[pos]
                    raw |= (b & 0x7F) << shift
                    pos += 1
                    if b < 0x80:
                        break
                    shift += 7
                    if shift > 28:
                        raise CorruptRecordError("record length varint longer than 5 bytes")
            length = (raw >> 1) ^ -(raw & 1)
            if length < 0 or pos + length > stop:
                raise CorruptRecordError(f"a record of length {length} runs past the end of its batch")
            starts[i] = pos
            pos += length
            ends[i] = pos
            i += 1
        if pos != stop:
            raise CorruptRecordError(f"{stop - pos} unconsumed bytes after the records of a batch")
    return starts, ends


def _spans(buffer: bytes, start: np.ndarray, length: np.ndarray, end: np.ndarray) -> pa.Array:
    """The byte strings ``buffer[start:start+length]`` (null where length is -1) as one Arrow
    binary array. Arrow reads the buffer in place as the alternating strings [span, gap, span,
    gap, ...] (records follow each other, so these offsets never go back) and ``take`` copies
    every other one."""
    n = len(start)
    if n == 0:
        return pa.array([], pa.binary())
    null = length < 0
    stop = start + np.where(null, 0, length)
    if np.any(stop > end):
        raise CorruptRecordError("a key or value runs past the end of its record")
    offsets = np.empty(2 * n + 1, np.int64)
    offsets[0:-1:2] = start
    offsets[1::2] = stop
    offsets[-1] = stop[-1]
    base = int(offsets[0])
    data = pa.py_buffer(buffer)
    both = pa.LargeBinaryArray.from_buffers(pa.large_binary(), 2 * n, [None, pa.py_buffer(offsets - base),
                                                                     data.slice(base)])
    spans = both.take(pa.array(np.arange(0, 2 * n, 2))).cast(pa.binary())
    if null.any():
        spans = pc.if_else(pa.array(null), pa.nulls(n, pa.binary()), spans)
    return spans


@dataclass
class BatchHeader:
    """What decoding needs of a v2 batch's header."""

    count: int
    base_offset: int
    first_timestamp: int
    max_timestamp: int
    log_append_time: bool


def decode_batches(bodies: list[bytes | memoryview], headers: list[BatchHeader]) -> dict[str, pa.Array]:
    """The records sections of (decompressed) v2 batches as columns: offset, timestamp, key, value.
    All batches of a fetch at once: the batches are small (tens of records), numpy's calls are not."""
    parts, pos = [], 0
    for body, h in zip(bodies, headers):
        parts.append((pos, len(body), h.count))
        pos += len(body)
    buffer = b"".join([*bodies, bytes(_PAD)])  # the one copy of the records
    starts, ends = _record_starts(buffer, parts)
    counts = [h.count for h in headers]
    data = np.frombuffer(buffer, np.uint8)
    pos = starts + 1  # attributes: one byte, unused
    ts_delta, pos = _varints(data, pos)
    offset_delta, pos = _varints(data, pos)
    key_len, pos = _varints(data, pos)
    key_start = pos
    pos = pos + np.maximum(key_len, 0)
    if np.any(pos > ends):
        raise CorruptRecordError("a record key runs past the end of its record")
    value_len, value_start = _varints(data, pos)
    if np.any(key_len < -1) or np.any(value_len < -1):
        raise CorruptRecordError("negative key or value length in a record batch")
    base_offset = np.repeat(np.array([h.base_offset for h in headers], np.int64), counts)
    first_ts = np.repeat(np.array([h.first_timestamp for h in headers], np.int64), counts)
    max_ts = np.repeat(np.array([h.max_timestamp for h in headers], np.int64), counts)
    log_append = np.repeat(np.array([h.log_append_time for h in headers], bool), counts)
    timestamps = np.where(log_append, max_ts, first_ts + ts_delta)
    return {"offset": pa.array(base_offset + offset_delta), "timestamp": pa.array(timestamps),
            "key": _spans(buffer, key_start, key_len, ends), "value": _spans(buffer, value_start, value_len, ends)}


class ColumnarPartitionRecords(Fetcher.PartitionRecords):
    """kafka-python's records of one partition fetch, handed over as one :class:`RecordColumns`."""

    def _unpack_records(self, tp: Any, records: Any, key_deserializer: Any, value_deserializer: Any
                        ) -> Iterator[RecordColumns]:
        parts: list[dict[str, pa.Array]] = []  # columns of consecutive batches, in offset order
        bodies: list[memoryview] = []  # v2 batches not decoded yet
        headers: list[BatchHeader] = []
        batch = records.next_batch()
        last_batch = None
        while batch is not None:
            last_batch = batch
            if self.check_crcs and not batch.validate_crc():
                raise CorruptRecordError(f"Record batch for partition {tp} at offset {batch.base_offset} "
                                         "failed crc check")
            if batch.magic == 2:
                self.leader_epoch = batch.leader_epoch
                if not self._skip_transactional(batch) and not batch.is_control_batch:
                    batch._maybe_uncompress()
                    bodies.append(memoryview(batch._buffer)[batch._pos:])  # copied once, by decode_batches
                    headers.append(BatchHeader(batch.records_count, batch.base_offset, batch.first_timestamp,
                                               batch.max_timestamp, bool(batch.attributes & _LOG_APPEND_TIME)))
                    self.bytes_read += batch.size_in_bytes
                self.next_fetch_offset = batch.next_offset
            else:  # message format v0/v1 (older logs): kafka-python decodes it record by record
                if bodies:
                    parts.append(decode_batches(bodies, headers))
                    bodies, headers = [], []
                legacy = list(batch)
                parts.append({"offset": pa.array([r.offset for r in legacy], pa.int64()),
                              "timestamp": pa.array([r.timestamp for r in legacy], pa.int64()),
                              "key": pa.array([r.key for r in legacy], pa.binary()),
                              "value": pa.array([r.value for r in legacy], pa.binary())})
                self.bytes_read += sum(r.size_in_bytes for r in legacy)
                if legacy:
                    self.next_fetch_offset = legacy[-1].offset + 1
            batch = records.next_batch()
        if bodies:
            parts.append(decode_batches(bodies, headers))
        if last_batch is not None and last_batch.magic == 2:
            self.next_fetch_offset = last_batch.next_offset
        chunk = self._chunk(tp, parts) if parts else None
        if chunk is not None:
            self.records_read += len(chunk)
            yield chunk
        self.drain()

    def _skip_transactional(self, batch: Any) -> bool:
        """kafka-python's rule for READ_COMMITTED: skip aborted batches, track abort markers."""
        if self.isolation_level != IsolationLevel.READ_COMMITTED or not batch.has_producer_id():
            return False
        self._consume_aborted_transactions_up_to(batch.last_offset)
        if self._contains_abort_marker(batch):
            self.aborted_producer_ids.discard(batch.producer_id)
            return False
        return self._is_batch_aborted(batch)

    def _chunk(self, tp: Any, parts: list[dict[str, pa.Array]]) -> RecordColumns | None:
        n = sum(len(part["offset"]) for part in parts)
        table = pa.table({
            "topic": pa.array([tp.topic], pa.string()).take(pa.array(np.zeros(n, np.int64))),
            "partition": pa.array(np.full(n, tp.partition, np.int32)),
            **{name: pa.chunked_array([part[name] for part in parts], POLLED_SCHEMA.field(name).type)
               for name in ("offset", "timestamp", "key", "value")},
        }, schema=POLLED_SCHEMA)
        # a fetch from the middle of a batch (a seek to a stored offset) starts with records before it
        if n and table.column("offset")[0].as_py() < self.fetch_offset:
            table = table.filter(pc.greater_equal(table.column("offset"), self.fetch_offset))
        if table.num_rows == 0:
            return None
        return RecordColumns(tp.topic, tp.partition, table)


def columnar(consumer: Any) -> Any:
    """Make ``consumer.poll()`` return, per partition, a list of :class:`RecordColumns` (one per
    fetch) instead of one ``ConsumerRecord`` per record. Relies on kafka-python's fetcher
    creating its ``PartitionRecords`` through the instance attribute (kafka-python 3)."""
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not hasattr(fetcher, "PartitionRecords"):
        raise RuntimeError("this kafka-python has no Fetcher.PartitionRecords: columnar polling unavailable")
    fetcher.PartitionRecords = ColumnarPartitionRecords
    return consumer


def polled_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Records as polled, from dicts with the keys of :data:`POLLED_SCHEMA` (missing ones are null;
    used to validate records that did not come from Kafka, e.g. in tests)."""
    return pa.Table.from_pylist(rows, schema=POLLED_SCHEMA)
