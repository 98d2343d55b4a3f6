"""The webhook receiver: real HTTP on localhost, the real local broker (Tansu),
the real DuckDB warehouse for dead letters."""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Iterator

import duckdb
import pytest
from kafka import KafkaConsumer, TopicPartition

from conftest import free_port
from omnivue import webhook
from omnivue.adapters import ADAPTERS
from omnivue.config import load_settings

DATA = Path(__file__).parent / "data" / "providers"


def sample_bytes(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.fixture
def server(omnivue_env) -> Iterator[webhook.WebhookServer]:
    """A receiver on a free port, serving in a thread (settings from the test's environment)."""
    srv = webhook.make_server(load_settings(), "127.0.0.1", 0, max_body_bytes=64 * 1024, publish_timeout_s=5)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def request(srv, path: str, body: bytes | None = None, method: str = "POST",
            headers: dict[str, str] | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(srv.url + path, data=body, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def dead_letters(srv) -> list[tuple]:
    path = srv.settings.warehouse
    if not path.exists():
        return []
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute('select reason, raw, topic, "partition", "offset", record_key, raw_bytes '
                           'from dead_letter order by "offset"').fetchall()


def consume(bootstrap: str, topics: list[str], expected: int, timeout_s: float = 20) -> list:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             consumer_timeout_ms=500)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or [])]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records, deadline = [], time.monotonic() + timeout_s
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def test_sendgrid_sample_reaches_kafka_as_canonical_events(broker, server):
    body = sample_bytes("sendgrid_event_webhook.json")
    status, answer = request(server, "/webhooks/sendgrid", body)
    assert status == 200, answer
    assert (answer["accepted"], answer["skipped"], answer["rejected"], answer["events"]) == (10, 1, 0, 13)

    # a redelivery of the identical body publishes the same event ids (deduplicated downstream)
    status, again = request(server, "/webhooks/sendgrid", body)
    assert status == 200 and again["events"] == 13

    # a batch with one malformed item: the good ones go through, the bad one is dead-lettered
    mixed = json.loads(body)[:2] + [{"event": "open", "timestamp": "yesterday", "email": "a@b.co"}]
    status, answer = request(server, "/webhooks/sendgrid", json.dumps(mixed).encode())
    assert status == 200 and (answer["accepted"], answer["skipped"], answer["rejected"]) == (1, 1, 1)
    assert any(r.startswith("bad_time:") for r in answer["reasons"])

    expected = ADAPTERS["sendgrid"].convert(json.loads(body)).events
    records = consume(broker["OMNIVUE_KAFKA_BOOTSTRAP"], ["interactions.email", "consent"], 13 * 2 + 1)
    assert len(records) == 27
    by_id = Counter(json.loads(r.value)["event_id"] for r in records)
    assert {e["event_id"] for e in expected} <= set(by_id)
    assert all(by_id[e["event_id"]] == 2 for e in expected if e["event_type"] != "email.sent")
    assert by_id[expected[0]["event_id"]] == 3  # the processed event was in all three bodies
    for r in records:
        event = json.loads(r.value)
        assert r.topic == {"email": "interactions.email", "consent": "consent"}[event["channel"]]
        assert r.key == b"email:example@test.com"
        assert event["source"] == "sendgrid" and event["schema_version"] == 1
    assert Counter(json.loads(r.value)["event_type"] for r in records if r.topic == "consent") == Counter(
        {"consent.withdrawn": 6, "consent.granted": 2})

    rows = dead_letters(server)
    assert len(rows) == 1
    reason, raw, topic, partition, offset, record_key, raw_bytes = rows[0]
    assert reason.startswith("bad_time:") and json.loads(raw)["timestamp"] == "yesterday"
    assert (topic, partition) == ("webhook/sendgrid", -1) and offset > 0 and record_key

    # the other providers on the same server
    status, answer = request(server, "/webhooks/x", sample_bytes("x_api_v2_tweets.json"))
    assert status == 200 and answer["events"] == 2
    status, answer = request(server, "/webhooks/segment", sample_bytes("segment_spec_calls.json"))
    assert status == 200 and (answer["accepted"], answer["skipped"], answer["events"]) == (3, 2, 4)
    social = consume(broker["OMNIVUE_KAFKA_BOOTSTRAP"], ["interactions.social"], 2)
    assert sorted(r.key for r in social) == [b"social_handle:x:claire_dupont", b"social_handle:x:sam_k"]


