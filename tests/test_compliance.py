"""Right of access, right to erasure, suppression at ingest and the
pseudonymised snapshot, on real parts: the local broker, `omnivue run` (the
Airflow DAG: ingest, dbt, Soda, publish), the real CLI and the
``subject_requests`` DAG.

The planted world (built once per session by :func:`shared_world`, also used
by test_audit_report.py, so the pipeline runs once for both):
- Erin, planted across every channel and store: events on every topic with
  provider spellings of her identifiers, a dead letter, a log line, the truth
  file, later an access export;
- a crowd of people who must stay untouched by her erasure;
- the consent cases of test_audit_report.py (worked out by hand there).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from kafka import KafkaConsumer, KafkaProducer

from conftest import ROOT, free_port, run_cli
from omnivue.compliance.erasure import erase_in_database
from omnivue.compliance.matching import Identifier
from omnivue.compliance.requests import queue_request
from omnivue.compliance.store import AUDIT_TABLES, ComplianceError
from omnivue.compliance.subject import Seed, Subject, is_placeholder
from omnivue.config import load_settings
from pipeline_helpers import query

pytestmark = pytest.mark.slow

NOW = datetime.now(timezone.utc).replace(microsecond=0)
T = NOW - timedelta(days=3)  # the consent cases happen around T
KEY = "test-pseudonym-key"

# Erin's identifiers, normalised (as the warehouse holds them) ...
ERIN = {
    "customer_id": "C9990001",
    "email": "erin.erasable@example.com",
    "phone": "+33611223344",
    "device_id": "d3b07384-d9a0-4c9b-8f6e-2a1c0e5b7a11",
    "anonymous_id": "anon-erin-7f3a",
    "social_handle": "instagram:erin_erasable",
}
# ... and as providers spell them
SPELLED = {"email": "  Erin.Erasable@Example.COM ", "phone": "06 11 22 33 44", "social_handle": "instagram:@Erin_Erasable"}
# what must not be found anywhere after the erasure (case-insensitive)
NEEDLES = sorted({v.lower() for v in ERIN.values()} | {"06 11 22 33 44", "0611223344", "erin_erasable",
                                                       "erin.erasable"})

TOPIC = {"social": "interactions.social", "email": "interactions.email", "mobile": "interactions.mobile",
         "consent": "consent", "identity": "identity"}


def ev(event_type: str, hours_ago: float, identities: dict, properties: dict | None = None,
       source: str = "acme", at: datetime | None = None) -> dict:
    when = at if at is not None else NOW - timedelta(hours=hours_ago)
    return {"event_id": str(uuid.uuid4()), "event_type": event_type, "channel": event_type.split(".")[0],
            "occurred_at": when.isoformat(), "source": source,
            "identities": identities, "properties": properties or {}, "schema_version": 1}


def at(event_type: str, hours_after_t: float, identities: dict, properties: dict | None = None,
       source: str = "acme") -> dict:
    return ev(event_type, 0, identities, properties, source, at=T + timedelta(hours=hours_after_t))


MK = {"purpose": "marketing"}


def erin_events() -> list[dict]:
    e, s = ERIN, SPELLED
    return [
        ev("identity.linked", 200, {"customer_id": e["customer_id"], "email": s["email"]}, source="web_signup"),
        ev("identity.linked", 190, {"customer_id": e["customer_id"], "phone": s["phone"]}, source="crm"),
        ev("mobile.app_installed", 180, {"device_id": e["device_id"], "anonymous_id": e["anonymous_id"]},
           {"platform": "ios"}, source="ios_app"),
        ev("identity.linked", 170, {"device_id": e["device_id"], "anonymous_id": e["anonymous_id"],
                                    "customer_id": e["customer_id"]}, source="ios_app"),
        ev("mobile.purchase", 160, {"device_id": e["device_id"], "customer_id": e["customer_id"]},
           {"order_id": "o-erin-1", "amount": 42.5, "currency": "EUR"}, source="ios_app"),
        ev("consent.granted", 150, {"email": s["email"]}, {**MK, "scope": "all"}, source="preference_center"),
        ev("consent.granted", 150, {"phone": s["phone"]}, {**MK, "scope": "sms"}, source="crm"),
        ev("email.sent", 140, {"email": e["email"]}, {"campaign_id": "cmp-erin"}, source="sendgrid"),
        ev("email.opened", 139, {"email": s["email"]}, {"campaign_id": "cmp-erin"}, source="sendgrid"),
        ev("mobile.push_sent", 130, {"device_id": e["device_id"]}, {"campaign_id": "push-erin"}, source="braze"),
        ev("social.mention", 120, {"social_handle": s["social_handle"]},
           {"text": "Love the new collection", "lang": "en", "platform": "instagram", "post_id": "123"},
           source="instagram"),
        ev("identity.linked", 110, {"social_handle": s["social_handle"], "email": e["email"]},
           source="instagram_login"),
        ev("social.direct_message", 100, {"social_handle": e["social_handle"]},
           {"direction": "outbound", "text": "-20% this week", "platform": "instagram"}, source="instagram"),
    ]


def crowd_events(n: int = 8) -> list[dict]:
    """People who consented before every send they got: no violation among them."""
    out = []
    for i in range(n):
        ids = {"customer_id": f"CROWD{i:03d}", "email": f"crowd.member{i}@example.net"}
        out += [ev("identity.linked", 150 + i, ids, source="web_signup"),
                ev("consent.granted", 140 + i, {"email": ids["email"]}, {**MK, "scope": "all"}),
                ev("email.sent", 120 + i, {"customer_id": ids["customer_id"]}, {"campaign_id": "c-crowd"}),
                ev("email.opened", 119 + i, {"email": ids["email"]}, {"campaign_id": "c-crowd"})]
        if i % 2:
            dev = {"device_id": f"crowd-device-{i}", "customer_id": ids["customer_id"]}
            out += [ev("mobile.app_opened", 100 + i, dev, {"screen": "home"}),
                    ev("mobile.purchase", 90 + i, dev, {"order_id": f"o{i}", "amount": 10.0 + i, "currency": "EUR"})]
        if i % 3 == 0:
            handle = {"social_handle": f"x:crowd_{i}", "email": ids["email"]}
            out += [ev("identity.linked", 80 + i, handle),
                    ev("social.mention", 70 + i, {"social_handle": f"x:crowd_{i}"},
                       {"text": "Nice shop", "lang": "en", "platform": "x", "post_id": str(i)}, source="x")]
    return out


# The consent cases (expected results worked out in test_audit_report.py)
OLGA = [at("identity.linked", 0, {"customer_id": "C-OLGA", "email": "olga@example.com"}),
        at("consent.granted", 1, {"email": "olga@example.com"}, {**MK, "scope": "email"}),
        at("email.sent", 2, {"customer_id": "C-OLGA"}, {"campaign_id": "c1"})]
NICO_SEND = at("email.sent", 3, {"email": "nico@example.com"}, {"campaign_id": "c1"})
WENDY = [at("mobile.app_installed", 0, {"device_id": "dev-wendy"}, {"platform": "ios"}),
         at("consent.granted", 1, {"device_id": "dev-wendy"}, {**MK, "scope": "push"}),
         at("consent.withdrawn", 4, {"device_id": "dev-wendy"}, {**MK, "scope": "push"})]
WENDY_SEND = at("mobile.push_sent", 5, {"device_id": "dev-wendy"}, {"campaign_id": "p1"})
CARL = [at("identity.linked", 0, {"email": "carl@example.com", "social_handle": "x:carl_c"}),
        at("consent.granted", 1, {"email": "carl@example.com"}, {**MK, "scope": "all"}),
        at("consent.withdrawn", 2, {"social_handle": "x:Carl_C"}, {**MK, "scope": "social"})]
CARL_DM = at("social.direct_message", 3, {"social_handle": "x:carl_c"},
             {"direction": "outbound", "text": "-20%", "platform": "x"}, source="x")
LUCY = [at("consent.granted", 1, {"email": "lucy@example.com"}, {**MK, "scope": "all"})]
LUCY_SEND = at("email.sent", 6, {"email": "lucy@example.com"}, {"campaign_id": "c2"})
LUCY_LATE_WITHDRAWAL = at("consent.withdrawn", 5, {"email": "lucy@example.com"}, {**MK, "scope": "email"})
CONSENT_CASES = OLGA + WENDY + CARL + LUCY + [NICO_SEND, WENDY_SEND, CARL_DM, LUCY_SEND]


def produce(env: dict, records: list[tuple[str, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=env["OMNIVUE_KAFKA_BOOTSTRAP"], acks="all")
    for topic, value in records:
        producer.send(topic, value=value)
    producer.flush(30)
    producer.close()


def as_records(events: list[dict]) -> list[tuple[str, bytes]]:
    return [(TOPIC[e["channel"]], json.dumps(e).encode()) for e in events]


_WIRED: list[bool] = []


def compliance_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    """`omnivue audit|subject ...` once wired into omnivue's CLI, `python -m omnivue.compliance` until then."""
    if not _WIRED:
        _WIRED.append(run_cli("subject", "--help", env=env).returncode == 0)
    if _WIRED[0]:
        return run_cli(*args, env=env)
    return subprocess.run([sys.executable, "-m", "omnivue.compliance", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=600, cwd=ROOT)


def keyed(identifier_type: str, value: str) -> str:
    return hashlib.sha256(f"{KEY}:{identifier_type}:{value}".encode()).hexdigest()


def read_topic(env: dict, topic: str) -> list[dict]:
    """Every record of a topic, from the beginning to its current end (no idle timeout)."""
    from kafka import TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=env["OMNIVUE_KAFKA_BOOTSTRAP"], group_id=None,
                             enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or [])]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        out = []
        while any(consumer.position(tp) < end[tp] for tp in parts):
            for records in consumer.poll(timeout_ms=1000).values():
                out.extend(json.loads(r.value) for r in records)
        return out
    finally:
        consumer.close()


