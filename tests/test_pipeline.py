"""The whole flow on real parts: local broker, simulator, `omnivue run` (the
Airflow DAG in process: ingest, dbt on DuckDB, Soda, publish).

The warehouse must equal the simulator's ground truth exactly.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from conftest import ROOT, run_cli
from pipeline_helpers import partition, query, warehouse_identity, warehouse_violations

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pipeline")]  # one worker: module fixtures (loadgroup)


@pytest.fixture(scope="module")
def simulated_run(tmp_path_factory):
    """Broker + `omnivue simulate` + `omnivue run`, once for the module."""
    from conftest import free_port

    home = tmp_path_factory.mktemp("e2e") / "home"
    env = {"OMNIVUE_HOME": str(home), "OMNIVUE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}
    assert run_cli("broker", "start", env=env).returncode == 0
    try:
        sim = run_cli("simulate", "--people", "150", "--days", "20", "--seed", "2024", "-q", env=env)
        assert sim.returncode == 0, sim.stderr
        run = run_cli("run", env=env)
        yield env, home, run
    finally:
        run_cli("broker", "stop", env=env)


def test_run_succeeds_and_says_so(simulated_run):
    _, home, run = simulated_run
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "run:                SUCCEEDED" in run.stdout
    assert "publish" in run.stdout and "success" in run.stdout


def test_persons_equal_the_ground_truth(simulated_run):
    _, home, _ = simulated_run
    truth = json.loads((home / "truth.json").read_text())
    mine = warehouse_identity(home / "warehouse.duckdb")
    assert set(mine) == set(truth["identifiers"])
    assert partition(mine) == partition(truth["identifiers"])
    (persons,) = query(home / "warehouse.duckdb", "select count(*) from customer_360")[0]
    assert persons == truth["persons"]


def test_identity_traps_are_nobodys_and_reported(simulated_run):
    """Family tablets, shops' generic emails, junk emails and the all-zero device id
    belong to nobody: not in identity_map, in identity_merge_rejections with why."""
    _, home, _ = simulated_run
    truth = json.loads((home / "truth.json").read_text())
    traps = truth["unattributed_identifiers"]
    assert "shared" in traps.values(), "the simulator should plant shared identifiers"
    assert not set(traps) & set(warehouse_identity(home / "warehouse.duckdb"))
    rejections = dict(query(home / "warehouse.duckdb",
                            "select identifier_type || ':' || identifier_value, rejection_kind "
                            "from identity_merge_rejections where rejection_kind <> 'limit_exceeded'"))
    assert {k: rejections.get(k) for k in traps} == {
        k: "blocklisted" if why == "placeholder" else "shared" for k, why in traps.items()}


def test_consent_violations_equal_the_ground_truth(simulated_run):
    _, home, _ = simulated_run
    truth = json.loads((home / "truth.json").read_text())
    assert truth["violations"], "the simulator should plant violations"
    assert warehouse_violations(home / "warehouse.duckdb") == set(truth["violations"])
    (sends,) = query(home / "warehouse.duckdb", "select count(*) from consent_audit")[0]
    assert sends == truth["marketing_sends"]


def test_marketing_audience_equals_the_ground_truth(simulated_run):
    _, home, _ = simulated_run
    truth = json.loads((home / "truth.json").read_text())
    wh = home / "warehouse.duckdb"
    person_of = {}  # truth person -> warehouse person, through any identifier
    mine = warehouse_identity(wh)
    for identifier, truth_person in truth["identifiers"].items():
        person_of[truth_person] = mine[identifier]
    expected = {(person_of[p], s) for p, s in truth["audience"]}
    assert set(query(wh, "select person_id, scope from marketing_audience")) == expected


def test_dead_letters_equal_the_planted_bad_records(simulated_run):
    _, home, _ = simulated_run
    truth = json.loads((home / "truth.json").read_text())
    rows = query(home / "warehouse.duckdb", "select raw, reason, topic from dead_letter")
    assert sorted(r for r, _, _ in rows) == sorted(b["raw"] for b in truth["bad_records"])
    assert all(reason and ":" in reason for _, reason, _ in rows)
    landed = query(home / "warehouse.duckdb", "select count(*), count(distinct event_id) from landed_events")[0]
    assert landed == (truth["valid_events"] + len(truth["duplicates"]), truth["valid_events"])


def test_every_check_of_the_run_is_recorded(simulated_run):
    _, home, _ = simulated_run
    rows = query(home / "warehouse.duckdb",
                 'select contract, "check", outcome, "value" from contract_results')
    contracts = {c for c, _, _, _ in rows}
    assert {"marketing_audience", "consent_audit", "customer_360", "landed_events", "dead_letter"} <= contracts
    truth = json.loads((home / "truth.json").read_text())
    violation_rows = [r for r in rows if r[0] == "consent_audit" and r[1] == "marketing sends that broke consent"]
    assert violation_rows == [("consent_audit", "marketing sends that broke consent", "warned",
                               float(len(truth["violations"])))]
    assert not [r for r in rows if r[2] in ("failed", "error")]
    # the dbt tests too, each once, with their outcome: every test of the project ran in this run
    manifest = json.loads((ROOT / "dbt_project" / "target" / "manifest.json").read_text())
    tests = {n["name"] for n in manifest["nodes"].values()  # the DAG runs the tests of models (not of sources)
             if n["resource_type"] == "test" and any(d.startswith("model.") for d in n["depends_on"]["nodes"])}
    dbt_rows = [(c, k) for c, k, _, _ in rows if c.startswith("dbt/")]
    assert len(dbt_rows) == len(set(dbt_rows)) and {k for _, k in dbt_rows} == tests
    assert ("dbt/tests", "assert_marketing_audience_has_consent_in_force") in dbt_rows
    assert ("dbt/customer_360", "unique_customer_360_person_id") in dbt_rows


def test_published_snapshot_holds_the_marts_without_clear_identifiers(simulated_run):
    _, home, _ = simulated_run
    snap = home / "published" / "customer_view.duckdb"
    assert snap.exists()
    tables = {t for (t,) in query(snap, "show tables")}
    assert {"customer_360", "fct_interactions", "consent_audit", "marketing_audience", "identity_map"} <= tables
    truth = json.loads((home / "truth.json").read_text())
    values = {k.split(":", 1)[1] for k in truth["identifiers"]}
    for table in tables:
        text = " ".join(str(v) for r in query(snap, f"select * from {table}") for v in r)
        leaked = [v for v in values if v in text]
        assert not leaked, f"{table} holds clear identifiers: {leaked[:3]}"


def test_one_alert_per_violation_on_the_alerts_topic(simulated_run):
    env, home, _ = simulated_run
    truth = json.loads((home / "truth.json").read_text())
    consumer = KafkaConsumer("alerts", bootstrap_servers=env["OMNIVUE_KAFKA_BOOTSTRAP"], group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000, enable_auto_commit=False)
    alerts = [json.loads(m.value) for m in consumer]
    consumer.close()
    assert sorted(a["evidence"]["event_id"] for a in alerts) == sorted(truth["violations"])
    assert {a["type"] for a in alerts} == {"consent_violation"}
    assert all(a["owner"] and a["time"] for a in alerts)


def _warehouse_copy(simulated_run, tmp_path: Path, monkeypatch):
    """A copy of the run's warehouse in a new OMNIVUE_HOME (this process's), opened for writing."""
    import shutil

    import duckdb

    copy_home = tmp_path / "home"
    copy_home.mkdir()
    shutil.copy(simulated_run[1] / "warehouse.duckdb", copy_home / "warehouse.duckdb")
    monkeypatch.setenv("OMNIVUE_HOME", str(copy_home))
    return duckdb.connect(str(copy_home / "warehouse.duckdb"))


def test_a_quiet_day_warns_and_does_not_block_publish(simulated_run, tmp_path, monkeypatch):
    """Nothing landed for three days (a paused producer, a quiet weekend): the freshness check
    warns, and the snapshot may still be replaced (it moves with the clock: customers lapse)."""
    from omnivue.config import load_settings
    from omnivue.contract_checks import verify_all

    con = _warehouse_copy(simulated_run, tmp_path, monkeypatch)
    con.execute("update landed_events set received_at = received_at - interval 3 day")
    con.close()

    report = verify_all(load_settings(), run_id="quiet")
    stale = [r for r in report.results if (r.contract, r.check) == ("landed_events", "ingest ran in the last day")]
    assert [(r.outcome, r.blocking) for r in stale] == [("failed", False)]
    assert report.ok, report.render()


def test_soda_blocks_an_audience_member_without_consent(simulated_run, tmp_path, monkeypatch):
    """Corrupt a copy of the warehouse: a person whose consent was withdrawn is put in the audience."""
    from omnivue.config import load_settings
    from omnivue.contract_checks import verify_all

    con = _warehouse_copy(simulated_run, tmp_path, monkeypatch)
    copy_home = tmp_path / "home"
    withdrawn = con.execute(
        "select person_id, scope from int_consent_history where purpose = 'marketing' and is_latest "
        "and status = 'withdrawn' limit 1").fetchone()
    assert withdrawn, "the simulation should contain a withdrawal"
    con.execute("insert into marketing_audience (person_id, scope, purpose, consent_event_id) "
                "values (?, ?, 'marketing', 'forged')", list(withdrawn))
    con.close()

    report = verify_all(load_settings(), run_id="corrupted")
    assert not report.ok
    blocking = [(r.contract, r.check, r.value) for r in report.blocking_failures()]
    assert blocking == [("marketing_audience", "nobody without consent in force", 1.0)]
    rows = query(copy_home / "warehouse.duckdb",
                 "select outcome from contract_results where run_id = 'corrupted' and contract = 'marketing_audience' "
                 "and \"check\" = 'nobody without consent in force'")
    assert rows == [("failed",)]


def test_a_failing_run_keeps_the_previous_snapshot(simulated_run, tmp_path):
    """A run whose marketing_audience would hold a withdrawn person fails; analysts keep the old snapshot."""
    import shutil

    env, home, _ = simulated_run
    # on a copy: the failed run leaves that audience in the warehouse, which the other tests share
    home = _copy_home(home, tmp_path / "home")
    env = {**env, "OMNIVUE_HOME": str(home)}
    snap = home / "published" / "customer_view.duckdb"
    before = (snap.stat().st_ino, snap.stat().st_mtime_ns, snap.read_bytes())
    project = tmp_path / "project"
    for part in ("dags", "dbt_project", "contracts"):
        shutil.copytree(ROOT / part, project / part, ignore=shutil.ignore_patterns("target", "logs"))
    model = project / "dbt_project" / "models" / "marts" / "marketing_audience.sql"
    model.write_text(model.read_text() + """
