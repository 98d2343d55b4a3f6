"""Columnar polling (record_batches.py) gives exactly what kafka-python's own decoding gives,
on the real local broker, for every compression a producer may use."""

from __future__ import annotations

import struct
import time

import pytest
from kafka import KafkaProducer, TopicPartition
from kafka.errors import CorruptRecordError

from omnivue.config import load_settings
from omnivue.kafka_io import make_consumer
from omnivue.record_batches import BatchHeader, columnar, decode_batches

TOPIC = "interactions.mobile"  # 4 partitions


def _records(n: int) -> list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]]:
    """Keys, values and headers of every shape a producer may send."""
    out = []
    for i in range(n):
        key = None if i % 5 == 1 else f"k{i}".encode()  # a tombstone below has a key
        if i % 97 == 0:
            value = None  # a tombstone
        elif i % 89 == 0:
            value = b""
        elif i % 31 == 0:
            value = ("é" * (20_000 + i)).encode()  # multi-byte lengths
        else:
            value = f'{{"i": {i}, "text": "{"x" * (i % 300)}"}}'.encode()
        if key is None and value is None:
            value = b"{}"
        headers = [("h", b"v"), ("empty", b"")] if i % 7 == 0 else []
        out.append((key, value, headers))
    return out


def _consume(settings, tps, expected: int, as_columns: bool, start: dict | None = None) -> list[tuple]:
    consumer = make_consumer(settings, None)
    if as_columns:
        columnar(consumer)
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, (start or {}).get(tp, 0))
    rows: list[tuple] = []
    deadline = time.monotonic() + 60
    while len(rows) < expected and time.monotonic() < deadline:
        for tp, items in consumer.poll(timeout_ms=500).items():
            if as_columns:
                for chunk in items:
                    t = chunk.table
                    rows.extend(zip(t.column("topic").to_pylist(), t.column("partition").to_pylist(),
                                    t.column("offset").to_pylist(), t.column("timestamp").to_pylist(),
                                    t.column("key").to_pylist(), t.column("value").to_pylist()))
            else:
                rows.extend((r.topic, r.partition, r.offset, r.timestamp, r.key, r.value) for r in items)
    consumer.close()
    return sorted(rows)


@pytest.mark.parametrize("compression", [None, "gzip", "snappy", "lz4", "zstd"])
def test_columns_equal_kafka_pythons_records(broker, compression):
    settings = load_settings()
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, compression_type=compression,
                             linger_ms=5, batch_size=64 * 1024)
    sent = _records(1500)
    for i, (key, value, headers) in enumerate(sent):
        producer.send(TOPIC, key=key, value=value, headers=headers, partition=i % 4)
    producer.flush()
    producer.close()
    tps = [TopicPartition(TOPIC, p) for p in range(4)]

    plain = _consume(settings, tps, len(sent), as_columns=False)
    columns = _consume(settings, tps, len(sent), as_columns=True)

    assert len(plain) == len(sent)
    assert columns == plain
    assert {v for *_, v in columns} >= {None, b""}

    # from the middle of a batch (a restart resumes at the stored offset): the records before it are dropped
    start = {tp: 7 for tp in tps}
    resumed = _consume(settings, tps, len(sent) - 28, as_columns=True, start=start)
    assert resumed == [row for row in plain if row[2] >= 7]


def _record(offset_delta: int, key: bytes | None, value: bytes | None) -> bytes:
    def varint(n: int) -> bytes:
        z = (n << 1) ^ (n >> 63)
        out = bytearray()
        while True:
            if z < 0x80:
                return bytes(out + bytes([z]))
            out.append((z & 0x7F) | 0x80)
            z >>= 7

    body = (b"\x00" + varint(offset_delta * 10) + varint(offset_delta)
            + (varint(-1) if key is None else varint(len(key)) + key)
            + (varint(-1) if value is None else varint(len(value)) + value) + varint(0))
    return varint(len(body)) + body


def test_decode_batches_reads_fields_and_refuses_corrupt_batches():
    body = _record(0, b"a", b"first") + _record(1, None, None) + _record(2, b"", b"x" * 300)
    header = BatchHeader(count=3, base_offset=100, first_timestamp=5_000, max_timestamp=5_020, log_append_time=False)
    cols = decode_batches([body], [header])
    assert cols["offset"].to_pylist() == [100, 101, 102]
    assert cols["timestamp"].to_pylist() == [5_000, 5_010, 5_020]
    assert cols["key"].to_pylist() == [b"a", None, b""]
    assert cols["value"].to_pylist() == [b"first", None, b"x" * 300]
    appended = decode_batches([body], [BatchHeader(3, 0, 5_000, 9_999, log_append_time=True)])
    assert appended["timestamp"].to_pylist() == [9_999] * 3

    with pytest.raises(CorruptRecordError):
        decode_batches([body[:-4]], [header])  # truncated
    with pytest.raises(CorruptRecordError):
        decode_batches([body + b"\x00"], [header])  # bytes after the last record
    with pytest.raises(CorruptRecordError):
        decode_batches([body], [BatchHeader(4, 100, 5_000, 5_020, False)])  # fewer records than the header says
    longer_value = bytearray(body)
    struct.pack_into("B", longer_value, body.index(b"first") - 1, 40)  # value length past the record's end
    with pytest.raises(CorruptRecordError):
        decode_batches([bytes(longer_value)], [header])


def test_old_and_new_message_formats_in_one_fetch_keep_their_order():
    """An older log holds message format v0/v1 before v2: kafka-python decodes those, in order."""
    from kafka.consumer.fetcher import Fetcher
    from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder

    from omnivue.record_batches import ColumnarPartitionRecords

    def built(magic: int, offset: int, compression: int) -> bytes:
        builder = MemoryRecordsBuilder(magic, compression, batch_size=1 << 20, offset=offset)
        for i in range(5):
            builder.append(1_700_000_000_000 + offset + i, f"k{offset + i}".encode(), f"v{offset + i}".encode())
        builder.close()
        return bytes(builder.buffer())

    # v1 (plain), v2 (gzip), v1 (gzip), v2 (plain)
    buffer = built(1, 0, 0) + built(2, 5, 1) + built(1, 10, 1) + built(2, 15, 0)
    tp = TopicPartition(TOPIC, 0)
    expected = [(r.offset, r.timestamp, r.key, r.value)
                for r in Fetcher.PartitionRecords(3, tp, MemoryRecords(buffer)).take()]
    part = ColumnarPartitionRecords(3, tp, MemoryRecords(buffer))
    (chunk,) = part.take()
    t = chunk.table
    got = list(zip(t.column("offset").to_pylist(), t.column("timestamp").to_pylist(), t.column("key").to_pylist(),
                   t.column("value").to_pylist()))
    assert [o for o, *_ in expected] == list(range(3, 20))
    assert got == expected
    assert part.next_fetch_offset == 20
