"""Throughput benchmark (part of ``make bench``): every figure is a ratio against a
baseline measured in the same run, on the same broker and data.

- producer: the simulator's publish vs a bare kafka-python producer loop
  sending the same records;
- ingest: ``omnivue ingest`` (validate + land exactly once in DuckDB) vs a
  bare kafka-python consume loop over the same topics (and ingest again with
  landed_events.raw kept, OMNIVUE_INGEST_KEEP_RAW=1).

Results are printed and written to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, table, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bare_produce(settings, records) -> float:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=20,
                             batch_size=512 * 1024)
    start = time.perf_counter()
    for r in records:
        producer.send(r.topic, key=r.key, value=r.value)
    producer.flush()
    elapsed = time.perf_counter() - start
    producer.close()
    return elapsed


def bare_consume(settings, topics, expected: int) -> tuple[float, float]:
    """The baseline: a consumer group polling every record once, doing nothing with it.
    Returns the seconds in all and the seconds to the first record (the group join)."""
    from omnivue.ingester import streaming_interpreter
    from omnivue.kafka_io import make_consumer

    consumer = make_consumer(settings, f"bench-bare-{time.time_ns()}")
    start = time.perf_counter()  # the group join counts, as it does for ingest
    consumer.subscribe(topics)
    n = 0
    first = None
    with streaming_interpreter():  # the interpreter settings ingest runs with
        while n < expected:
            polled = consumer.poll(timeout_ms=500, max_records=10_000)
            n += sum(len(v) for v in polled.values())
            if n and first is None:
                first = time.perf_counter() - start
    elapsed = time.perf_counter() - start
    consumer.close()
    return elapsed, first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000, help="simulated people (default 20000)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="omnivue-bench-"))
    os.environ["OMNIVUE_HOME"] = str(home)
    os.environ["OMNIVUE_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{_free_port()}"
    from omnivue import broker
    from omnivue.config import load_settings
    from omnivue.envelope import INPUT_TOPICS
    from omnivue.ingester import Ingester
    from omnivue.simulator import Simulation, publish

    settings = load_settings()
    broker.start(settings)
    try:
        t = time.perf_counter()
        result = Simulation(args.people, 30, seed=1).build()
        build_s = time.perf_counter() - t
        n = len(result.records)
        t = time.perf_counter()
        publish(settings, result, progress=False)
        sim_publish_s = time.perf_counter() - t
        # the same records again through a bare producer: the producer baseline
        bare_produce_s = bare_produce(settings, result.records)
        total = 2 * n  # every record is now on the topics twice
        # The consumers below run as in `omnivue ingest`, without the simulation's millions of objects
        # alive in the process (they would make every garbage collection of both loops slower).
        del result
        gc.collect()

        cpu = time.process_time()
        bare_s, bare_join_s = bare_consume(settings, list(INPUT_TOPICS), total)
        bare_cpu = time.process_time() - cpu
        ingester = Ingester(settings, group_id="bench-ingest")
        cpu = time.process_time()
        stats = ingester.run(until_caught_up=True, progress=False)
        ingest_cpu = time.process_time() - cpu
        ingest_s = stats.seconds
        ingest_join_s = stats.first_record_seconds
        assert stats.landed + stats.dead == total, (stats.landed, stats.dead, total)
        # the same with landed_events.raw kept (OMNIVUE_INGEST_KEEP_RAW=1), into a warehouse of its own
        kept = Ingester(replace(settings, home=home / "keep-raw", keep_raw=True), group_id="bench-ingest-raw")
        kept_stats = kept.run(until_caught_up=True, progress=False)
        assert kept_stats.landed + kept_stats.dead == total, (kept_stats.landed, kept_stats.dead, total)
    finally:
        broker.stop(settings)

    rows = [
        ("simulator: build events", f"{n / build_s:,.0f} records/s", ""),
        ("producer baseline: bare kafka-python send loop", f"{n / bare_produce_s:,.0f} records/s", "1.00"),
        ("simulator publish", f"{n / sim_publish_s:,.0f} records/s", f"{bare_produce_s / sim_publish_s:.2f}"),
        ("consume baseline: bare kafka-python poll loop", f"{total / bare_s:,.0f} records/s", "1.00"),
        ("omnivue ingest (validate + land, exactly once)", f"{total / ingest_s:,.0f} records/s",
         f"{bare_s / ingest_s:.2f}"),
        ("omnivue ingest keeping each event's original text (OMNIVUE_INGEST_KEEP_RAW=1)",
         f"{total / kept_stats.seconds:,.0f} records/s", f"{bare_s / kept_stats.seconds:.2f}"),
        ("consume baseline past the group join", f"{total / (bare_s - bare_join_s):,.0f} records/s", "1.00"),
        ("omnivue ingest past the group join", f"{total / (ingest_s - ingest_join_s):,.0f} records/s",
         f"{(bare_s - bare_join_s) / (ingest_s - ingest_join_s):.2f}"),
        # CPU of this process (every thread; the broker's not included), join included
        ("CPU per record: bare poll loop", f"{bare_cpu / total * 1e6:.1f} µs", "1.00"),
        ("CPU per record: omnivue ingest", f"{ingest_cpu / total * 1e6:.1f} µs", f"{ingest_cpu / bare_cpu:.2f}"),
    ]
    header = (f"{machine()}, local Tansu broker; {args.people} people, {n} records "
              f"({total} consumed). The first consume figures include the consumer-group join "
              f"({bare_join_s:.1f} s bare, {ingest_join_s:.1f} s ingest to the first record); the rows \"past the group "
              "join\" start at the first record")
    text = table(rows, ("measurement", "rate", "ratio to baseline"))
    print(header)
    print(text)
    if not args.no_write:
        write_section("throughput", "Producer and ingest throughput", header + "\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