def tables_of(path: Path) -> list[str]:
    return [t for (t,) in query(path, "select table_name from duckdb_tables() where schema_name = 'main' "
                                      "order by table_name")]


def rows_as_text(path: Path, table: str) -> list[str]:
    return [r[0] for r in query(path, f'select cast(t as varchar) from "{table}" as t')]


def assert_no_value_left(home: Path, needles: list[str], databases: list[Path], person: str | None = None) -> None:
    """No row of ``databases`` and no file under ``home`` holds one of ``needles`` (lower-case values);
    ``person``'s id, when given, only in the audit tables (which keep pseudonymous ids by design)."""
    for db in databases:
        for table in tables_of(db):
            for row in rows_as_text(db, table):
                assert not any(n in row.lower() for n in needles), f"{db.name}:{table} still holds {row[:200]}"
                assert person is None or person not in row or table in AUDIT_TABLES, \
                    f"{db.name}:{table} still holds {row[:200]}"
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        data = path.read_bytes().lower()
        leaked = [n for n in needles if n.encode() in data]
        assert not leaked, f"{path.relative_to(home)} still holds {leaked}"


def belongs_to_erin(text: str, person_ids: set[str], event_ids: set[str], hashes: set[str]) -> bool:
    low = text.lower()
    return any(n in low for n in NEEDLES) or any(x in text for x in person_ids | event_ids | hashes)


def fingerprint(path: Path, person_ids: set[str], event_ids: set[str], hashes: set[str],
                skip: set[str]) -> dict[str, tuple[int, str]]:
    """Per table: count and checksum of the rows that are not Erin's."""
    out = {}
    for table in tables_of(path):
        if table in skip:
            continue
        rows = sorted(r for r in rows_as_text(path, table) if not belongs_to_erin(r, person_ids, event_ids, hashes))
        out[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    return out


def run_dag(env: dict, dag_file: str, dag_id: str, mark_success_pattern: str | None = None
            ) -> subprocess.CompletedProcess:
    """One run of a DAG of dags/ with ``dag.test()`` in a fresh process (as `omnivue run` does), printing
    ``RETRIES {...}``, ``TASK <id> <state>`` lines and ``STATE <state>``."""
    script = (
        "import os\n"
        "from omnivue.config import dags_dir, load_settings\n"
        "from omnivue.pipeline import airflow_environment, ensure_manifest\n"
        "os.environ.update(airflow_environment(load_settings()))\n"
        "ensure_manifest(load_settings())\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "from airflow.utils.session import create_session\n"
        f"bag = DagBag(dag_folder=str(dags_dir() / {dag_file!r}))\n"
        "assert not bag.import_errors, bag.import_errors\n"
        f"dag = bag.dags[{dag_id!r}]\n"
        "print('RETRIES', {t.task_id: t.retries for t in dag.tasks})\n"
        f"run = dag.test(mark_success_pattern={mark_success_pattern!r})\n"
        "with create_session() as s:\n"
        "    for ti in run.get_task_instances(session=s):\n"
        "        print('TASK', ti.task_id, ti.state)\n"
        "print('STATE', run.state)\n")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900,
                          env={**os.environ, **env}, cwd=ROOT)


