"""Dead letters: listed by reason, shown whole, replayed once after a contract fix."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone

from kafka import KafkaProducer

from conftest import ROOT, run_cli
from omnivue.config import load_settings
from omnivue.envelope import encode, make_event
from omnivue.ingester import Ingester
from pipeline_helpers import query


def test_list_show_and_replay_after_a_contract_fix(broker, tmp_path):
    settings = load_settings()
    now = datetime.now(timezone.utc)
    good = [make_event("email.opened", now, "sendgrid", {"email": f"p{i}@example.com"}) for i in range(5)]
    # a producer that sends source "" : rejected today; the team later decides to accept it
    fixable = [dict(make_event("email.clicked", now, "x", {"email": f"q{i}@example.com"}), source="") for i in range(3)]
    hopeless = [b"not json at all"]
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    for e in good + fixable:
        producer.send("interactions.email", value=encode(e))
    for raw in hopeless:
        producer.send("interactions.email", value=raw)
    producer.flush()
    producer.close()
    Ingester(settings).run(until_caught_up=True, max_seconds=120, progress=False)

    listed = run_cli("deadletter", "list")
    assert listed.returncode == 0
    assert "4 dead letters" in listed.stdout
    assert any(line.split()[:3] == ["schema", "interactions.email", "3"] for line in listed.stdout.splitlines())
    assert any(line.split()[:3] == ["not_json", "interactions.email", "1"] for line in listed.stdout.splitlines())

    topic, part, off = query(settings.warehouse, 'select topic, "partition", "offset" from dead_letter '
                                                 "where reason like 'not_json%'")[0]
    shown = run_cli("deadletter", "show", f"{topic}:{part}:{off}")
    assert shown.returncode == 0 and "not json at all" in shown.stdout and "not_json" in shown.stdout
    missing = run_cli("deadletter", "show", "interactions.email:0:999999")
    assert missing.returncode == 1 and missing.stderr.strip().startswith("omnivue: error: no dead letter")

    # today's contracts: nothing passes
    assert "landed 0" in run_cli("deadletter", "replay").stdout

    # the contract fix, in a copy of the project: an empty source is accepted
    project = tmp_path / "project"
    shutil.copytree(ROOT / "contracts", project / "contracts")
    envelope = project / "contracts" / "events" / "envelope.json"
    schema = json.loads(envelope.read_text())
    schema["properties"]["source"]["minLength"] = 0
    envelope.write_text(json.dumps(schema))
    fixed = {"OMNIVUE_PROJECT_DIR": str(project)}
    first = run_cli("deadletter", "replay", env=fixed)
    assert first.returncode == 0, first.stderr
    assert "landed 3" in first.stdout and "not_json=1" in first.stdout
    second = run_cli("deadletter", "replay", env=fixed)
    assert "landed 0" in second.stdout  # once

    landed = {e for (e,) in query(settings.warehouse, "select event_id from landed_events")}
    assert landed == {e["event_id"] for e in good + fixable}
    assert query(settings.warehouse, "select count(*) from dead_letter") == [(1,)]
    assert query(settings.warehouse, "select count(*) from dead_letter_replays") == [(3,)]
    # the replayed rows keep their Kafka coordinates
    coords = query(settings.warehouse, 'select count(distinct (topic, "partition", "offset")) from landed_events')
    assert coords == [(8,)]
