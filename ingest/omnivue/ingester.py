"""Ingest: consume the input topics with a consumer group, validate every
record against its contract, land valid events and dead-letter the rest.

Exactly once: the landed rows, the dead letters and the next offset of every
partition are written in ONE DuckDB transaction, and on (re)assignment the
consumer seeks to the offsets stored in the warehouse. A crash before the
commit lands nothing of the batch (it is read again); a crash after it lands
the batch once (the stored offsets skip it). Kafka's own committed offsets are
updated too, for lag tooling, but the warehouse is the source of truth. The
transaction also drops records below the stored offset, so two ingesters that
race after a rebalance cannot land a record twice.

Threads share the work: the polling thread fetches records (kafka-python)
and decodes each fetch into Arrow columns (record_batches.py), two validator
workers check the batches before (the fast path on an in-memory DuckDB of
their own, Python for the rest) and a lander writes the batches validated
before them (:class:`_Pipeline`). DuckDB mostly releases the GIL while it
works, so they can use both cores (the Python parts still take turns:
docs/benchmarks.md). Batches are landed strictly in the order they were
polled, a few wait at each step (more before the lander, so that validation
goes on during its checkpoints), and after a failed batch nothing more is
landed (the error stops the ingester; the stored offsets still point at the
first record not landed).

The warehouse stays open while batches follow one another and is released
(checkpointed and closed) when none came for half a second, after holding it
five seconds, on a rebalance and at the end, so dbt and other writers get the
lock between bursts; within a burst it is checkpointed every 250k rows.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import queue
import sys
import threading
import time
from collections import Counter, defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator

import duckdb
import numpy as np
import pyarrow as pa
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from . import fast_validation
from .compliance.suppression import suppress_batch
from .config import DEFAULT_BATCH_SIZE, Settings
from .envelope import INPUT_TOPICS
from .identifiers import check_default_region
from .kafka_io import BrokerUnavailable, GroupShared, bootstrap_reachable, make_consumer, session_timeout_ms
from .progress import Progress
from .record_batches import columnar
from .validation import Rejected, compile_contracts, validate_record
from .warehouse import IDENTITY_COLUMNS, connect, ensure_landing, session

log = logging.getLogger(__name__)

# Arrow shapes of one batch. Times travel as integers (Kafka timestamps in ms, event times in
# microseconds since the epoch, both UTC) and become TIMESTAMPTZ in the INSERT: building Python
# datetimes per record was the slowest part of landing.
LANDED_SCHEMA = pa.schema(
    [("topic", pa.string()), ("partition", pa.int32()), ("offset", pa.int64()), ("record_key", pa.string()),
     ("kafka_timestamp_ms", pa.int64()), ("event_id", pa.string()), ("event_type", pa.string()),
     ("channel", pa.string()), ("occurred_at_us", pa.int64()), ("source", pa.string()),
     ("schema_version", pa.int32())]
    + [(c, pa.string()) for c in IDENTITY_COLUMNS]
    + [("properties", pa.string()), ("raw", pa.string())]
)
DEAD_SCHEMA = pa.schema(
    [("reason", pa.string()), ("raw", pa.string()), ("topic", pa.string()), ("partition", pa.int32()),
     ("offset", pa.int64()), ("record_key", pa.string()), ("raw_bytes", pa.binary())]
)
_LANDED_INSERT = {keep_raw: (  # with the original text or without (raw NULL)
    'insert into landed_events (topic, "partition", "offset", record_key, kafka_timestamp, event_id, event_type, '
    "channel, occurred_at, source, schema_version, " + ", ".join(IDENTITY_COLUMNS) + ", properties, raw, received_at) "
    'select topic, "partition", "offset", record_key, '
    "case when kafka_timestamp_ms >= 0 then make_timestamp(kafka_timestamp_ms * 1000)::timestamptz end, "
    "event_id, event_type, channel, make_timestamp(occurred_at_us)::timestamptz, source, schema_version, "
    + ", ".join(IDENTITY_COLUMNS) + f", properties, {'raw' if keep_raw else 'null'}, $received_at from landed_batch")
    for keep_raw in (True, False)}
_DEAD_INSERT = ('insert into dead_letter (reason, raw, topic, "partition", "offset", record_key, received_at, raw_bytes) '
                'select reason, raw, topic, "partition", "offset", record_key, $received_at, raw_bytes from dead_batch')
# The next offset of each partition of a batch, never moved back (a late batch of a race after a
# rebalance must not rewind another member's progress).
_OFFSETS_UPSERT = """
insert or replace into ingest_offsets
select $group_id, batch.topic, batch."partition", greatest(batch.next_offset, coalesce(stored.next_offset, 0)),
       $received_at
from (select unnest($topics) as topic, unnest($partitions) as "partition", unnest($offsets) as next_offset) as batch
left join ingest_offsets as stored
  on stored.consumer_group = $group_id and stored.topic = batch.topic and stored."partition" = batch."partition"