def test_bad_bodies_get_4xx_with_a_reason_and_a_dead_letter(server, caplog):
    caplog.set_level(logging.INFO, logger="omnivue.webhook")
    # none of these touches Kafka: no broker is running for this test
    cases = [
        ("/webhooks/sendgrid", b"{this is not json", 400, "not_json"),
        ("/webhooks/sendgrid", b'{"event": "processed"}', 422, "wrong_shape"),
        ("/webhooks/segment", b'"just a string"', 422, "wrong_shape"),
        ("/webhooks/x", b"[1, 2]", 422, "wrong_shape"),
        ("/webhooks/hubspot", b"[]", 404, "unknown_provider"),
        ("/webhooks/sendgrid", b"\xff\xfe\x00garbage", 400, "not_json"),
    ]
    for path, body, status, code in cases:
        got, answer = request(server, path, body)
        assert (got, answer["error"]) == (status, code), (path, body, answer)
        assert answer["reason"].startswith(code + ":") and answer["dead_lettered"] is True

    big = b"[" + b",".join([b'{"event":"open"}'] * 10_000) + b"]"
    assert len(big) > server.max_body_bytes
    got, answer = request(server, "/webhooks/sendgrid", big)
    assert (got, answer["error"]) == (413, "too_large")

    rows = dead_letters(server)
    assert [r[0].split(":", 1)[0] for r in rows] == [c[3] for c in cases] + ["too_large"]
    assert [r[2] for r in rows] == ["webhook/sendgrid", "webhook/sendgrid", "webhook/segment", "webhook/x",
                                    "webhook/hubspot", "webhook/sendgrid", "webhook/sendgrid"]
    assert all(r[3] == -1 for r in rows)
    offsets = [r[4] for r in rows]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    assert rows[0][1] == "{this is not json" and rows[0][6] == b"{this is not json"  # nothing is lost
    assert rows[5][6] == b"\xff\xfe\x00garbage"
    assert len(rows[6][6]) == webhook.TOO_LARGE_KEEP_BYTES
    lines = [r.getMessage() for r in caplog.records if r.name == "omnivue.webhook"]
    assert len(lines) == len(cases) + 1  # one line per request, with the provider and the counts
    assert lines[0].startswith("webhook sendgrid ") and "-> 400 accepted=0 skipped=0 rejected=1" in lines[0]

    # not a webhook, wrong methods, health
    assert request(server, "/elsewhere", b"{}")[0] == 404
    assert request(server, "/webhooks/sendgrid", None, method="DELETE")[0] == 405
    assert request(server, "/healthz", None, method="GET") == (200, {"status": "ok",
                                                                     "providers": sorted(ADAPTERS)})
    assert len(dead_letters(server)) == len(rows)  # those are not provider bodies


def test_gzip_bodies_are_accepted(server):
    body = gzip.compress(b'{"event": "processed"}')
    got, answer = request(server, "/webhooks/sendgrid", body, headers={"Content-Encoding": "gzip"})
    assert (got, answer["error"]) == (422, "wrong_shape")  # decoded, then judged on its shape


def test_kafka_unreachable_answers_503_and_dead_letters_nothing(server, omnivue_env):
    # omnivue_env points at a free port where no broker listens
    started = time.monotonic()
    got, answer = request(server, "/webhooks/sendgrid", sample_bytes("sendgrid_event_webhook.json"))
    assert (got, answer["error"]) == (503, "kafka_unavailable")
    assert omnivue_env["OMNIVUE_KAFKA_BOOTSTRAP"] in answer["reason"]
    assert time.monotonic() - started < 5
    assert dead_letters(server) == []  # the provider retries; nothing is recorded twice
    # a payload without a single event does not need Kafka
    got, answer = request(server, "/webhooks/sendgrid", b"[]")
    assert got == 200 and answer["accepted"] == 0


def network_threads() -> list[str]:
    """The webhook producers' sender threads still running (kafka-python names them after client_id)."""
    return [t.name for t in threading.enumerate() if t.name == "omnivue-webhook-network-thread" and t.is_alive()]


def test_broker_going_away_answers_503_then_recovers(broker, server):
    from omnivue import broker as broker_mod

    settings = load_settings()
    body = sample_bytes("x_api_v2_tweets.json")
    assert request(server, "/webhooks/x", body)[0] == 200
    broker_mod.stop(settings)
    server.publish_timeout_s = 2  # how long a flush may take before the answer is 503
    started = time.monotonic()
    got, answer = request(server, "/webhooks/x", body)
    assert (got, answer["error"]) == (503, "kafka_unavailable"), answer
    assert time.monotonic() - started < server.publish_timeout_s + 5
    assert dead_letters(server) == []
    # the failed producer is closed once its batches expire (delivery timeout = the fixture's 5 s
    # publish timeout): its network thread ends instead of living on after every failure
    deadline = time.monotonic() + 15
    while network_threads() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert network_threads() == []
    broker_mod.start(settings)  # a fresh (in-memory) broker: the next delivery goes through
    got, answer = request(server, "/webhooks/x", body)
    assert got == 200 and answer["events"] == 2
    assert len(consume(broker["OMNIVUE_KAFKA_BOOTSTRAP"], ["interactions.social"], 2)) == 2


def test_cli_arguments_wire_in_one_line():
    import argparse

    parser = argparse.ArgumentParser(prog="omnivue")
    sub = parser.add_subparsers(dest="command")
    webhook.add_arguments(sub.add_parser("webhook"))
    args = parser.parse_args(["webhook", "serve", "--host", "127.0.0.1", "--port", str(free_port())])
    assert args.func is webhook.run_command and args.action == "serve" and args.port > 0
    with pytest.raises(SystemExit):
        parser.parse_args(["webhook", "serve", "--port", "http"])
