"""Consent violations, alerts, acknowledgements and the compliance audit
report, on real parts: the local broker, `omnivue run` (the Airflow DAG),
the DAG's contract and publish tasks again on a corrupted audience, the real
CLI and headless Chromium.

The consent cases (planted in the shared world of test_compliance.py, next to
a crowd without violations and Erin), worked out by hand from DESIGN.md:
- Olga: consent, then an email: fine;
- Nico: an email without any consent: violation (no_consent);
- Wendy: push consent granted then withdrawn, then a push: violation;
- Carl: consent for everything through his email, withdrawn for social
  through his handle (a conflict between identifiers; the withdrawal wins),
  then a brand DM: violation;
- Lucy: consent for everything, then an email; her withdrawal - made BEFORE
  the send - arrives after everything else: only event time shows the
  violation.
Then compliance acknowledges Nico's violation; marketing_audience is
corrupted (Wendy, withdrawn, put back in it) and the DAG runs again (its
compliance views, contracts and publish; the rest marked done): the blocking contract fails the run, the published
snapshot stays as it was, and the open violations - not Nico's - are
reminded. Olga asks for her data, then to be erased. The report shows it all.
"""

from __future__ import annotations

import html as html_lib
import json
import os
import re
import uuid
from pathlib import Path

import duckdb
import pytest