# --- the planted world ------------------------------------------------------------------------

_WORLD: dict = {}


def shared_world(tmp_path_factory, request) -> dict:
    """Broker, every planted event, one `omnivue run`: built once per test session."""
    if _WORLD:
        return _WORLD
    home = tmp_path_factory.mktemp("world") / "home"
    env = {"OMNIVUE_HOME": str(home), "OMNIVUE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
           "OMNIVUE_PSEUDONYM_KEY": KEY}
    started = run_cli("broker", "start", env=env)
    assert started.returncode == 0, started.stderr
    request.config.add_cleanup(lambda: run_cli("broker", "stop", env=env))
    erin = erin_events()
    crowd = crowd_events()
    bad = json.dumps(ev("email.opened", 90, {"email": SPELLED["email"]}, {"campaign_id": "cmp-erin"}))[:-9]
    produce(env, as_records(crowd + erin + CONSENT_CASES) + [("interactions.email", bad.encode())])
    produce(env, as_records([LUCY_LATE_WITHDRAWAL]))  # made before Lucy's send, arrives after everything
    run = run_cli("run", env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # a log line and the truth file mention Erin, as a careless operator or the simulator would
    with open(home / "logs" / "omnivue.log", "a") as f:
        f.write(f"2026-01-01 00:00:00,000 INFO    omnivue.support: ticket about {SPELLED['email']} "
                f"and {SPELLED['phone']}\n")
    identifiers = {f"{t}:{v}": "person-erin" for t, v in ERIN.items()}
    identifiers |= {f"email:crowd.member{i}@example.net": f"person-crowd-{i}" for i in range(8)}
    (home / "truth.json").write_text(json.dumps({"identifiers": identifiers,
                                                 "bad_records": [{"kind": "not_json", "raw": bad}]}, indent=1))
    (erin_person,), = query(home / "warehouse.duckdb", "select distinct person_id from identity_map "
                                                       "where identifier_value = ?", [ERIN["email"]])
    _WORLD.update(env=env, home=home, first_run=run, erin_events=erin, erin_person=erin_person)
    return _WORLD


@pytest.fixture(scope="module")
def world(tmp_path_factory, request):
    w = shared_world(tmp_path_factory, request)
    return {"env": w["env"], "home": w["home"], "events": w["erin_events"], "person_id": w["erin_person"]}


def test_the_planted_person_is_everywhere(world):
    home = world["home"]
    wh = home / "warehouse.duckdb"
    mine = query(wh, "select identifier_type, identifier_value from identity_map where person_id = ?",
                 [world["person_id"]])
    assert dict(mine) == ERIN
    assert query(wh, "select count(*) from dead_letter where raw ilike '%erin.erasable%'")[0][0] == 1
    assert query(home / "published" / "customer_view.duckdb", "select count(*) from customer_360 where person_id = ?",
                 [world["person_id"]])[0][0] == 1


def test_access_export_holds_everything_on_the_person(world, tmp_path):
    env, home = world["env"], world["home"]
    out = tmp_path / "erin.json"
    res = compliance_cli("subject", "export", "--email", SPELLED["email"], "--out", str(out), "--by", "dpo",
                         "--why", "ticket 17", env=env)
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    assert {(i["identifier_type"], i["identifier_value"]) for i in doc["identifiers"]} == set(ERIN.items())
    assert doc["person_ids"] == [world["person_id"]]
    assert {e["event_id"] for e in doc["events"]} == {e["event_id"] for e in world["events"]}
    interactions = {e["event_id"] for e in world["events"] if e["channel"] in ("social", "email", "mobile")}
    assert {i["event_id"] for i in doc["interactions"]} == interactions
    assert {(c["scope"], c["status"]) for c in doc["consent_history"]} >= {("email", "granted"), ("sms", "granted")}
    assert doc["derived_attributes"][0]["person_id"] == world["person_id"]
    assert doc["derived_attributes"][0]["purchases"] == 1
    assert {a["scope"] for a in doc["audience_membership"]} == {"email", "sms", "push", "social"}
    assert len(doc["dead_letters"]) == 1 and "Erin.Erasable" in doc["dead_letters"][0]["raw"]
    assert len(doc["marketing_sends_audit"]) == 3 and all(s["consent_ok"] for s in doc["marketing_sends_audit"])
    # the request is recorded with the keyed hash of the identifier, never its value
    rows = query(home / "warehouse.duckdb", "select kind, identifier_type, identifier_hash, status, requested_by, "
                 "details::varchar from subject_requests where kind = 'access' and identifier_hash = ?",
                 [keyed("email", ERIN["email"])])
    assert len(rows) == 1
    kind, itype, ihash, status, by, details = rows[0]
    assert (kind, itype, ihash, status, by) == ("access", "email", keyed("email", ERIN["email"]), "served", "dpo")
    assert json.loads(details)["sections"]["events"] == len(world["events"])
    assert not any(n in details.lower() for n in NEEDLES)


def test_a_queued_access_request_is_served_by_the_subject_requests_dag(world):
    """`subject export --queue` stores a hash only; the DAG resolves it and writes the export."""
    env, home = world["env"], world["home"]
    queued = compliance_cli("subject", "export", "--customer-id", ERIN["customer_id"], "--queue", env=env)
    assert queued.returncode == 0, queued.stderr
    rid = queued.stdout.split("request ")[1].split(";")[0]
    proc = run_dag(env, "subject_requests.py", "subject_requests")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "STATE success" in proc.stdout
    retries = json.loads(proc.stdout.split("RETRIES ")[1].splitlines()[0].replace("'", '"'))
    assert set(retries) == {"serve_erasures", "serve_access", "publish_erasure_notices"}
    assert all(n >= 1 for n in retries.values())
    export = home / "exports" / f"{rid}.json"
    doc = json.loads(export.read_text())
    assert {(i["identifier_type"], i["identifier_value"]) for i in doc["identifiers"]} == set(ERIN.items())
    assert query(home / "warehouse.duckdb", "select status, output_path from subject_requests where request_id = ?",
                 [rid]) == [("served", str(export))]
    # the queue and Airflow's metadata never saw the value
    airflow_db = (home / "airflow" / "airflow.db").read_bytes().lower()
    assert ERIN["customer_id"].lower().encode() not in airflow_db


def test_suppressed_person_in_the_audience_blocks_the_run(world, tmp_path, monkeypatch):
    """An erased person whose records came back must not be activated: blocking check on marketing_audience."""
    import shutil

    from omnivue.config import load_settings
    from omnivue.contract_checks import verify_all

    copy_home = tmp_path / "home"
    copy_home.mkdir()
    shutil.copy(world["home"] / "warehouse.duckdb", copy_home / "warehouse.duckdb")
    monkeypatch.setenv("OMNIVUE_HOME", str(copy_home))
    monkeypatch.setenv("OMNIVUE_PSEUDONYM_KEY", KEY)
    from omnivue.compliance.store import ensure_compliance_tables
    from omnivue.compliance.suppression import add_suppressions

    con = duckdb.connect(str(copy_home / "warehouse.duckdb"))
    ensure_compliance_tables(con)
    add_suppressions(con, [("device_id", keyed("device_id", ERIN["device_id"]))], "test", "erasure")
    # the view dbt built before the table existed reads the table now
    con.execute("create or replace view stg_compliance__suppressed_identifiers as select identifier_type, "
                "identifier_hash, request_id, reason, suppressed_at from suppressed_identifiers")
    con.close()
    report = verify_all(load_settings(), run_id="suppressed-in-audience")
    blocking = [(r.contract, r.check, r.value) for r in report.blocking_failures()]
    assert blocking == [("marketing_audience", "nobody erased or suppressed", 4.0)]  # her 4 scopes


def test_a_snapshot_with_clear_personal_data_is_not_published(world, tmp_path, monkeypatch):
    """Write, audit, publish for the snapshot: a leak found in the temp file keeps the old snapshot."""
    import shutil

    from omnivue.config import load_settings
    from omnivue.publish import SnapshotRejected, publish_snapshot

    copy_home = tmp_path / "home"
    (copy_home / "published").mkdir(parents=True)
    shutil.copy(world["home"] / "warehouse.duckdb", copy_home / "warehouse.duckdb")
    snap = copy_home / "published" / "customer_view.duckdb"
    shutil.copy(world["home"] / "published" / "customer_view.duckdb", snap)
    before = snap.read_bytes()
    monkeypatch.setenv("OMNIVUE_HOME", str(copy_home))
    monkeypatch.setenv("OMNIVUE_PSEUDONYM_KEY", KEY)
    con = duckdb.connect(str(copy_home / "warehouse.duckdb"))
    victim = con.execute("select min(person_id) from channel_engagement where person_id <> ?",
                         [world["person_id"]]).fetchone()[0]
    # a device id has no pattern: only the identity_map values catch it
    device = con.execute("select identifier_value from identity_map where identifier_type = 'device_id' "
                         "limit 1").fetchone()[0]
    con.execute("update channel_engagement set channel = ? where person_id = ?", [device, victim])
    con.execute("update fct_interactions set campaign_id = 'Contact: Someone.Else@Example.org' where event_id = "
                "(select min(event_id) from fct_interactions)")
    # consent_audit is a view over fct_interactions: a corrupted marketing send is in both
    (is_send,) = con.execute("select is_marketing_send from fct_interactions where event_id = "
                             "(select min(event_id) from fct_interactions)").fetchone()
    con.close()
    with pytest.raises(SnapshotRejected) as raised:
        publish_snapshot(load_settings(), run_id="leaky")
    failed = {(r.contract, r.check) for r in raised.value.report.blocking_failures()}
    assert failed == {("published_snapshot/pseudonymised", "channel_engagement: no identifier value from identity_map"),
                      ("published_snapshot/pseudonymised", "fct_interactions: no clear-text email")} | (
        {("published_snapshot/pseudonymised", "consent_audit: no clear-text email")} if is_send else set())
    assert snap.read_bytes() == before
    assert not [p for p in snap.parent.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".snapshot-check")]
    outcomes = query(copy_home / "warehouse.duckdb", "select outcome, count(*) from contract_results "
                     "where run_id = 'leaky' group by 1")
    assert dict(outcomes)["failed"] == 2 + bool(is_send) and dict(outcomes)["passed"] > 30


