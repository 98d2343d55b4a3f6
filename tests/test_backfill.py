"""`omnivue backfill`: history files -> Kafka -> `omnivue run`, on the real broker, ingest and dbt.

- canonical JSON Lines with bad lines: the un-routable ones are dead-lettered by the backfill (reason, line
  number), the schema-invalid one by ingest, every good event lands; a re-run records nothing twice;
- OLD events (months ago) backfilled after a first build: the incremental build equals a full refresh,
  and the old evidence changes what it must (consent of a later send, a merge, revenue);
- provider exports with --provider give exactly what posting them to the webhook gives;
- Kafka failing half-way, then a re-run; bad arguments; --dry-run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import run_cli
from pipeline_helpers import COMPARED_MODELS, query, run_dbt, score_sentiment, snapshot, warehouse_violations
from test_webhook import consume, request, server  # noqa: F401  (server: the webhook receiver fixture)

DATA = Path(__file__).parent / "data" / "providers"
INPUT_TOPICS = ["interactions.social", "interactions.email", "interactions.mobile", "consent", "identity"]
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def ev(event_type: str, at: datetime, identities: dict, properties: dict | None = None) -> dict:
    return {"event_id": str(uuid.uuid4()), "event_type": event_type, "channel": event_type.split(".")[0],
            "occurred_at": at.isoformat(), "source": "legacy-crm", "identities": identities,
            "properties": properties or {}, "schema_version": 1}


def write_lines(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def dead_letters(wh: Path, topic: str) -> list[tuple]:
    return query(wh, 'select "offset", reason, raw, record_key from dead_letter where topic = ? order by 1', [topic])


@pytest.mark.slow
def test_backfill_of_old_events_lands_everything_and_builds_like_a_full_refresh(broker, tmp_path):
    wh = Path(broker["OMNIVUE_HOME"]) / "warehouse.duckdb"
    recent = NOW - timedelta(days=2)
    old = NOW - timedelta(days=200)  # last year's history, months before anything already built
    mk = {"purpose": "marketing"}

    # the first build: what the brand's live producers sent over the last days
    dana_send = ev("email.sent", recent, {"email": "dana@example.com"}, {"campaign_id": "c-now"})
    eve_app = ev("mobile.app_opened", recent, {"device_id": "dev-eve"})
    eve_mail = ev("email.opened", recent + timedelta(hours=1), {"customer_id": "CUST-EVE", "email": "eve@example.com"})
    frank_buy = ev("mobile.purchase", recent, {"customer_id": "CUST-FRANK"}, {"amount": 20, "currency": "EUR"})
    mention = ev("social.mention", recent, {"social_handle": "x:gus"}, {"text": "Love the new app!", "lang": "en"})
    live = [dana_send, eve_app, eve_mail, frank_buy, mention]
    result = run_cli("backfill", "-q", str(write_lines(tmp_path / "live.jsonl", live)))
    assert result.returncode == 0, result.stderr
    ingest = run_cli("ingest", "--until-caught-up", "-q")
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    score_sentiment(wh)
    run_dbt(wh, tmp_path, "run")
    assert warehouse_violations(wh) == {dana_send["event_id"]}  # no consent known yet
    persons = dict(query(wh, "select event_id, person_id from fct_interactions"))
    assert persons[eve_app["event_id"]] != persons[eve_mail["event_id"]]

    # last year's export: old consent, an old login linking Eve's device, old purchases and mentions,
    # and lines that are broken in every way
    dana_grant = ev("consent.granted", old, {"email": "Dana@Example.com"}, {**mk, "scope": "email"})
    eve_login = ev("identity.linked", old, {"device_id": "dev-eve", "customer_id": "CUST-EVE"})
    frank_old = [ev("mobile.purchase", old + timedelta(days=d), {"customer_id": "CUST-FRANK"},
                    {"amount": 100, "currency": "EUR"}) for d in (0, 30)]
    old_mentions = [ev("social.mention", old + timedelta(hours=h), {"social_handle": f"x:fan{h}"},
                       {"text": "Awful service, never again", "lang": "en"}) for h in range(3)]
    invalid = ev("consent.granted", old, {"email": "hal@example.com"}, mk)  # no scope: the contract rejects it
    good = [dana_grant, eve_login, *frank_old, *old_mentions]
    lines = [dana_grant, eve_login, '{"event_id": "cut off in the middle', frank_old[0], "",
             {**ev("email.replied", old, {"email": "x@example.com"})}, invalid, frank_old[1], [1, 2],
             *old_mentions]
    backfill_file = write_lines(tmp_path / "crm_2025.jsonl", lines)
    result = run_cli("backfill", str(backfill_file))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "12 lines (1 blank): 8 events published, 3 dead-lettered" in out, out
    assert "consent=2, identity=1, interactions.mobile=2, interactions.social=3" in out  # the invalid one too
    assert "dead letters by reason: not_json=1, unknown_event_type=1, not_object=1" in out
    assert "omnivue run" in out
    backfill_dead = dead_letters(wh, "backfill/crm_2025.jsonl")
    assert [(o, r.split(":")[0], k) for o, r, _, k in backfill_dead] == [
        (3, "not_json", "line 3"), (6, "unknown_event_type", "line 6"), (9, "not_object", "line 9")]
    assert backfill_dead[0][2] == lines[2] and json.loads(backfill_dead[1][2])["event_type"] == "email.replied"

    # a re-run (say, after a failure half-way) publishes again and records no dead letter twice
    again = run_cli("backfill", "-q", str(backfill_file))
    assert again.returncode == 0 and "3 of them were recorded by an earlier backfill" in again.stdout, again.stdout
    assert dead_letters(wh, "backfill/crm_2025.jsonl") == backfill_dead

    run = run_cli("run")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    landed = Counter(e for (e,) in query(wh, "select event_id from landed_events"))
    assert all(landed[e["event_id"]] == 1 for e in live)
    assert all(landed[e["event_id"]] == 2 for e in good)  # published twice, landed twice ...
    staged = Counter(e for (e,) in query(wh, "select event_id from int_events"))
    assert all(staged[e["event_id"]] == 1 for e in live + good)  # ... and counted once
    assert landed[invalid["event_id"]] == 0
    rejected = query(wh, "select topic, reason from dead_letter where raw like ?", [f'%{invalid["event_id"]}%'])
    assert len(rejected) == 2 and all(t == "consent" and r.startswith("schema") for t, r in rejected), rejected
    assert len(dead_letters(wh, "backfill/crm_2025.jsonl")) == 3

    # old events are judged by when they happened: the old grant covers the recent send, the old login
    # merges Eve's device with her customer id, Frank's revenue counts the old purchases
    assert warehouse_violations(wh) == set()
    persons = dict(query(wh, "select event_id, person_id from fct_interactions"))
    assert persons[eve_app["event_id"]] == persons[eve_mail["event_id"]]
    ((revenue,),) = query(wh, "select c.revenue from customer_360 c join fct_interactions f using (person_id) "
                              "where f.event_id = ?", [frank_buy["event_id"]])
    assert float(revenue) == 220
    old_days = query(wh, "select sum(mentions) from ereputation_daily where mention_date < ?", [(NOW - timedelta(days=30)).date()])
    assert old_days == [(3,)]

    # the incremental build after the backfill equals a full refresh of the same warehouse
    copy = tmp_path / "refresh" / "warehouse.duckdb"
    copy.parent.mkdir()
    shutil.copy(wh, copy)
    incremental = snapshot(copy)
    run_dbt(copy, tmp_path / "refresh", "run", "--full-refresh")
    full = snapshot(copy)
    for model in COMPARED_MODELS:
        assert incremental[model] == full[model], f"{model} differs between incremental and full refresh"


def records_by_event(bootstrap: str, expected: int) -> dict[str, list[tuple]]:
    by_id: dict[str, list[tuple]] = {}
    for r in consume(bootstrap, INPUT_TOPICS, expected):
        by_id.setdefault(json.loads(r.value)["event_id"], []).append((r.topic, r.key, r.value))
    return by_id


def test_provider_exports_give_what_the_webhook_gives(broker, server, tmp_path):  # noqa: F811
    bootstrap = broker["OMNIVUE_KAFKA_BOOTSTRAP"]
    # whole documents: a SendGrid webhook body, an X search response
    for provider, name in (("sendgrid", "sendgrid_event_webhook.json"), ("x", "x_api_v2_tweets.json")):
        status, answer = request(server, f"/webhooks/{provider}", (DATA / name).read_bytes())
        assert status == 200, answer
        result = run_cli("backfill", "-q", "--provider", provider, str(DATA / name))
        assert result.returncode == 0, result.stderr
        assert f"{answer['events']} events published" in result.stdout, result.stdout
    # a Segment export as JSON Lines, one call per line, with a line that is not JSON, a call with a
    # bad email (an item error) and a whole payload of the wrong shape
    calls = json.loads((DATA / "segment_spec_calls.json").read_text())
    bad_call = {**calls[0], "type": "identify", "userId": "u-9", "traits": {"email": "not an email"}}
    lines = [json.dumps(c) for c in calls] + ["{oops", json.dumps(bad_call), '"just a string"']
    export = write_lines(tmp_path / "segment_export.jsonl", lines)
    for line in lines:
        request(server, "/webhooks/segment", line.encode())
    result = run_cli("backfill", "--provider", "segment", str(export))
    assert result.returncode == 0, result.stderr
    assert "3 dead-lettered" in result.stdout and "skipped by reason:     unmapped_event=2" in result.stdout

    expected = 2 * (13 + 2 + 4)
    by_id = records_by_event(bootstrap, expected)
    assert sum(map(len, by_id.values())) == expected
    for event_id, copies in by_id.items():  # the same records: topic, key and bytes
        assert len(copies) == 2 and copies[0] == copies[1], (event_id, copies)

    wh = Path(broker["OMNIVUE_HOME"]) / "warehouse.duckdb"
    via_webhook = sorted((r, raw) for _, r, raw, _ in dead_letters(wh, "webhook/segment"))
    via_backfill = dead_letters(wh, "backfill/segment_export.jsonl")
    assert sorted((r, raw) for _, r, raw, _ in via_backfill) == via_webhook
    assert [(o, r.split(":")[0]) for o, r, _, _ in via_backfill] == [
        (len(calls) + 1, "not_json"), (len(calls) + 2, "identity"), (len(calls) + 3, "wrong_shape")]


def test_kafka_failing_half_way_then_a_rerun(broker, tmp_path, monkeypatch):
    from omnivue import backfill, broker as broker_mod
    from omnivue.config import load_settings
    from omnivue.kafka_io import BrokerUnavailable

    settings = load_settings()
    events = [ev("email.opened", NOW - timedelta(days=90, hours=h), {"email": f"p{h}@example.com"}) for h in range(6)]
    lines = [events[0], events[1], "not json 1", events[2], events[3], "not json 2", events[4], events[5]]
    path = write_lines(tmp_path / "history.jsonl", lines)
    monkeypatch.setattr(backfill, "CHUNK_RECORDS", 3)  # a checkpoint after every third record
    monkeypatch.setattr(backfill, "FLUSH_TIMEOUT_S", 2.0)
    checkpoint = backfill._Publisher.checkpoint
    calls = []

    def stop_after_first(self, where):
        checkpoint(self, where)
        calls.append(where)
        if len(calls) == 1:
            broker_mod.stop(settings)  # Kafka goes away after lines 1-3 were confirmed

    monkeypatch.setattr(backfill._Publisher, "checkpoint", stop_after_first)
    with pytest.raises(backfill.BackfillError) as failure:
        backfill.backfill([str(path)], progress=False, settings=settings)
    assert "2 events were confirmed (everything up to line 3 of" in str(failure.value)
    assert "run the same command again" in str(failure.value)
    wh = settings.warehouse
    assert [o for o, *_ in dead_letters(wh, "backfill/history.jsonl")] == [3]  # not line 6: not reached safely

    monkeypatch.setattr(backfill._Publisher, "checkpoint", checkpoint)
    with pytest.raises(BrokerUnavailable):  # down from the start: one line, nothing read or written
        backfill.backfill([str(path)], progress=False, settings=settings)
    broker_mod.start(settings)  # a fresh (in-memory) broker
    summary = backfill.backfill([str(path)], progress=False, settings=settings)
    assert sum(summary.published.values()) == 6 and summary.already_recorded == 1
    assert [o for o, *_ in dead_letters(wh, "backfill/history.jsonl")] == [3, 6]
    assert len(consume(broker["OMNIVUE_KAFKA_BOOTSTRAP"], ["interactions.email"], 6)) == 6


def test_bad_arguments_dry_run_and_no_kafka(omnivue_env, tmp_path):
    from omnivue.adapters import ADAPTERS
    from omnivue.webhook import PROVIDER_NAMES

    assert sorted(PROVIDER_NAMES) == sorted(ADAPTERS)  # the help texts name every adapter
    # no broker listens at omnivue_env's bootstrap address
    wh = Path(omnivue_env["OMNIVUE_HOME"]) / "warehouse.duckdb"
    path = write_lines(tmp_path / "events.jsonl",
                       [ev("email.opened", NOW, {"email": "a@example.com"}), "{broken", ev("mobile.app_opened", NOW,
                                                                                            {"device_id": "d1"})])
    for args, code, words in [
        (("backfill", str(tmp_path / "missing.jsonl")), 2, "no such file"),
        (("backfill", str(tmp_path)), 2, "not a regular file"),
        (("backfill", "--provider", "hubspot", str(path)), 2, "unknown provider 'hubspot'; known: amplitude"),
        (("backfill",), 2, "required: FILE"),
        (("backfill", "-", "-"), 2, "can be read once"),
        (("backfill", str(path)), 1, "no Kafka broker answers at"),
    ]:
        result = run_cli(*args, env=omnivue_env)
        assert result.returncode == code, (args, result.stderr)
        errors = [line for line in result.stderr.splitlines() if "error" in line]
        assert len(errors) == 1 and words in errors[0] and "Traceback" not in result.stderr, (args, result.stderr)
    assert not wh.exists()  # Kafka down: nothing dead-lettered either

    dry = run_cli("backfill", "--dry-run", str(path), env=omnivue_env)
    assert dry.returncode == 0, dry.stderr
    assert "3 lines: 2 events would be published, 1 would be dead-lettered" in dry.stdout, dry.stdout
    assert "interactions.email=1, interactions.mobile=1" in dry.stdout and "not_json=1" in dry.stdout
    assert not wh.exists()
    # stdin, a provider payload
    sendgrid = (DATA / "sendgrid_event_webhook.json").read_text()
    exe = Path(sys.executable).with_name("omnivue")
    piped = subprocess.run([str(exe), "backfill", "--dry-run", "--provider", "sendgrid", "-"], input=sendgrid,
                           capture_output=True, text=True, env={**os.environ, **omnivue_env}, timeout=60)
    assert piped.returncode == 0 and "13 events would be published" in piped.stdout, piped.stdout + piped.stderr
    assert "deferred=1" in piped.stdout