from test_compliance import (CARL_DM, LUCY_LATE_WITHDRAWAL, LUCY_SEND, NICO_SEND, WENDY_SEND, compliance_cli,
                             query, read_topic, run_dag, shared_world)

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("OMNIVUE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
VIOLATIONS = {NICO_SEND["event_id"], WENDY_SEND["event_id"], CARL_DM["event_id"], LUCY_SEND["event_id"]}
OPEN = VIOLATIONS - {NICO_SEND["event_id"]}
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
CLEAR_VALUES = ["olga@example.com", "nico@example.com", "lucy@example.com", "carl@example.com", "x:carl_c",
                "dev-wendy", "c-olga", "erin.erasable", "crowd.member"]


@pytest.fixture(scope="module")
def audited(tmp_path_factory, request):
    w = shared_world(tmp_path_factory, request)
    env, home = w["env"], w["home"]
    wh, snap = home / "warehouse.duckdb", home / "published" / "customer_view.duckdb"
    state: dict = {"env": env, "home": home, "first_run": w["first_run"],
                   "violations": {e for (e,) in query(wh, "select event_id from consent_audit where not consent_ok")},
                   "alerts_before": read_topic(env, "alerts")}
    state["ack"] = compliance_cli("audit", "ack", NICO_SEND["event_id"], "--by", "Ada Compliance", "--why",
                                  "campaign c1 misconfigured; ticket C-12", env=env)
    state["ack_unknown"] = compliance_cli("audit", "ack", str(uuid.uuid4()), "--by", "Ada", "--why", "x", env=env)
    # a bad change puts Wendy (push consent withdrawn) back in the audience ...
    con = duckdb.connect(str(wh))
    wendy = con.execute("select person_id, scope, consent_event_id from int_consent_history where person_id = "
                        "(select person_id from identity_map where identifier_value = 'dev-wendy') "
                        "and purpose = 'marketing' and is_latest and status = 'withdrawn'").fetchone()
    con.execute("insert into marketing_audience (person_id, scope, purpose, consent_event_id) "
                "values (?, ?, 'marketing', ?)", list(wendy))
    con.close()
    before = (snap.stat().st_ino, snap.read_bytes())
    # ... and the DAG runs again on it: its compliance views (they read the acknowledgements), contracts and
    # publish; ingest and the other dbt tasks are marked done (nothing new to land or build)
    state["corrupted_run"] = run_dag({**env, "OMNIVUE_ALERT_REMINDER_HOURS": "0.0001"}, "customer_view.py",
                                     "customer_view",
                                     mark_success_pattern=r"(?!verify_contracts$|publish$|dbt\.stg_compliance__).*")
    state["snapshot_unchanged"] = (snap.stat().st_ino, snap.read_bytes()) == before
    state["alerts"] = read_topic(env, "alerts")
    con = duckdb.connect(str(wh))
    con.execute("delete from marketing_audience where person_id = ? and scope = ?", list(wendy[:2]))
    con.close()
    # requests served, for the report: Olga asks for her data, then to be erased
    base = home.parent
    state["export"] = compliance_cli("subject", "export", "--email", "OLGA@example.com", "--out",
                                     str(base / "olga.json"), "--by", "dpo", env=env)
    state["erase"] = compliance_cli("subject", "erase", "--customer-id", "C-OLGA", "--by", "dpo", "--why",
                                    "art. 17", env=env)
    report = base / "report.html"
    state["report_cli"] = compliance_cli("audit", "report", "--out", str(report), env=env)
    state["report"] = report
    return state


def test_consent_audit_lists_exactly_the_planted_violations_with_one_alert_each(audited):
    assert audited["violations"] == VIOLATIONS
    first = [a["evidence"]["event_id"] for a in audited["alerts_before"] if a["type"] == "consent_violation"]
    assert sorted(first) == sorted(VIOLATIONS)
    again = [a["evidence"]["event_id"] for a in audited["alerts"] if a["type"] == "consent_violation"]
    assert sorted(again) == sorted(VIOLATIONS)  # the second pass raised no duplicate
    assert all(a["owner"] == "compliance" and "audit ack" in a["action"] for a in audited["alerts"])


def test_the_late_withdrawal_is_judged_in_event_time(audited):
    wh = audited["home"] / "warehouse.duckdb"
    (status, record, reason), = query(wh, "select consent_status, consent_event_id, violation_reason from "
                                          "consent_audit where event_id = ?", [LUCY_SEND["event_id"]])
    assert (status, record, reason) == ("withdrawn", LUCY_LATE_WITHDRAWAL["event_id"], "consent_withdrawn")
    arrival = dict(query(wh, "select event_id, kafka_timestamp from landed_events where event_id in (?, ?)",
                         [LUCY_SEND["event_id"], LUCY_LATE_WITHDRAWAL["event_id"]]))
    assert arrival[LUCY_LATE_WITHDRAWAL["event_id"]] > arrival[LUCY_SEND["event_id"]]  # it arrived after the send


def test_an_acknowledgement_is_recorded_and_stops_the_reminders(audited):
    wh = audited["home"] / "warehouse.duckdb"
    assert audited["ack"].returncode == 0, audited["ack"].stderr
    assert "acknowledged" in audited["ack"].stdout
    assert audited["ack_unknown"].returncode == 1
    assert "not a known consent violation" in audited["ack_unknown"].stderr
    (by, why, when), = query(wh, "select acknowledged_by, reason, acknowledged_at from violation_acks "
                                 "where event_id = ?", [NICO_SEND["event_id"]])
    assert (by, why) == ("Ada Compliance", "campaign c1 misconfigured; ticket C-12") and when is not None
    assert query(wh, "select consent_ok from consent_audit where event_id = ?", [NICO_SEND["event_id"]]) == [(False,)]
    reminded = [a["evidence"]["event_id"] for a in audited["alerts"] if a["type"] == "consent_violation_reminder"]
    assert sorted(reminded) == sorted(OPEN)  # never the acknowledged one
    corrupted_run = query(wh, "select run_id from contract_results where contract = 'consent_audit' "
                              "order by checked_at desc limit 1")[0][0]
    checks = dict(query(wh, "select \"check\", \"value\" from contract_results where run_id = ? and "
                            "contract = 'consent_audit' and \"check\" in ('marketing sends that broke consent', "
                            "'violations nobody acknowledged')", [corrupted_run]))
    assert checks == {"marketing sends that broke consent": 4.0, "violations nobody acknowledged": 3.0}


def test_a_corrupted_audience_fails_the_run_and_keeps_the_snapshot(audited):
    proc = audited["corrupted_run"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    tasks = dict(line.split()[1:3] for line in proc.stdout.splitlines() if line.startswith("TASK "))
    assert "STATE failed" in proc.stdout
    assert tasks["verify_contracts"] == "failed" and tasks["publish"] != "success"
    wh = audited["home"] / "warehouse.duckdb"
    run_id = query(wh, "select run_id from contract_results where contract = 'marketing_audience' "
                       "order by checked_at desc limit 1")[0][0]
    assert query(wh, "select outcome, \"value\", blocking from contract_results where run_id = ? and contract = "
                     "'marketing_audience' and \"check\" = 'nobody without consent in force'", [run_id]) \
        == [("failed", 1.0, True)]
    assert audited["snapshot_unchanged"]


def test_consent_conflicts_between_identifiers_are_visible(audited):
    wh = audited["home"] / "warehouse.duckdb"
    rows = query(wh, "select c.scope, c.status, c.source_identifier_types, c.is_winner, c.lost_to_winner "
                     "from consent_conflicts c join identity_map i on i.person_id = c.person_id "
                     "where i.identifier_value = 'carl@example.com' order by c.sequence_number")
    assert rows == [("social", "granted", "email", False, True),
                    ("social", "withdrawn", "social_handle", True, False)]


def _text(fragment: str) -> str:
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", fragment))


def test_the_report_lists_runs_violations_acknowledgements_and_requests(audited):
    for step in ("export", "erase", "report_cli"):
        assert audited[step].returncode == 0, audited[step].stdout + audited[step].stderr
    page = audited["report"].read_text()
    wh = audited["home"] / "warehouse.duckdb"
    runs = [r for (r,) in query(wh, "select distinct run_id from contract_results")]
    assert len(runs) == 2  # the pipeline run, the corrupted one
    for run_id in runs:
        assert html_lib.escape(run_id) in page

    def table(name: str) -> str:
        return page.split(f'id="{name}"')[1].split("</table>")[0]

    sends = lambda fragment: set(re.findall(UUID, fragment)) & VIOLATIONS  # noqa: E731 (consent records are there too)
    assert sends(table("open-violations")) == OPEN
    assert sends(table("acknowledged-violations")) == {NICO_SEND["event_id"]}
    assert "Ada Compliance" in table("acknowledged-violations")
    assert LUCY_LATE_WITHDRAWAL["event_id"] in table("open-violations")  # the consent record that forbade it
    assert "blocked" in _text(table("runs-table")) and "pass" in _text(table("runs-table"))
    assert "served" in _text(table("erasure-requests")) and "served" in _text(table("access-requests"))
    assert "<svg" in page and "Violating sends per day" in page
    assert not re.search(r"(src|href)=\"(?!data:|#)", page)  # self-contained
    lowered = page.lower()
    assert not [v for v in CLEAR_VALUES if v in lowered]  # pseudonymous ids and keyed hashes only


def test_the_report_opens_in_headless_chromium_without_errors(audited):
    if not CHROMIUM.exists():
        if os.environ.get("OMNIVUE_SKIP_BROWSER_TESTS") == "1":
            pytest.skip("OMNIVUE_SKIP_BROWSER_TESTS=1")
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            page.on("requestfailed", lambda r: errors.append(f"requestfailed: {r.url}"))
            page.goto(audited["report"].as_uri(), wait_until="load")
            text = page.inner_text("body")
            charts = page.locator("svg.chart").count()
            bars = page.locator("svg.chart rect").count()
            open_rows = page.locator("#open-violations tbody tr").count()
            acked_rows = page.locator("#acknowledged-violations tbody tr").count()
            run_rows = page.locator("#runs-table tbody tr").count()
        finally:
            browser.close()
    assert errors == []
    assert charts == 2 and bars >= 3
    assert (open_rows, acked_rows, run_rows) == (3, 1, 2)
    for event_id in VIOLATIONS:
        assert event_id in text