union all
select person_id, scope, purpose, consent_event_id, valid_from as consent_granted_at
{%- if is_incremental() %}, false as _tombstone{% endif %}
from {{ ref('int_consent_history') }}
where purpose = 'marketing' and is_latest and status = 'withdrawn'
""")
    failed = run_cli("run", env={**env, "OMNIVUE_PROJECT_DIR": str(project)})
    assert failed.returncode == 1, failed.stdout[-2000:]
    assert "run:                FAILED" in failed.stdout
    failed_line = next(line for line in failed.stdout.splitlines() if line.startswith("failed: "))
    assert "marketing_audience" in failed_line  # stopped by the consent check, not by something else
    after = (snap.stat().st_ino, snap.stat().st_mtime_ns, snap.read_bytes())
    assert after == before
    # the audit trail says which check stopped it, when; the summary too; and publish alone refuses
    run_id = re.search(r"^DAG customer_view run (\S+): ", failed.stdout, re.M).group(1)
    rows = query(home / "warehouse.duckdb", 'select "check", outcome, blocking, "value" from contract_results '
                 "where run_id = ? and contract = 'dbt/tests' and outcome <> 'passed'", [run_id])
    assert [(c, o, b) for c, o, b, _ in rows] == [("assert_marketing_audience_has_consent_in_force", "failed", True)]
    assert rows[0][3] >= 1
    assert "  BLOCKING failed: dbt/tests / assert_marketing_audience_has_consent_in_force" in failed.stdout
    assert "dbt tests:          " in failed.stdout
    refused = run_cli("publish", env=env)
    assert refused.returncode == 1 and "assert_marketing_audience_has_consent_in_force" in refused.stderr, refused.stderr
    assert (snap.stat().st_ino, snap.stat().st_mtime_ns) == after[:2]


def _copy_home(home: Path, to: Path) -> Path:
    """A copy of a run's data directory (not the broker's files): a second pipeline on the same broker."""
    import shutil

    shutil.copytree(home, to, ignore=shutil.ignore_patterns("broker", ".run.lock"))
    return to


def test_publish_refuses_marts_rebuilt_after_the_latest_verification(simulated_run, tmp_path):
    """`omnivue run` killed between its dbt build and the end of its verification: the marts are
    rebuilt, the latest verification recorded is the previous run's (a pass). `omnivue publish`
    took that pass for the new marts and published a withdrawn person in marketing_audience."""
    import duckdb
    from pipeline_helpers import run_dbt

    env, home, _ = simulated_run
    copy = _copy_home(home, tmp_path / "home")
    env = {**env, "OMNIVUE_HOME": str(copy)}
    snap = copy / "published" / "customer_view.duckdb"
    before = snap.read_bytes()
    # the killed run's build (one mart is enough), with what a bad build could put there
    run_dbt(copy / "warehouse.duckdb", tmp_path / "dbt", "run", "--select", "marketing_audience")
    con = duckdb.connect(str(copy / "warehouse.duckdb"))
    withdrawn = con.execute("select person_id, scope from int_consent_history where purpose = 'marketing' "
                            "and is_latest and status = 'withdrawn' limit 1").fetchone()
    con.execute("insert into marketing_audience (person_id, scope, purpose, consent_event_id) "
                "values (?, ?, 'marketing', 'forged')", list(withdrawn))
    con.close()

    proc = run_cli("publish", env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("omnivue: error: publish blocked: the marts were rebuilt"), lines
    assert "omnivue verify" in lines[0]
    assert snap.read_bytes() == before
    # once verified (and rejected), still blocked, by the failed check this time
    assert run_cli("verify", env=env).returncode == 1
    proc = run_cli("publish", env=env)
    assert proc.returncode == 1 and "nobody without consent in force" in proc.stderr, proc.stderr
    assert snap.read_bytes() == before


@pytest.mark.parametrize("signame", ["SIGTERM"])  # SIGINT takes the same path (pipeline._stops_on_signals)
def test_a_signal_stops_the_run_in_one_line_and_the_next_run_succeeds(simulated_run, tmp_path, signame):
    """SIGTERM (Airflow's in-process task handler swallowed it) or Ctrl-C (Airflow took it for a task
    failure and retried the task) during `omnivue run` stops the run at once, in one line; the next
    run needs no repair and publishes."""
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    env, home, _ = simulated_run
    copy = _copy_home(home, tmp_path / "home")
    env = {**os.environ, **env, "OMNIVUE_HOME": str(copy)}
    snap = copy / "published" / "customer_view.duckdb"
    before = snap.read_bytes()
    proc = subprocess.Popen([str(Path(sys.executable).with_name("omnivue")), "run"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        running = None
        while running is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.3)
            try:
                con = sqlite3.connect(f"file:{copy / 'airflow' / 'airflow.db'}?mode=ro", uri=True, timeout=1)
                row = con.execute("select task_id from task_instance where state = 'running' and task_id like 'dbt.%' "
                                  "and run_id = (select run_id from dag_run order by id desc limit 1)").fetchone()
                con.close()
            except sqlite3.Error:
                continue
            running = row[0] if row else None
        assert running, "no dbt task ran"
        proc.send_signal(getattr(signal, signame))
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, (proc.returncode, err[-3000:])
    lines = err.strip().splitlines()
    assert lines[-1].startswith(f"omnivue: interrupted ({signame})"), lines[-5:]
    assert "Traceback" not in err
    assert snap.read_bytes() == before

    again = run_cli("run", env=env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert snap.read_bytes() != before


def test_publish_removes_what_a_killed_publish_left(simulated_run, tmp_path):
    """A publish killed while it built or checked its candidate left `.customer_view.duckdb.<pid>.tmp`
    (a whole unverified copy of the marts) in published/ for ever: the next publish removes it."""
    env, home, _ = simulated_run
    copy = _copy_home(home, tmp_path / "home")
    env = {**env, "OMNIVUE_HOME": str(copy)}
    leftovers = [copy / "published" / ".customer_view.duckdb.4242.tmp", copy / "published" / ".customer_view.duckdb.4242.tmp.wal"]
    for path in leftovers:
        path.write_bytes(b"an unverified candidate")
    assert run_cli("verify", env=env).returncode == 0
    proc = run_cli("publish", env=env)
    assert proc.returncode == 0, proc.stderr
    assert not [p for p in leftovers if p.exists()]
    assert sorted(p.name for p in (copy / "published").iterdir()) == [".publish.lock", "customer_view.duckdb"]

