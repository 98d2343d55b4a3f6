"""Ingest against the real local broker: validation, dead letters, exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import duckdb

from omnivue.config import load_settings
from omnivue.ingester import Ingester
from omnivue.record_batches import polled_table
from omnivue.validation import Rejected, validate_record
from omnivue.warehouse import ensure_landing, session
from omnivue.simulator import Simulation, publish

from conftest import ROOT


def _landed(settings):
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        landed = con.execute('select topic, "partition", "offset", event_id from landed_events').fetchall()
        dead = con.execute("select reason, raw, topic from dead_letter").fetchall()
    finally:
        con.close()
    return landed, dead


def test_ingest_lands_valid_events_and_dead_letters_the_rest(broker):
    settings = load_settings()
    result = Simulation(60, 10, seed=7).build()
    publish(settings, result, progress=False)
    truth = result.truth

    stats = Ingester(settings, batch_size=500).run(until_caught_up=True, max_seconds=120, progress=False)

    landed, dead = _landed(settings)
    assert stats.landed == len(landed) == truth["valid_events"] + len(truth["duplicates"])
    assert len({row[3] for row in landed}) == truth["valid_events"]
    assert len({(t, p, o) for t, p, o, _ in landed}) == len(landed)  # one row per Kafka record
    assert Counter(raw for _, raw, _ in dead) == Counter(b["raw"] for b in truth["bad_records"])
    assert all(reason.split(":")[0] in {"not_json", "schema", "wrong_topic", "identity"} for reason, _, _ in dead)
    assert sum(stats.lag.values()) == 0

    # a second run finds nothing new: the stored offsets are the truth
    again = Ingester(settings).run(until_caught_up=True, max_seconds=60, progress=False)
    assert again.landed == 0 and again.dead == 0
    assert len(_landed(settings)[0]) == len(landed)


def test_landed_events_keep_the_original_text_only_when_asked(broker, tmp_path):
    """landed_events.raw is NULL by default; with keep_raw (OMNIVUE_INGEST_KEEP_RAW=1) it is each
    record's text exactly as sent, on the fast path and on the Python one. Dead letters always
    keep it."""
    settings = load_settings()
    assert not settings.keep_raw
    result = Simulation(40, 5, seed=3).build()
    publish(settings, result, progress=False)
    sent = Counter(r.value.decode("utf-8") for r in result.records)
    for fast in (True, False):
        kept = replace(settings, home=tmp_path / f"kept-{fast}", keep_raw=True)
        Ingester(kept, group_id=f"kept-{fast}", fast_path=fast).run(until_caught_up=True, max_seconds=120,
                                                                     progress=False)
        with duckdb.connect(str(kept.warehouse), read_only=True) as con:
            texts = [r for (r,) in con.execute("select raw from landed_events union all "
                                               "select raw from dead_letter").fetchall()]
        assert Counter(texts) == sent, f"fast path {fast}"
    stats = Ingester(settings).run(until_caught_up=True, max_seconds=120, progress=False)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        assert con.execute("select count(*), count(raw) from landed_events").fetchone() == (stats.landed, 0)
        # event ids are stored uncompressed (warehouse.LANDING_DDL: cheaper checkpoints and lookups)
        assert con.execute("select distinct compression from pragma_storage_info('landed_events') "
                           "where column_name = 'event_id' and segment_type = 'VARCHAR'").fetchall() \
            == [("Uncompressed",)]
    assert stats.landed > 0 and stats.dead > 0
    assert Counter(raw for _, raw, _ in _landed(settings)[1]) == Counter(b["raw"] for b in result.truth["bad_records"])


def test_a_batch_partly_landed_elsewhere_lands_only_the_rest(tmp_path):
    """A batch whose first records an earlier run or another member of the group has landed
    meanwhile: the lander validates the rest again inside its transaction, on the warehouse's
    connection (phones normalised there too), and lands only that."""
    settings = replace(load_settings(), home=tmp_path)
    records = [r for r in Simulation(60, 5, seed=4).build().records if r.topic == "consent"]
    table = polled_table([{"topic": r.topic, "partition": 0, "offset": i, "timestamp": 0, "key": r.key,
                           "value": r.value} for i, r in enumerate(records)])
    ingester = Ingester(settings, group_id="g")
    checked = ingester._validate(duckdb.connect(), table)
    half = len(records) // 2
    ensure_landing(settings.warehouse)
    with session(settings.warehouse) as con:
        con.execute("insert into ingest_offsets values ('g', 'consent', 0, ?, now())", [half])
        done = ingester._land_batch(con, checked)
        landed = dict(con.execute('select "offset", phone from landed_events').fetchall())
        dead = {o for (o,) in con.execute('select "offset" from dead_letter').fetchall()}
        stored = con.execute("select next_offset from ingest_offsets where consumer_group = 'g'").fetchall()
    expected, bad = {}, set()
    for i, r in enumerate(records[half:], start=half):
        try:
            valid = validate_record(r.topic, r.value)
        except Rejected:
            bad.add(i)
        else:
            expected[i] = valid.identities.get("phone")
    assert done.skipped == half and stored == [(len(records),)]
    assert landed == expected and dead == bad
    assert any(expected.values()) and bad  # phones normalised, records dead-lettered: both paths ran


def test_ingest_survives_sigkill_at_random_instants(broker):
    """Kill the ingester many times mid-load; nothing lost, nothing twice."""
    settings = load_settings()
    result = Simulation(1200, 20, seed=11).build()
    publish(settings, result, progress=False)
    truth = result.truth
    expected_landed = truth["valid_events"] + len(truth["duplicates"])
    rng = random.Random(5)
    exe = str(Path(sys.executable).with_name("omnivue"))
    kills = 0
    for attempt in range(40):
        proc = subprocess.Popen([exe, "ingest", "--until-caught-up", "--batch-size", "150", "-q"],
                                cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(3.2, 4.5))  # the group join takes ~3 s; kill during the load
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        else:
            break
        if kills >= 6:
            break
    final = subprocess.run([exe, "ingest", "--until-caught-up", "--json", "-q"], cwd=ROOT, env=os.environ.copy(),
                           capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert kills >= 3, "the load finished before the ingester could be killed: make it bigger"
    landed, dead = _landed(settings)
    assert len(landed) == expected_landed
    assert len({(t, p, o) for t, p, o, _ in landed}) == expected_landed
    assert len({row[3] for row in landed}) == truth["valid_events"]
    assert Counter(raw for _, raw, _ in dead) == Counter(b["raw"] for b in truth["bad_records"])
    assert json.loads(final.stdout)["lag"] and sum(json.loads(final.stdout)["lag"].values()) == 0


def test_ingest_waits_for_an_unreachable_broker_then_lands(omnivue_env):
    """No broker at first: a clear log line and a retry, not a crash; then everything lands."""
    from omnivue import broker as broker_mod
    from omnivue.envelope import encode, make_event
    from datetime import datetime, timezone
    from kafka import KafkaProducer

    settings = load_settings()
    exe = str(Path(sys.executable).with_name("omnivue"))
    proc = subprocess.Popen([exe, "ingest", "--until-caught-up", "--max-seconds", "120", "-q"], cwd=ROOT,
                            env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(14)
        assert proc.poll() is None, proc.communicate()
        broker_mod.start(settings)
        producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
        events = [make_event("email.opened", datetime.now(timezone.utc), "sendgrid", {"email": f"u{i}@example.com"})
                  for i in range(20)]
        for e in events:
            producer.send("interactions.email", value=encode(e))
        producer.flush()
        producer.close()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        assert "cannot reach Kafka" in err or "retrying" in err
        assert "Traceback" not in err
        landed, _ = _landed(settings)
        assert {row[3] for row in landed} == {e["event_id"] for e in events}
    finally:
        if proc.poll() is None:
            proc.kill()
        broker_mod.stop(settings)


def test_ingest_until_caught_up_fails_when_another_member_keeps_every_partition(broker):
    """A member of the group that holds every partition and stops polling (busy, stuck) never lets
    the group rebalance: ingest got no partition and waited until --max-seconds, or for ever. It
    waits a bounded time for the member to leave, then says what holds it, in one line."""
    from conftest import other_group_member, run_cli

    with other_group_member(load_settings(), keep_polling=False) as held:
        start = time.monotonic()
        proc = run_cli("ingest", "--until-caught-up", "-q", env={"OMNIVUE_INGEST_GROUP_WAIT_SECONDS": "8"},
                       timeout=90)
        took = time.monotonic() - start
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "omnivue: error: another consumer in group 'omnivue-ingest' holds partitions consent[0-3], identity[0-3], "
        "interactions.email[0-3], interactions.mobile[0-3], interactions.social[0-3]: stop it or use another group "
        "(OMNIVUE_CONSUMER_GROUP, or `omnivue ingest --group`); this ingest cannot catch up while it does (waited "
        "8s for it to leave)")
    assert len(held) == 1  # it kept them all
    assert took < 45


def test_a_run_whose_ingest_fails_says_why_in_its_summary(broker):
    """`omnivue run` said only "failed: ingest (details in <log>)" and listed every task the failure
    kept from running, one per line. It now gives the failed task's reason and counts the others."""
    from conftest import other_group_member, run_cli

    with other_group_member(load_settings(), keep_polling=False):
        proc = run_cli("run", env={"OMNIVUE_INGEST_GROUP_WAIT_SECONDS": "5"}, timeout=300)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    failed = [line for line in lines if line.startswith("failed: ")]
    assert failed == [f"failed: ingest: another consumer in group 'omnivue-ingest' holds partitions consent[0-3], "
                      "identity[0-3], interactions.email[0-3], interactions.mobile[0-3], interactions.social[0-3]: "
                      "stop it or use another group (OMNIVUE_CONSUMER_GROUP, or `omnivue ingest --group`); this "
                      "ingest cannot catch up while it does (waited 5s for it to leave)"], failed
    assert not [line for line in lines if "upstream_failed" in line]
    (not_run,) = [line for line in lines if "tasks not run" in line]
    assert int(not_run.split()[1]) > 40
    assert any(line.startswith("details in ") and line.endswith(".log") for line in lines)