def test_codes_and_counts_equal_to_an_identifier_do_not_block_the_snapshot(world, tmp_path, monkeypatch):
    """Numeric customer ids (a shop's 12345) meet counts and numeric campaign ids (SendGrid's 12345);
    campaigns like 'promo:summer' look like handles. None of them is personal data: the snapshot is
    published. The same value in a text column that is not a code still blocks it."""
    import shutil

    from omnivue.config import load_settings
    from omnivue.publish import SnapshotRejected, publish_snapshot

    copy_home = tmp_path / "home"
    (copy_home / "published").mkdir(parents=True)
    shutil.copy(world["home"] / "warehouse.duckdb", copy_home / "warehouse.duckdb")
    monkeypatch.setenv("OMNIVUE_HOME", str(copy_home))
    monkeypatch.setenv("OMNIVUE_PSEUDONYM_KEY", KEY)
    wh = copy_home / "warehouse.duckdb"
    con = duckdb.connect(str(wh))
    con.execute("update identity_map set identifier_value = '12345' where identifier_type = 'customer_id' and "
                "identifier_value = (select min(identifier_value) from identity_map where identifier_type = 'customer_id')")
    con.execute("update int_person_profile set n_events = 12345 where person_id = (select min(person_id) from int_person_profile)")
    con.execute("update fct_interactions set campaign_id = case when event_id = (select min(event_id) from fct_interactions) "
                "then '12345' else 'promo:summer' end where event_id in (select event_id from fct_interactions order by event_id limit 2)")
    con.close()
    publish_snapshot(load_settings(), run_id="codes")
    snap = copy_home / "published" / "customer_view.duckdb"
    assert query(snap, "select count(*) from fct_interactions where campaign_id in ('12345', 'promo:summer')") == [(2,)]
    assert query(snap, "select count(*) from customer_360 where n_events = 12345") == [(1,)]

    con = duckdb.connect(str(wh))
    con.execute("update channel_engagement set channel = '12345' where person_id = (select min(person_id) from channel_engagement)")
    con.close()
    with pytest.raises(SnapshotRejected) as raised:
        publish_snapshot(load_settings(), run_id="codes-leak")
    assert {r.check for r in raised.value.report.blocking_failures()} == {
        "channel_engagement: no identifier value from identity_map"}