"""
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)


def group_wait_seconds() -> float:
    """How long an ingest until caught up waits for other members of its group to leave
    (OMNIVUE_INGEST_GROUP_WAIT_SECONDS): by default long enough for the member of a crashed
    earlier run to time out of the group (three session timeouts), and at least a minute."""
    value = os.environ.get("OMNIVUE_INGEST_GROUP_WAIT_SECONDS")
    return float(value) if value else max(60.0, 3 * session_timeout_ms() / 1000)


def describe_partitions(tps: Iterable[TopicPartition]) -> str:
    """``consent[0-1,3], identity[2]``: by topic name, then partition."""
    by_topic: dict[str, list[int]] = defaultdict(list)
    for tp in sorted(tps):
        by_topic[tp.topic].append(tp.partition)
    parts = []
    for topic, numbers in by_topic.items():
        runs: list[list[int]] = []
        for n in numbers:
            if runs and n == runs[-1][-1] + 1:
                runs[-1].append(n)
            else:
                runs.append([n])
        parts.append(f"{topic}[{','.join(str(r[0]) if len(r) == 1 else f'{r[0]}-{r[-1]}' for r in runs)}]")
    return ", ".join(parts)


@dataclass
class IngestStats:
    landed: int = 0
    dead: int = 0
    skipped: int = 0  # already landed (re-delivered after a crash or rebalance)
    suppressed: int = 0  # records of erased people: consumed, never landed
    batches: int = 0
    by_topic: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    lag: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    first_record_seconds: float | None = None  # from the start to the first record polled (group join, seek)

    def as_dict(self) -> dict[str, Any]:
        return {"landed": self.landed, "dead_letters": self.dead, "skipped_already_landed": self.skipped,
                "suppressed_erased": self.suppressed,
                "batches": self.batches, "by_topic": dict(self.by_topic),
                "dead_letter_reasons": dict(self.reasons), "lag": dict(self.lag),
                "seconds": round(self.seconds, 2),
                "seconds_to_first_record": None if self.first_record_seconds is None
                else round(self.first_record_seconds, 2)}


def _decode(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", errors="backslashreplace")


def _utf8_or_none(value: bytes | None) -> str | None:
    try:
        return None if value is None else value.decode("utf-8")
    except UnicodeDecodeError:
        return None  # the slow path says why


@contextmanager
def streaming_interpreter() -> Iterator[None]:
    """Interpreter settings while records stream through.

    - Fewer garbage collections: kafka-python allocates several objects per record, all freed by
      reference counting, yet each 700 allocations trigger a collection that walks the batches
      in flight.
    - A shorter GIL switch interval (0.5 ms instead of 5): DuckDB takes the GIL back now and
      then while a query runs, and with the default interval the busy polling thread kept the
      validators and the lander waiting for it (a DuckDB query beside a busy Python thread
      measured 2.7 times slower; 1.2 times with 0.5 ms).

    The benchmark's bare consume loop runs under the same settings, so the comparison stays fair."""
    saved_gc, saved_switch = gc.get_threshold(), sys.getswitchinterval()
    gc.set_threshold(50_000, 20, 100)
    sys.setswitchinterval(0.0005)
    try:
        yield
    finally:
        gc.set_threshold(*saved_gc)
        sys.setswitchinterval(saved_switch)


def _utf8_column(values: pa.Array | pa.ChunkedArray, decode: Any) -> pa.Array | pa.ChunkedArray:
    """Binary as an Arrow string column: validated in bulk by Arrow; when some value is not UTF-8,
    decoded one by one with ``decode``."""
    try:
        return values.cast(pa.string())
    except pa.ArrowInvalid:
        return pa.array([decode(v) for v in values.to_pylist()], pa.string())