class _SlowFirst:
    """Stands in for the Ingester in the validator: batches named "slow" take longer than the
    ones after them, so the workers finish out of order."""

    def _validate(self, con, records, polled_by_topic):
        if records[0] == "boom":
            raise ValueError("validation failed")
        time.sleep(0.3 if records[0] == "slow" else 0.01)
        assert con.execute("select 42").fetchall() == [(42,)]  # each worker has its own DuckDB
        return records[0]


def _validator_and_lander():
    from omnivue.ingester import _STOP, _Stage, _Validator

    class Lander(_Stage):
        def __init__(self):
            super().__init__("test-lander", None)
            self.seen = []

        def process(self, item):
            self.seen.append(item)
            return item

        def control(self, item):
            if item is not _STOP or _STOP not in self.seen:  # a stage also tells itself to stop on exit
                self.seen.append(item)

    lander = Lander()
    validator = _Validator(_SlowFirst(), lander)
    lander.start()
    validator.start()
    return validator, lander


def test_parallel_validation_hands_batches_over_in_the_order_they_came():
    from omnivue.ingester import _RELEASE, _STOP

    validator, lander = _validator_and_lander()
    for batch in ("slow", "a", "b", _RELEASE, "slow", "c"):
        validator.submit(batch if batch is _RELEASE else ([batch], None))
    validator.todo.put(_STOP)
    validator.join(10)
    lander.join(10)
    assert lander.seen == ["slow", "a", "b", _RELEASE, "slow", "c", _STOP]


def test_after_a_failed_batch_nothing_more_is_handed_over():
    import pytest

    from omnivue.ingester import _STOP

    validator, lander = _validator_and_lander()
    validator.submit((["slow"], None))
    validator.submit((["boom"], None))
    time.sleep(0.5)
    with pytest.raises(ValueError, match="validation failed"):
        for batch in ("a", "b"):
            validator.submit(([batch], None))
        while validator.busy():
            time.sleep(0.01)
        validator.raise_error()
    validator.todo.put(_STOP)
    validator.join(10)
    lander.join(10)
    assert lander.seen == ["slow", _STOP]