def test_erasure_leaves_no_trace_and_nothing_else_changes(world):
    env, home = world["env"], world["home"]
    wh, snap = home / "warehouse.duckdb", home / "published" / "customer_view.duckdb"
    person_ids = {world["person_id"]}
    event_ids = {e["event_id"] for e in world["events"]}
    hashes = {keyed(t, v) for t, v in ERIN.items()}
    skip = {"subject_requests", "suppressed_identifiers"}  # the request log: written by the erasure itself
    wh_before = fingerprint(wh, person_ids, event_ids, hashes, skip)
    snap_before = fingerprint(snap, person_ids, event_ids, hashes, set())
    landed_before = query(wh, "select count(*) from landed_events")[0][0]
    assert (home / "exports").exists() and any((home / "exports").iterdir())  # the served export mentions her

    res = compliance_cli("subject", "erase", "--phone", SPELLED["phone"], "--by", "dpo", "--why", "art. 17 request",
                         env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "no value left" in res.stdout and "published" in res.stdout

    # 0 hits: every table of every DuckDB file, every other file (landing, logs, truth, exports)
    assert_no_value_left(home, NEEDLES, sorted(home.rglob("*.duckdb")))
    assert not list((home / "exports").glob("*.json"))
    # nobody else changed, row for row
    assert fingerprint(wh, person_ids, event_ids, hashes, skip) == wh_before
    assert fingerprint(snap, person_ids, event_ids, hashes, set()) == snap_before
    assert query(wh, "select count(*) from landed_events")[0][0] == landed_before - len(event_ids)

    # recorded (hashes only), suppressed, announced
    (rid, status, details, notice_at), = query(wh, "select request_id, status, details::varchar, notice_published_at "
                                                   "from subject_requests where kind = 'erasure' and identifier_hash = ?",
                                               [keyed("phone", ERIN["phone"])])
    assert status == "served" and notice_at is not None
    d = json.loads(details)
    assert {(i["type"], i["hash"]) for i in d["identifiers"]} == {(t, keyed(t, v)) for t, v in ERIN.items()}
    assert d["warehouse"]["landed_events"]["deleted"] == len(event_ids)
    assert d["warehouse"]["dead_letter"]["deleted"] == 1
    assert d["verification"]["file_hits"] == {} and d["verification"]["table_hits"] == {}
    assert set(d["files"]) >= {"logs/omnivue.log", "truth.json"}
    assert {h for (h,) in query(wh, "select identifier_hash from suppressed_identifiers where request_id = ?",
                                [rid])} == hashes
    notices = [n for n in read_topic(env, "erasure") if n["request_id"] == rid]
    assert len(notices) == 1
    assert {(i["type"], i["hash"]) for i in notices[0]["identifiers"]} == {(t, keyed(t, v)) for t, v in ERIN.items()}
    assert notices[0]["person_ids"] == [world["person_id"]]
    assert not any(n in json.dumps(notices[0]).lower() for n in NEEDLES)
    # the rewritten warehouse still works: staging views and a read of every table
    assert query(wh, "select count(*) from stg_landing__consent_events")[0][0] > 0


def served_erasure(home: Path, identifier_type: str, value: str) -> tuple[str, datetime]:
    rows = query(home / "warehouse.duckdb", "select request_id, served_at from subject_requests where kind = 'erasure' "
                 "and status = 'served' and identifier_hash = ?", [keyed(identifier_type, value)])
    assert len(rows) == 1, f"expected one served erasure of that {identifier_type}, found {rows}"
    return rows[0]


def utc(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="seconds")


def test_a_repeated_erasure_is_recorded_as_already_erased_and_does_nothing_again(world):
    """Erin (erased above by her phone) asks again, by the same phone, then by her email: both requests are
    recorded as already erased by the first one; the snapshot is not rewritten and no second notice goes out."""
    env, home = world["env"], world["home"]
    wh, snap = home / "warehouse.duckdb", home / "published" / "customer_view.duckdb"
    first, served_at = served_erasure(home, "phone", ERIN["phone"])
    snap_stat, snap_bytes = snap.stat(), snap.read_bytes()
    notices_before = read_topic(env, "erasure")
    requests_before = query(wh, "select count(*) from subject_requests")

    dry = compliance_cli("subject", "erase", "--phone", SPELLED["phone"], "--dry-run", env=env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"already erased by request {first}" in dry.stdout and "nothing would be done again" in dry.stdout
    assert query(wh, "select count(*) from subject_requests") == requests_before  # a dry run records nothing

    again = compliance_cli("subject", "erase", "--phone", SPELLED["phone"], "--by", "dpo", "--why", "asked again",
                           env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    out = again.stdout
    assert f"already erased by request {first} at {utc(served_at)}" in out, out
    assert "nothing was done again" in out and "not in identity_map" not in out, out
    (rid, status, person_ids, details, notice_at), = query(
        wh, "select request_id, status, person_ids::varchar, details::varchar, notice_published_at "
            "from subject_requests where kind = 'erasure' and identifier_hash = ? and request_id <> ?",
        [keyed("phone", ERIN["phone"]), first])
    assert rid in out and status == "already_erased" and notice_at is None
    assert json.loads(person_ids) == [world["person_id"]]
    earlier = json.loads(details)["already_erased_by"]
    assert earlier["request_id"] == first and earlier["same_identifier"] is True
    assert datetime.fromisoformat(earlier["served_at"]) == served_at
    # nothing done again: the snapshot untouched, no second notice
    assert (snap.stat().st_ino, snap.stat().st_mtime_ns) == (snap_stat.st_ino, snap_stat.st_mtime_ns)
    assert snap.read_bytes() == snap_bytes
    assert read_topic(env, "erasure") == notices_before

    # another identifier of hers: its hash went to the suppression list with the first erasure
    other = compliance_cli("subject", "erase", "--email", SPELLED["email"], env=env)
    assert other.returncode == 0, other.stdout + other.stderr
    assert (f"the email given was erased with person {world['person_id']} by request {first} "
            f"(which named their phone) at {utc(served_at)}") in other.stdout, other.stdout
    assert "nothing was done again" in other.stdout
    assert query(wh, "select status from subject_requests where kind = 'erasure' and identifier_hash = ?",
                 [keyed("email", ERIN["email"])]) == [("already_erased",)]
    assert snap.stat().st_mtime_ns == snap_stat.st_mtime_ns and read_topic(env, "erasure") == notices_before
    listed = compliance_cli("subject", "list", env=env).stdout
    assert first in listed and rid in listed and listed.count("already_erased") == 2


def test_a_queued_erasure_is_not_an_erasure_until_it_is_served(world):
    """Queuing suppresses the hash at once, but erases nothing: an erasure asked meanwhile is done in full;
    the queued request, served after it, is recorded as already erased by it."""
    env, home = world["env"], world["home"]
    email = "crowd.member5@example.net"
    queued = compliance_cli("subject", "erase", "--email", email, "--queue", env=env)
    assert queued.returncode == 0, queued.stderr
    qid = queued.stdout.split("request ")[1].split(";")[0]
    notices_before = len(read_topic(env, "erasure"))

    now = compliance_cli("subject", "erase", "--email", email, env=env)
    assert now.returncode == 0, now.stdout + now.stderr
    assert "already erased" not in now.stdout and "no value left" in now.stdout, now.stdout
    rid = now.stdout.split("request ")[1].split(":")[0]
    assert query(home / "warehouse.duckdb", "select count(*) from identity_map where identifier_value = ?",
                 [email]) == [(0,)]
    assert len(read_topic(env, "erasure")) == notices_before + 1

    served = compliance_cli("subject", "serve", env=env)
    assert served.returncode == 0, served.stdout + served.stderr
    assert f"request {qid}: already erased by request {rid}" in served.stdout, served.stdout
    assert query(home / "warehouse.duckdb", "select status, notice_published_at from subject_requests "
                 "where request_id = ?", [qid]) == [("already_erased", None)]
    assert len(read_topic(env, "erasure")) == notices_before + 1


# crowd members whom no other test names: the killed erasures' persons
CROWD_3 = {"email": "crowd.member3@example.net", "customer_id": "CROWD003", "device_id": "crowd-device-3",
           "social_handle": "x:crowd_3"}
CROWD_7 = {"email": "crowd.member7@example.net", "customer_id": "CROWD007", "device_id": "crowd-device-7"}
#: where the erasure is killed: the first file it makes after that point (``{pid}``: the erasure's process)
KILL_POINTS = {
    # right after committing its in_progress record (and suppressing the person's hashes), before it has changed
    # the snapshot, any file or the warehouse: its copy of the snapshot
    "snapshot": "published/.customer_view.duckdb.erase-{pid}.tmp",
    # after the snapshot, the files, and the deletion of the person's warehouse rows were committed: the fresh
    # warehouse file it compacts into
    "compaction": ".warehouse.duckdb.fresh-{pid}.tmp",
}


@pytest.mark.parametrize("killed_at,person_values", [("snapshot", CROWD_3), ("compaction", CROWD_7)],
                         ids=["before-the-snapshot", "compacting-the-warehouse"])
def test_an_erasure_killed_after_recording_in_progress_is_finished_by_subject_serve(world, killed_at, person_values):
    """A real `omnivue subject erase` is SIGKILLed after it recorded its request ``in_progress`` (with the
    person's hashes suppressed), at the moment the first file of ``KILL_POINTS[killed_at]`` appears:
    before it changed anything else, or once only the warehouse's compaction was left. `omnivue subject
    serve` then finishes it under the same request id: served, verified, announced with all of the person's
    hashes and person id, no longer pending, nothing of theirs left, nor any copy the killed process made."""
    from omnivue.compliance.requests import PENDING

    env, home = world["env"], world["home"]
    wh, snap = home / "warehouse.duckdb", home / "published" / "customer_view.duckdb"
    needles = [v.lower() for v in person_values.values()]
    hashes = {keyed(t, v) for t, v in person_values.items()}
    (person,), = query(wh, "select distinct person_id from identity_map where identifier_value = ?",
                       [person_values["email"]])
    assert dict(query(wh, "select identifier_type, identifier_value from identity_map where person_id = ?",
                      [person])) == person_values
    (n_events,), = query(wh, "select count(*) from landed_events where "
                         + " or ".join(f"{t} = ?" for t in person_values), list(person_values.values()))
    assert n_events > 0 and query(snap, "select count(*) from customer_360 where person_id = ?", [person]) == [(1,)]

    erase = subprocess.Popen([str(Path(sys.executable).with_name("omnivue")), "subject", "erase", "--email",
                              person_values["email"], "--by", "dpo", "--why", "art. 17, killed"],
                             env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    work = home / KILL_POINTS[killed_at].format(pid=erase.pid)
    try:
        while erase.poll() is None and not work.exists():
            time.sleep(0.001)
        erase.send_signal(signal.SIGKILL)  # a no-op if it already exited: the assertions below then fail
        out, err = erase.communicate(timeout=60)
    finally:
        if erase.poll() is None:
            erase.kill()
            erase.wait()
    assert erase.returncode == -signal.SIGKILL, f"exited {erase.returncode} before it was killed: {out}{err}"

    # what the killed erasure left: in_progress, their hashes suppressed, its copy of a database
    (rid, status, served_at), = query(wh, "select request_id, status, served_at from subject_requests "
                                          "where kind = 'erasure' and identifier_hash = ?",
                                      [keyed("email", person_values["email"])])
    assert (status, served_at) == ("in_progress", None)
    assert {h for (h,) in query(wh, "select identifier_hash from suppressed_identifiers where request_id = ?",
                                [rid])} == hashes
    listed = compliance_cli("subject", "list", env=env).stdout
    assert [line.split()[4] for line in listed.splitlines() if line.startswith(rid)] == ["in_progress"]
    assert work.exists()
    left = 0 if killed_at == "compaction" else len(person_values)  # their warehouse rows deleted, or not yet
    assert query(wh, "select count(*) from identity_map where person_id = ?", [person]) == [(left,)]
    assert not [n for n in read_topic(env, "erasure") if n["request_id"] == rid]

    served = compliance_cli("subject", "serve", env=env)
    assert served.returncode == 0, served.stdout + served.stderr
    assert f"request {rid}: erased " in served.stdout and "no value left" in served.stdout, served.stdout

    # finished under the same request id, with its proof, and no longer pending
    (status, served_at, notice_at, person_ids, details), = query(
        wh, "select status, served_at, notice_published_at, person_ids::varchar, details::varchar "
            "from subject_requests where request_id = ?", [rid])
    assert status == "served" and served_at is not None and notice_at is not None
    assert json.loads(person_ids) == [person]
    d = json.loads(details)
    assert {(i["type"], i["hash"]) for i in d["identifiers"]} == {(t, keyed(t, v)) for t, v in person_values.items()}
    assert d["verification"]["file_hits"] == {} and d["verification"]["table_hits"] == {}
    assert d["verification"]["tables_scanned"] > 0
    if killed_at == "snapshot":  # all of it was done by the request served again
        assert f"erased {len(person_values)} identifiers of 1 person(s) ({person})" in served.stdout, served.stdout
        assert d["warehouse"]["landed_events"]["deleted"] == n_events
        assert d["snapshot"]["action"] == "rewritten" and d["snapshot"]["tables"]["customer_360"]["deleted"] == 1
        assert d["verification"]["files_scanned"] > 0
    else:  # their warehouse rows were gone: what the killed attempt recorded names them
        assert "had already removed them from identity_map" in served.stdout, served.stdout
    assert query(wh, "select count(*) from subject_requests where request_id = ? and list_contains(?, status)",
                 [rid, list(PENDING)]) == [(0,)]
    assert query(wh, "select count(*) from subject_requests where kind = 'erasure' and identifier_hash in "
                     "(select unnest(?::varchar[]))", [sorted(hashes)]) == [(1,)]  # no second request
    notices = [n for n in read_topic(env, "erasure") if n["request_id"] == rid]
    assert len(notices) == 1 and notices[0]["person_ids"] == [person]
    assert {(i["type"], i["hash"]) for i in notices[0]["identifiers"]} == {
        (t, keyed(t, v)) for t, v in person_values.items()}
    # on real data: nothing of theirs in any table of the warehouse or the snapshot, nor in any file; the
    # killed process's copies (and their WALs) are gone
    assert query(wh, "select count(*) from identity_map where person_id = ?", [person]) == [(0,)]
    assert query(snap, "select count(*) from customer_360 where person_id = ?", [person]) == [(0,)]
    assert_no_value_left(home, needles, [wh, snap], person=person)
    assert not [str(p.relative_to(home)) for p in home.rglob(".*.tmp*") if ".erase-" in p.name or ".fresh-" in p.name]


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "python-path"])
def test_ingest_drops_records_of_an_erased_person(world, fast_path):
    """After the erasure her records (valid or malformed, any spelling) are suppressed in the landing
    transaction, whichever validation path landed them; a stranger's record lands."""
    from omnivue.compliance.suppression import suppress_batch
    from omnivue.config import load_settings
    from omnivue.ingester import Ingester
    from omnivue.record_batches import polled_table

    env, home = world["env"], world["home"]
    wh = home / "warehouse.duckdb"
    again, stranger, bad = records_after_erasure()

    values = as_records(again + [stranger]) + [("interactions.social", bad.encode())]
    records = polled_table([{"topic": t, "partition": 0, "offset": 90_000 + i, "timestamp": 0, "value": v}
                            for i, (t, v) in enumerate(values)])  # Kafka records as the ingester sees them
    ingester = Ingester(load_settings(), fast_path=fast_path)
    received_at = datetime.now(timezone.utc)
    con = duckdb.connect(str(wh))
    try:
        con.begin()
        ingester._insert(con, ingester._validate(con, records, fast=fast_path), received_at)
        dropped = suppress_batch(con, KEY, received_at)
        kept = con.execute("select event_id from landed_events where received_at = ?", [received_at]).fetchall()
        dead = con.execute("select count(*) from dead_letter where received_at = ?", [received_at]).fetchone()[0]
        counted = con.execute("select sum(suppressed_records) from suppressed_identifiers").fetchone()[0]
        con.rollback()
    finally:
        con.close()
    assert (dropped.landed, dropped.dead) == (2, 1)
    assert kept == [(stranger["event_id"],)] and dead == 0
    assert counted == 3


def records_after_erasure() -> tuple[list[dict], dict, str]:
    again = [ev("email.opened", 1, {"email": SPELLED["email"]}, {"campaign_id": "cmp-erin"}),
             ev("mobile.app_opened", 1, {"device_id": ERIN["device_id"]}, {"screen": "home"})]
    stranger = ev("email.opened", 1, {"email": "someone.new@example.net"}, {"campaign_id": "c"})
    bad = json.dumps(ev("social.mention", 1, {"social_handle": SPELLED["social_handle"]}))[:-5]
    return again, stranger, bad


def test_ingest_of_the_erased_persons_records_lands_nothing_of_them(world):
    """End to end: her records published again are consumed by `omnivue ingest` and suppressed."""
    from omnivue import ingester

    if "suppress_batch" not in Path(ingester.__file__).read_text():
        pytest.skip("ingester.py does not call compliance.suppression.suppress_batch yet (lead wiring)")
    env, home = world["env"], world["home"]
    wh = home / "warehouse.duckdb"
    again, stranger, bad = records_after_erasure()
    produce(env, as_records(again + [stranger]) + [("interactions.social", bad.encode())])
    res = run_cli("ingest", "--until-caught-up", "--max-seconds", "120", "-q", env=env)
    assert res.returncode == 0, res.stderr
    assert query(wh, "select count(*) from landed_events where event_id = ?", [stranger["event_id"]])[0][0] == 1
    for table in ("landed_events", "dead_letter"):
        for row in rows_as_text(wh, table):
            assert not any(n in row.lower() for n in NEEDLES)
    assert query(wh, "select sum(suppressed_records) from suppressed_identifiers")[0][0] == 3


# --- placeholders and lists of event ids (no pipeline needed) ------------------------------------------


@pytest.mark.parametrize("kind,value", [("phone", "+33000000000"), ("phone", "+33600000000"),
                                        ("email", "noreply@example.org"), ("device_id", "ffffffff-ffff-ffff-ffff-ffffffffffff"),
                                        ("device_id", "00000000-0000-0000-0000-000000000000")])
def test_placeholders_of_the_patterns_are_placeholders(kind, value):
    assert is_placeholder(Identifier(kind, value))


def test_a_real_identifier_is_not_a_placeholder():
    assert not is_placeholder(Identifier("phone", "+33612345678"))
    assert not is_placeholder(Identifier("email", "ines.brown161@example.com"))


def test_a_placeholder_is_neither_queued_nor_suppressed(tmp_path, monkeypatch):
    # queuing an erasure suppresses its hash at once: a suppressed placeholder would drop, at ingest,
    # every later record of everybody who carries it
    monkeypatch.setenv("OMNIVUE_HOME", str(tmp_path / "home"))
    settings = load_settings()
    seed = Seed.from_value(settings.pseudonym_key, "device_id", "00000000-0000-0000-0000-000000000000")
    with pytest.raises(ComplianceError, match="placeholder"):
        queue_request(settings, "erasure", seed)
    if settings.warehouse.exists():
        with duckdb.connect(str(settings.warehouse), read_only=True) as con:
            assert con.execute("select count(*) from suppressed_identifiers").fetchone()[0] == 0


def test_erasure_deletes_rows_quoting_their_events():
    con = duckdb.connect()
    con.execute("create table ereputation_daily as select * from (values ('2026-11-15', 'a,e1,b', 'x | mine | y'), "
                "('2026-11-16', 'a,b', 'x | y')) t(mention_date, top_negative_event_ids, top_negative_posts)")
    subject = Subject(seeds=[], person_ids=["p_1"], event_ids=["e1"])
    counts = erase_in_database(con, subject, "k")
    assert counts["ereputation_daily"]["deleted"] == 1
    assert con.execute("select mention_date from ereputation_daily").fetchall() == [("2026-11-16",)]


def test_only_a_served_erasure_makes_an_identifier_already_erased(tmp_path):
    """Queued (not served yet), refused (its suppression lifted) or served with values left: not erased."""
    from omnivue.compliance.store import ensure_compliance_tables
    from omnivue.compliance.suppression import add_suppressions, erased_by

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_compliance_tables(con)
    t0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    for rid, status, named, hashes in [("era_served", "served", "h_phone", ["h_phone", "h_email"]),
                                       ("era_queued", "queued", "h_queued", None),
                                       ("era_residue", "served_with_residue", "h_left", ["h_left"]),
                                       ("era_refused", "refused", "h_refused", None)]:
        details = json.dumps({"identifiers": [{"type": "email", "hash": h} for h in hashes]}) if hashes else None
        con.execute("insert into subject_requests (request_id, kind, identifier_type, identifier_hash, requested_at, "
                    "status, served_at, person_ids, details) values (?, 'erasure', 'email', ?, ?, ?, ?, ?, ?)",
                    [rid, named, t0, status, t0 if hashes else None, '["p_1"]', details])
        if status != "refused":  # a refused erasure's suppression is lifted
            add_suppressions(con, [("email", h) for h in hashes or [named]], rid)
    found = erased_by(con, "h_email")
    assert (found["request_id"], found["identifier_hash"], found["person_ids"]) == ("era_served", "h_phone", ["p_1"])
    assert erased_by(con, "h_phone")["request_id"] == "era_served"
    assert [erased_by(con, h) for h in ("h_queued", "h_left", "h_refused", "h_unknown")] == [None] * 4
    con.execute("delete from suppressed_identifiers where identifier_hash = 'h_email'")
    assert erased_by(con, "h_email") is None  # no longer suppressed: not erased as far as ingest goes


def test_a_refused_erasure_keeps_the_suppressions_a_served_one_holds(tmp_path, monkeypatch):
    from omnivue.compliance.requests import _lift_suppression
    from omnivue.compliance.store import ensure_compliance_tables
    from omnivue.compliance.suppression import add_suppressions

    monkeypatch.setenv("OMNIVUE_HOME", str(tmp_path / "home"))
    settings = load_settings()
    settings.warehouse.parent.mkdir(parents=True)
    t0 = datetime(2026, 1, 2, tzinfo=timezone.utc)
    with duckdb.connect(str(settings.warehouse)) as con:
        ensure_compliance_tables(con)
        # queued first (it owns both rows), then a served erasure of the same person covering one of them
        add_suppressions(con, [("email", "h_a"), ("phone", "h_b")], "era_queued")
        con.execute("insert into subject_requests (request_id, kind, identifier_type, identifier_hash, requested_at, "
                    "status, served_at, details) values ('era_served', 'erasure', 'email', 'h_a', ?, 'served', ?, ?)",
                    [t0, t0, json.dumps({"identifiers": [{"type": "email", "hash": "h_a"}]})])
    _lift_suppression(settings, "era_queued")
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        assert con.execute("select identifier_hash, request_id from suppressed_identifiers").fetchall() == [
            ("h_a", "era_served")]