class Batch:
    """Columns of one batch, built record by record, written as Arrow."""

    def __init__(self) -> None:
        self.landed: dict[str, list[Any]] = {f.name: [] for f in LANDED_SCHEMA}
        self.dead: dict[str, list[Any]] = {f.name: [] for f in DEAD_SCHEMA}
        self.count = 0

    def add_raw(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                timestamp_ms: int | None, stats_reasons: Counter) -> bool:
        """Validate one record and add it to the landed or the dead-letter columns; True if landed."""
        self.count += 1
        key_text = _decode(key)
        try:
            valid = validate_record(topic, value)
        except Rejected as rej:
            stats_reasons[rej.code] += 1
            d = self.dead
            d["reason"].append(rej.reason)
            d["raw"].append(_decode(value))
            d["topic"].append(topic)
            d["partition"].append(partition)
            d["offset"].append(offset)
            d["record_key"].append(key_text)
            d["raw_bytes"].append(value)
            return False
        ev = valid.event
        ids = valid.identities
        c = self.landed
        c["topic"].append(topic)
        c["partition"].append(partition)
        c["offset"].append(offset)
        c["record_key"].append(key_text)
        c["kafka_timestamp_ms"].append(timestamp_ms)
        c["event_id"].append(ev["event_id"].lower())
        c["event_type"].append(ev["event_type"])
        c["channel"].append(ev["channel"])
        c["occurred_at_us"].append((valid.occurred_at - _EPOCH) // _US)
        c["source"].append(ev["source"])
        c["schema_version"].append(ev["schema_version"])
        for col in IDENTITY_COLUMNS:
            c[col].append(ids.get(col))
        c["properties"].append(json.dumps(ev["properties"], ensure_ascii=False, separators=(",", ":")))
        c["raw"].append(value.decode("utf-8"))
        return True

    def tables(self) -> tuple[pa.Table, pa.Table]:
        return (pa.Table.from_pydict(self.landed, schema=LANDED_SCHEMA),
                pa.Table.from_pydict(self.dead, schema=DEAD_SCHEMA))


def insert_batch(con: Any, landed: pa.Table, dead: pa.Table, received_at: datetime, keep_raw: bool) -> None:
    """Append Arrow batches to landed_events (with the records' original text if ``keep_raw``,
    Settings.keep_raw) and dead_letter (always with it), inside the caller's transaction."""
    con.execute("set TimeZone = 'UTC'")  # the integer times above are UTC
    con.register("landed_batch", landed)
    con.register("dead_batch", dead)
    try:
        con.execute(_LANDED_INSERT[keep_raw], {"received_at": received_at})
        con.execute(_DEAD_INSERT, {"received_at": received_at})
    finally:
        con.unregister("landed_batch")
        con.unregister("dead_batch")


class Ingester:
    """Consume the input topics into the warehouse, exactly once."""

    def __init__(self, settings: Settings, group_id: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 batch_ms: int = 1000, topics: Iterable[str] = INPUT_TOPICS, fast_path: bool | None = None,
                 group_wait: float | None = None) -> None:
        check_default_region()  # a bad one would dead-letter every national phone number
        self.settings = settings
        self.group_id = group_id or settings.consumer_group
        self.batch_size = batch_size
        self.batch_ms = batch_ms
        # the vectorised fast path (fast_validation.py); OMNIVUE_INGEST_FAST_PATH=0 validates all in Python
        self.fast_path = fast_path if fast_path is not None else os.environ.get("OMNIVUE_INGEST_FAST_PATH", "1") != "0"
        self.topics = list(topics)
        # until caught up: how long other members of the group may hold partitions before it fails
        self.group_wait = group_wait if group_wait is not None else group_wait_seconds()
        self.stats = IngestStats()
        self._consumer: KafkaConsumer | None = None
        self._pending: list[pa.Table] = []  # polled (record_batches.POLLED_SCHEMA), not yet handed to the pipeline
        self._pending_rows = 0
        self._in_flight: Counter = Counter()  # polled, not yet landed (pending or in the pipeline)
        self._pipeline: _Pipeline | None = None
        self._bar: Progress | None = None
        self._truncation_reported: set[TopicPartition] = set()
        self._group_warned = False  # _wait_for_group said it waits

    # -- offsets stored with the data -------------------------------------------------
    def _stored_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        wanted = set(tps)
        if not wanted:
            return {}
        with session(self.settings.warehouse) as con:
            rows = con.execute(
                'select topic, "partition", next_offset from ingest_offsets where consumer_group = ?',
                [self.group_id]).fetchall()
        return {TopicPartition(t, p): o for t, p, o in rows if TopicPartition(t, p) in wanted}

    def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        stored = self._stored_offsets(assigned)
        for tp in assigned:
            if tp in stored:
                self._consumer.seek(tp, stored[tp])
            else:
                self._consumer.seek_to_beginning(tp)
        if assigned:
            log.info("assigned %d partitions; resuming from the warehouse's stored offsets (%d known)",
                     len(assigned), len(stored))

    def _on_revoked(self, revoked: list[TopicPartition]) -> None:
        # land everything polled before the partitions go: their next owner starts from the stored offsets
        self._drain(release=True)

    # -- handing batches to the pipeline (on the polling thread) --------------------------
    def _submit(self, flush: bool = True) -> None:
        """Hand the pending records to the validator in batches of ``batch_size`` records (blocks
        while the validator has enough waiting). Without ``flush`` only whole batches go and the
        rest waits for the next poll: a poll that brings a batch and a little more would otherwise
        make a batch of that little, and one validator would idle beside it. With ``flush``
        everything goes, in batches of equal size."""
        if not self._pending:
            return
        polled = pa.concat_tables(self._pending)
        n = polled.num_rows
        if flush:
            pieces = -(-n // self.batch_size)
            size, keep = -(-n // pieces), 0
        else:
            size, keep = self.batch_size, n % self.batch_size
        self._pending = [polled.slice(n - keep)] if keep else []
        self._pending_rows = keep
        for start in range(0, n - keep, size):
            records = polled.slice(start, min(size, n - keep - start))
            self._pipeline.submit(records, _count_topics(records))
            self._collect()

    def _collect(self) -> None:
        """Account for the batches landed since; re-raise an error of the pipeline, if any."""
        for done in self._pipeline.finished():
            self._account(done)
            if self._bar is not None:
                self._bar.advance(sum(done.polled_by_topic.values()))

    def _drain(self, release: bool = False) -> None:
        """Land everything polled so far and wait for it (``release``: and close the warehouse)."""
        if self._pipeline is None:
            return
        self._submit()
        self._pipeline.wait_idle(release)
        self._collect()

    # -- validation (on the validator thread) ---------------------------------------------
    def _validate(self, con: Any, records: pa.Table, polled_by_topic: Counter | None = None,
                  fast: bool | None = None) -> "_Checked":
        """Validate one batch of polled records (record_batches.POLLED_SCHEMA): the fast path (unless
        ``fast`` is False, default: the ingester's setting), then Python for what it did not accept.
        ``con`` is only used for temporary tables (on the validator thread, an in-memory DuckDB)."""
        reasons: Counter = Counter()
        slow = Batch()
        if (self.fast_path if fast is None else fast) and records.num_rows:
            raw = pa.table({
                "idx": pa.array(np.arange(records.num_rows, dtype=np.int64)),
                "topic": records.column("topic"),
                "partition": records.column("partition"),
                "offset": records.column("offset"),
                "record_key": _utf8_column(records.column("key"), _decode),
                "kafka_timestamp_ms": records.column("timestamp"),
                "raw": _utf8_column(records.column("value"), _utf8_or_none),
            }, schema=fast_validation.RAW_SCHEMA)
            accepted, slow_idx = fast_validation.check(con, raw, keep_raw=self.settings.keep_raw)
            judged_in_python = records.take(pa.array(slow_idx, pa.int64())).to_pylist()
        else:
            accepted, judged_in_python = None, records.to_pylist()
        for r in judged_in_python:
            slow.add_raw(r["topic"], r["partition"], r["offset"], r["key"], r["value"], r["timestamp"], reasons)
        slow_landed, dead = slow.tables()
        by_topic = _count_topics(slow_landed)
        if accepted is not None:
            by_topic.update(_count_topics(accepted))
        return _Checked(records, polled_by_topic or Counter(), accepted, slow_landed, dead, by_topic, reasons)

    def _insert(self, con: Any, checked: "_Checked", received_at: datetime) -> None:
        if checked.accepted is not None and checked.accepted.num_rows:
            fast_validation.insert_accepted(con, checked.accepted, received_at)
        insert_batch(con, checked.slow_landed, checked.dead, received_at, self.settings.keep_raw)

    # -- one transaction per batch (on the lander thread) --------------------------------
    def _land_batch(self, con: Any, checked: "_Checked") -> "_Landed":
        """Land one validated batch in one warehouse transaction, with the next offset of each partition."""
        received_at = datetime.now(timezone.utc)
        records = checked.records
        first: dict[tuple[str, int], int] = {}
        nxt: dict[tuple[str, int], int] = {}
        for row in records.group_by(["topic", "partition"], use_threads=False).aggregate(
                [("offset", "min"), ("offset", "max")]).to_pylist():
            key = (row["topic"], row["partition"])
            first[key], nxt[key] = row["offset_min"], row["offset_max"] + 1
        skipped = suppressed = 0
        con.begin()
        try:
            stored = {(t, p): o for t, p, o in con.execute(
                'select topic, "partition", next_offset from ingest_offsets where consumer_group = ?',
                [self.group_id]).fetchall()}
            already = {k: stored[k] for k in first if stored.get(k, -1) > first[k]}
            if already:
                # Part of this batch was landed by an earlier run or another member of the group:
                # validate again what is left (rare: after a crash or a rebalance).
                keep = [o >= already.get((t, p), -1) for t, p, o in zip(
                    records.column("topic").to_pylist(), records.column("partition").to_pylist(),
                    records.column("offset").to_pylist())]
                kept = records.filter(pa.array(keep, pa.bool_()))
                skipped = records.num_rows - kept.num_rows
                log.warning("skipped %d records already landed (re-delivered)", skipped)
                checked = self._validate(con, kept, checked.polled_by_topic)
            self._insert(con, checked, received_at)
            landed_by_topic, dead_n = checked.landed_by_topic, checked.dead.num_rows
            # records of erased people are consumed but never landed (nor dead-lettered)
            dropped = suppress_batch(con, self.settings.pseudonym_key, received_at)
            if dropped.total:
                landed_by_topic = landed_by_topic.copy()
                landed_by_topic.subtract(dropped.landed_by_topic)
                landed_by_topic = +landed_by_topic
                dead_n -= dropped.dead
                suppressed = dropped.total
            con.execute(_OFFSETS_UPSERT, {  # one row per partition in the batch, in one statement
                "group_id": self.group_id, "topics": [t for t, _ in nxt], "partitions": [p for _, p in nxt],
                "offsets": list(nxt.values()), "received_at": received_at})
            con.commit()
        except BaseException:
            con.rollback()
            raise
        return _Landed(checked.polled_by_topic, landed_by_topic, dead_n, skipped, suppressed, checked.reasons,
                       {TopicPartition(t, p): o for (t, p), o in nxt.items()})

    def _account(self, done: "_Landed") -> None:
        """On the polling thread: count a landed batch and tell Kafka (informational)."""
        self.stats.landed += sum(done.landed_by_topic.values())
        self.stats.dead += done.dead
        self.stats.skipped += done.skipped
        self.stats.suppressed += done.suppressed
        self.stats.batches += 1
        self.stats.by_topic.update(done.landed_by_topic)
        self.stats.reasons.update(done.reasons)
        self._in_flight.subtract(done.polled_by_topic)
        self._commit_kafka(done.next_offsets)

    def _commit_kafka(self, next_offsets: dict[TopicPartition, int]) -> None:
        try:
            self._consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in next_offsets.items()
                                   if tp in self._consumer.assignment()})
        except Exception as exc:  # informational only: the warehouse holds the real offsets
            log.debug("kafka offset commit failed (harmless): %s", exc)

    # -- lag ----------------------------------------------------------------------------
    def lag(self) -> dict[str, int] | None:
        """Records not yet landed per topic (not yet fetched, from the fetch high-water marks, plus
        fetched but not yet landed); None while some partition has not reported a high-water mark."""
        consumer = self._consumer
        per_topic: dict[str, int] = defaultdict(int)
        for tp in consumer.assignment():
            hw = consumer.highwater(tp)
            if hw is None:
                return None
            per_topic[tp.topic] += max(0, hw - consumer.position(tp))
        for topic, n in self._in_flight.items():
            if n > 0:
                per_topic[topic] += n
        return dict(per_topic)

    # -- main loop --------------------------------------------------------------------
    def run(self, until_caught_up: bool = False, max_seconds: float | None = None,
            progress: bool = True) -> IngestStats:
        ensure_landing(self.settings.warehouse)
        start = time.monotonic()
        self._consumer = self._connect(start, max_seconds)
        self._pipeline = _Pipeline(self)
        listener = _Listener(self)
        self._consumer.subscribe(self.topics, listener=listener)
        log.info("ingest: group %r, topics %s, bootstrap %s%s", self.group_id, ", ".join(self.topics),
                 self.settings.bootstrap, " (until caught up)" if until_caught_up else " (following)")
        last_submit = last_data = last_lag_log = time.monotonic()
        held_since: float | None = None  # other members of the group hold partitions, since then
        unreachable_since: float | None = None
        try:
            with streaming_interpreter(), Progress("ingest", unit="records", enabled=progress) as bar:
                self._bar = bar
                while True:
                    polled = self._consumer.poll(timeout_ms=300, max_records=self.batch_size)
                    got = 0
                    for tp, chunks in polled.items():  # record_batches.RecordColumns, one per fetch
                        for chunk in chunks:
                            self._pending.append(chunk.table)
                            self._pending_rows += len(chunk)
                            self._in_flight[tp.topic] += len(chunk)
                            got += len(chunk)
                    now = time.monotonic()
                    if got:
                        last_data = now
                        if self.stats.first_record_seconds is None:
                            self.stats.first_record_seconds = now - start
                        if unreachable_since is not None:
                            log.warning("Kafka at %s is reachable again after %.0fs; resuming",
                                        self.settings.bootstrap, now - unreachable_since)
                            unreachable_since = None
                    elif now - last_data > 10:
                        unreachable_since = self._check_reachable(unreachable_since, now)
                        last_data = now
                    fetched_all = self._fetched_all()
                    flush = not got or fetched_all or now - last_submit > self.batch_ms / 1000
                    if self._pending and (flush or self._pending_rows >= self.batch_size):
                        self._submit(flush)
                        last_submit = time.monotonic()
                    else:
                        self._collect()
                    # caught up on what is ours (or nothing is ours yet): do other members hold the rest?
                    elsewhere = self._partitions_elsewhere() if until_caught_up and (
                        fetched_all or not self._consumer.assignment()) else []
                    if until_caught_up and fetched_all and not elsewhere:
                        self._drain()  # everything up to the high-water marks is polled: land it, done
                        self.stats.lag = self.lag() or {}
                        break
                    held_since = self._wait_for_group(elsewhere if unreachable_since is None else [], held_since, now)
                    lag = self.lag() if self._consumer.assignment() else None
                    if lag is not None:
                        self.stats.lag = lag
                        if not until_caught_up and now - last_lag_log > 30:
                            log.info("lag per topic: %s", ", ".join(f"{t}={n}" for t, n in sorted(lag.items())))
                            last_lag_log = now
                        if bar.total is None or bar.done + sum(lag.values()) > bar.total:
                            bar.set_total(bar.done + sum(lag.values()))
                    if until_caught_up and not self._consumer.assignment() and now - start > 20 \
                            and unreachable_since is None and self._no_topic_exists():
                        log.warning("none of the topics %s exists: nothing to ingest", ", ".join(self.topics))
                        break
                    if max_seconds is not None and time.monotonic() - start > max_seconds:
                        if until_caught_up:
                            raise TimeoutError(f"ingest did not catch up within {max_seconds:.0f}s; lag {lag}")
                        break
                self._drain()
        finally:
            pipeline, self._pipeline = self._pipeline, None  # closing the consumer revokes: nothing left to land
            pipeline.stop()
            self._bar = None
            try:
                self._consumer.close(autocommit=False)
            except Exception:  # closing must not hide the real error
                pass
        self.stats.seconds = time.monotonic() - start
        log.info("ingest done: %d landed, %d dead-lettered, %d batches in %.1fs; lag %s",
                 self.stats.landed, self.stats.dead, self.stats.batches, self.stats.seconds, self.stats.lag)
        return self.stats

    def _fetched_all(self) -> bool:
        """Every assigned partition is polled up to its last known high-water mark."""
        consumer = self._consumer
        assignment = consumer.assignment()
        if not assignment:
            return False
        for tp in assignment:
            hw = consumer.highwater(tp)
            if hw is None or consumer.position(tp) < hw:
                return False
        return True

    def _connect(self, start: float, max_seconds: float | None) -> KafkaConsumer:
        """A consumer; while the broker cannot be reached, say so and retry (bounded by max_seconds)."""
        delay = 1.0
        while True:
            try:
                # columnar: poll() gives one Arrow table per partition fetch (max_poll_records counts those)
                return columnar(make_consumer(self.settings, self.group_id, max_poll_records=100))
            except BrokerUnavailable as exc:
                waited = time.monotonic() - start
                if max_seconds is not None and waited + delay > max_seconds:
                    raise
                log.warning("%s; retrying in %.0fs", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _check_reachable(self, since: float | None, now: float) -> float | None:
        """Quiet for a while: tell an idle topic from an unreachable broker (logged once per outage),
        and a broker whose log restarted below what was landed (a memory-only broker restarted)."""
        if not bootstrap_reachable(self.settings):
            if since is None:
                log.warning("cannot reach Kafka at %s (OMNIVUE_KAFKA_BOOTSTRAP); retrying until it is back",
                            self.settings.bootstrap)
                return now
            return since
        for tp in self._consumer.assignment():
            hw = self._consumer.highwater(tp)
            if hw is not None and hw < self._consumer.position(tp) and tp not in self._truncation_reported:
                self._truncation_reported.add(tp)
                log.error("%s[%d]: the broker's log ends at %d, below the next offset to land (%d): the topic "
                          "was recreated (a memory-only broker restarted?). Records below %d will not be landed "
                          "again; new records are landed from there.", tp.topic, tp.partition, hw,
                          self._consumer.position(tp), self._consumer.position(tp))
        return since

    def _no_topic_exists(self) -> bool:
        return all(self._consumer.partitions_for_topic(t) is None for t in self.topics)

    def _partitions_elsewhere(self) -> list[TopicPartition]:
        """The partitions of the subscribed topics not assigned here: caught up means none."""
        assignment = self._consumer.assignment()
        elsewhere = []
        for topic in self.topics:
            parts = self._consumer.partitions_for_topic(topic)  # None: no such topic (yet), nothing to land
            elsewhere += [tp for tp in (TopicPartition(topic, p) for p in sorted(parts or ())) if tp not in assignment]
        return elsewhere

    def _wait_for_group(self, elsewhere: list[TopicPartition], since: float | None, now: float) -> float | None:
        """Until caught up, other members of the group hold ``elsewhere`` (since ``since``): this
        ingest cannot finish while they do. Wait ``group_wait`` seconds for them to leave (the member
        of a crashed run leaves when its session times out; a join or rebalance takes a few seconds),
        saying so once, then fail: another ingester (`omnivue ingest`, a run with another
        OMNIVUE_HOME, a second scheduler) is consuming with the same group. Returns the new ``since``."""
        if not elsewhere:
            return None
        if since is None:
            since, self._group_warned = now, False
        held = describe_partitions(elsewhere)
        if now - since > self.group_wait:
            raise GroupShared(f"another consumer in group {self.group_id!r} holds partitions {held}: stop it or use "
                              f"another group (OMNIVUE_CONSUMER_GROUP, or `omnivue ingest --group`); this ingest "
                              f"cannot catch up while it does (waited {self.group_wait:.0f}s for it to leave)")
        if now - since > min(20.0, self.group_wait / 2) and not self._group_warned:  # past a join or a rebalance
            self._group_warned = True
            log.warning("other members of group %r hold partitions %s (another `omnivue ingest` or `omnivue run`?): "
                        "this ingest cannot catch up while they do; waiting up to %.0fs for them to leave",
                        self.group_id, held, self.group_wait - (now - since))
        return since


@dataclass
class _Checked:
    """One validated batch, on its way from the validator to the lander."""
    records: pa.Table  # as polled (record_batches.POLLED_SCHEMA)
    polled_by_topic: Counter
    accepted: pa.Table | None  # landed_events rows from the fast path
    slow_landed: pa.Table  # LANDED_SCHEMA: valid records the Python validator judged
    dead: pa.Table  # DEAD_SCHEMA
    landed_by_topic: Counter
    reasons: Counter  # dead-letter reason codes


@dataclass
class _Landed:
    """What the lander reports for one landed batch."""
    polled_by_topic: Counter
    landed_by_topic: Counter
    dead: int
    skipped: int
    suppressed: int
    reasons: Counter
    next_offsets: dict[TopicPartition, int]


_STOP = object()  # control items: they pass through every stage, in order with the batches
_RELEASE = object()


def _count_topics(table: pa.Table) -> Counter:
    """Rows per topic of a batch table (counted by Arrow: a Python list per record held the GIL)."""
    counts: Counter = Counter()
    for item in table.column("topic").value_counts().to_pylist():
        counts[item["values"]] += item["counts"]
    return counts


class _Stage(threading.Thread):
    """One step of the landing pipeline on its own thread: takes items in order, hands each
    result to the next stage (or to the polling thread). At most WAITING items wait. After an error
    nothing more is processed downstream: it is re-raised on the polling thread, and the stored
    offsets still point at the first record not landed."""

    WAITING = 2

    def __init__(self, name: str, downstream: "_Stage | None") -> None:
        super().__init__(name=name, daemon=True)
        self.downstream = downstream
        self.todo: queue.Queue = queue.Queue(maxsize=self.WAITING)
        self.done: queue.Queue = queue.Queue()  # results of the last stage
        self.error: BaseException | None = None

    # -- called from upstream ---------------------------------------------------------------
    def submit(self, item: Any) -> None:
        while True:
            self.raise_error()
            try:
                self.todo.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def raise_error(self) -> None:
        stage: _Stage | None = self
        while stage is not None:
            if stage.error is not None:
                raise stage.error
            stage = stage.downstream

    def busy(self) -> bool:
        stage: _Stage | None = self
        while stage is not None:
            if stage.todo.unfinished_tasks and stage.is_alive():
                return True
            stage = stage.downstream
        return False

    # -- the thread -------------------------------------------------------------------------
    def idle_timeout(self) -> float | None:
        return None

    def on_idle(self) -> None:
        pass

    def control(self, item: object) -> None:
        pass

    def process(self, item: Any) -> Any:
        raise NotImplementedError

    def run(self) -> None:
        try:
            while True:
                try:
                    item = self.todo.get(timeout=self.idle_timeout())
                except queue.Empty:
                    self.on_idle()
                    continue
                try:
                    if item is _STOP or item is _RELEASE:
                        self._control_and_forward(item)
                        if item is _STOP:
                            return
                    elif self._accepting():  # after an error nothing more: nothing lands out of order
                        self._forward(self.process(item))
                except BaseException as exc:  # handed to the polling thread
                    self._fail(exc)
                    self.on_idle()
                finally:
                    self.todo.task_done()
        finally:
            self.control(_STOP)

    def _accepting(self) -> bool:
        """No error here nor downstream: batches still go on."""
        return self.error is None and not self._downstream_failed()

    def _forward(self, result: Any) -> None:
        if self.downstream is not None:
            self.downstream.submit(result)
        else:
            self.done.put(result)

    def _fail(self, exc: BaseException) -> None:
        """Keep the first error of the pipeline (a later one is its consequence)."""
        if self._accepting():
            self.error = exc

    def _control_and_forward(self, item: object) -> None:
        try:
            self.control(item)
        finally:  # control items always go through: every stage keeps draining its queue
            if self.downstream is not None:
                self.downstream.todo.put(item)

    def _downstream_failed(self) -> bool:
        try:
            if self.downstream is not None:
                self.downstream.raise_error()
        except BaseException:
            return True
        return False


class _Validator(_Stage):
    """Validates batches, WORKERS at a time, each worker on an in-memory DuckDB of its own (the fast
    path only needs temporary tables), in parallel with the polling thread and the lander.

    DuckDB runs the queries of a batch on one core and mostly without the GIL, so two batches can
    be validated at once. Results go to the lander strictly in the order the batches came; a
    control item waits until every batch before it is handed over."""

    WORKERS = 2

    def __init__(self, ingester: Ingester, downstream: _Stage) -> None:
        super().__init__("omnivue-validator", downstream)
        self._ingester = ingester
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    def process(self, item: tuple[pa.Table, Counter]) -> _Checked:
        return self._ingester._validate(self._connection(), *item)

    def _connection(self) -> Any:
        """This worker's DuckDB."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = duckdb.connect()
            con.execute("set threads = 1")
            with self._lock:
                self._connections.append(con)
        return con

    def _warm_up(self) -> None:
        """What the first batch would otherwise wait for, done while the consumer group joins."""
        compile_contracts()
        self._connection()

    def control(self, item: object) -> None:
        if item is _STOP:
            with self._lock:
                connections, self._connections = self._connections, []
            for con in connections:
                con.close()

    def run(self) -> None:
        pending: deque[Future] = deque()  # batches being validated, in the order they came
        pool = ThreadPoolExecutor(max_workers=self.WORKERS, thread_name_prefix="omnivue-validate")
        for _ in range(self.WORKERS):
            pool.submit(self._warm_up)  # (an error here comes again, and is reported, with a batch)
        try:
            while True:
                try:
                    item = self.todo.get(timeout=0.01 if pending else None)
                except queue.Empty:
                    self._hand_over(pending)
                    continue
                if item is _STOP or item is _RELEASE:
                    try:
                        self._hand_over(pending, wait_all=True)  # every batch before it first
                        self._control_and_forward(item)
                    finally:
                        self.todo.task_done()
                    if item is _STOP:
                        return
                elif self._accepting():
                    pending.append(pool.submit(self.process, item))  # task_done when handed over
                    self._hand_over(pending, wait_first=len(pending) >= self.WORKERS)
                else:  # after an error nothing more: nothing lands out of order
                    self.todo.task_done()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self.control(_STOP)

    def _hand_over(self, pending: deque, wait_all: bool = False, wait_first: bool = False) -> None:
        """Give the lander the finished batches at the head of ``pending``; with ``wait_first``,
        wait for the first one; with ``wait_all``, for all of them."""
        while pending and (wait_all or wait_first or pending[0].done()):
            wait_first = False
            future = pending.popleft()
            try:
                result = future.result()
                if self._accepting():
                    self._forward(result)
            except BaseException as exc:  # handed to the polling thread
                self._fail(exc)
            finally:
                self.todo.task_done()


class _Lander(_Stage):
    """Lands validated batches in the warehouse, one transaction each, in order.

    The warehouse stays open while batches follow one another (a checkpoint per batch would
    rewrite the table's last row group every time); it is released, and checkpointed, when no
    batch came for IDLE_RELEASE_S, after HOLD_S, on a rebalance and at the end. Within a burst
    it is also checkpointed every CHECKPOINT_ROWS rows: that work then overlaps with polling
    and validation instead of all waiting for the end."""

    IDLE_RELEASE_S = 0.5
    HOLD_S = 5.0
    CHECKPOINT_ROWS = 250_000  # about two of DuckDB's row groups (122,880 rows)
    # Validated batches that may wait (~50 MB each at 40k records): a checkpoint stops the lander
    # ~0.45 s, and with 40k records waiting the validators soon had to stop too (546k records:
    # 4.65 -> 4.39 s with 160k).
    WAITING = 4

    def __init__(self, ingester: Ingester) -> None:
        super().__init__("omnivue-lander", None)
        self._ingester = ingester
        self._con: Any = None
        self._opened_at = 0.0
        self._rows_since_checkpoint = 0

    def process(self, item: _Checked) -> _Landed:
        if self._con is None:
            self._con = connect(self._ingester.settings.warehouse)
            self._con.execute("set checkpoint_threshold = '1GB'")  # checkpoints are ours, not every 16 MB
            self._con.execute("set threads = 1")  # the other threads need the other core
            self._opened_at = time.monotonic()
            self._rows_since_checkpoint = 0
        landed = self._ingester._land_batch(self._con, item)
        self._rows_since_checkpoint += item.records.num_rows
        if time.monotonic() - self._opened_at > self.HOLD_S:
            self.on_idle()  # let dbt and other writers in between batches
        elif self._rows_since_checkpoint >= self.CHECKPOINT_ROWS:
            self._rows_since_checkpoint = 0
            try:
                self._con.execute("checkpoint")
            except Exception as exc:  # the data is committed (in the WAL): the release checkpoints it
                log.warning("checkpoint of the warehouse failed (the data is safe in its WAL): %s", exc)
        return landed

    def idle_timeout(self) -> float | None:
        return self.IDLE_RELEASE_S if self._con is not None else None

    def control(self, item: object) -> None:
        self.on_idle()

    def on_idle(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            try:
                con.execute("reset checkpoint_threshold")
                con.execute("reset threads")
                con.execute("checkpoint")
            except Exception as exc:  # the data is committed (in the WAL): the next open checkpoints it
                log.warning("checkpoint of the warehouse failed (the data is safe in its WAL): %s", exc)
            finally:
                con.close()


class _Pipeline:
    """Validator then lander, fed by the polling thread."""

    def __init__(self, ingester: Ingester) -> None:
        self.lander = _Lander(ingester)
        self.validator = _Validator(ingester, self.lander)
        self.lander.start()
        self.validator.start()

    def submit(self, records: pa.Table, polled_by_topic: Counter) -> None:
        self.validator.submit((records, polled_by_topic))

    def finished(self) -> list[_Landed]:
        out = []
        while True:
            try:
                out.append(self.lander.done.get_nowait())
            except queue.Empty:
                break
        self.validator.raise_error()
        return out

    def wait_idle(self, release: bool = False) -> None:
        """Wait until every batch handed over is landed; with ``release``, also until the
        warehouse is checkpointed and closed (another member may land these partitions next)."""
        if not self.validator.is_alive():
            self.validator.raise_error()
            return
        if release:
            self.validator.submit(_RELEASE)
        while self.validator.busy():
            self.validator.raise_error()
            time.sleep(0.005)
        self.validator.raise_error()

    def stop(self) -> None:
        try:
            self.validator.todo.put(_STOP, timeout=60)
        except queue.Full:  # stuck after an error elsewhere: daemon threads
            return
        self.validator.join(timeout=60)
        self.lander.join(timeout=60)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, ingester: Ingester) -> None:
        self.ingester = ingester

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.ingester._on_revoked(list(revoked))

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.ingester._on_assigned(list(assigned))
