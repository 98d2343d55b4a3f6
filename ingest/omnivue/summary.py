"""The readable end-of-run summary (``omnivue run`` and ``omnivue demo``)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from .config import Settings
from .warehouse import session, table_exists

EXAMPLE_QUERY = ("select lifecycle_stage, count(*) as people, round(avg(n_channels), 2) as avg_channels "
                 "from customer_360 group by 1 order by 2 desc")


def collect(settings: Settings, run_id: str | None = None, since: datetime | None = None) -> dict[str, Any]:
    """Key figures from the warehouse (read-only). ``run_id``: the contract results of that run only
    (default: the latest recorded); ``since``: when the run started, for what it landed."""
    out: dict[str, Any] = {}
    with session(settings.warehouse, read_only=True) as con:
        def scalar(sql: str, params: list[Any] | None = None) -> Any:
            return con.execute(sql, params or []).fetchone()[0]

        if table_exists(con, "landed_events"):
            out["records_landed"] = scalar("select count(*) from landed_events")
            out["events"] = scalar("select count(distinct event_id) from landed_events")
            if since is not None:
                out["landed_this_run"] = scalar("select count(*) from landed_events where received_at >= ?", [since])
        if table_exists(con, "dead_letter"):
            if since is not None:
                out["dead_this_run"] = scalar("select count(*) from dead_letter where received_at >= ?", [since])
            out["dead_letters"] = scalar("select count(*) from dead_letter")
            out["dead_letter_reasons"] = dict(con.execute(
                "select split_part(reason, ':', 1), count(*) from dead_letter group by 1 order by 2 desc").fetchall())
        if table_exists(con, "customer_360"):
            out["persons"] = scalar("select count(*) from customer_360")
            out["lifecycle"] = dict(con.execute(
                "select lifecycle_stage, count(*) from customer_360 group by 1 order by 2 desc").fetchall())
        if table_exists(con, "consent_audit"):
            out["marketing_sends"] = scalar("select count(*) from consent_audit")
            out["consent_violations"] = scalar("select count(*) from consent_audit where not consent_ok")
        if table_exists(con, "marketing_audience"):
            out["audience"] = dict(con.execute(
                "select scope, count(*) from marketing_audience group by 1 order by 1").fetchall())
        if table_exists(con, "contract_results"):
            from .publish import DBT_TEST_ROWS

            soda, dbt = f"not ({DBT_TEST_ROWS})", DBT_TEST_ROWS  # the contracts' checks (snapshot's too); dbt tests
            rid = run_id or scalar(f"select run_id from contract_results where {soda} order by checked_at desc limit 1")
            if run_id is not None and not scalar(f"select count(*) from contract_results where run_id = ? and {soda}",
                                                 [run_id]):
                rid = None  # the run stopped before its contracts
            out["contract_run"] = rid
            for key, kind, of_run in (("contract", soda, rid), ("dbt", dbt, run_id or rid)):
                out[f"{key}_outcomes"] = dict(con.execute(
                    f"select outcome, count(*) from contract_results where run_id = ? and {kind} group by 1 order by 1",
                    [of_run]).fetchall())
                out[f"{key}_problems"] = [
                    {"contract": c, "check": k, "outcome": o, "value": v, "blocking": b} for c, k, o, v, b in con.execute(
                        'select contract, "check", outcome, "value", blocking from contract_results '
                        f"where run_id = ? and {kind} and outcome <> 'passed' order by blocking desc, contract",
                        [of_run]).fetchall()]
    out["published"] = str(settings.published) if settings.published.exists() else None
    if out["published"]:
        out["published_at"] = datetime.fromtimestamp(settings.published.stat().st_mtime, timezone.utc)
        out["published_earlier"] = since is not None and out["published_at"] < since
    return out


def _problem_lines(problems: list[dict[str, Any]]) -> list[str]:
    """The checks that did not pass (the first ten), blocking ones first."""
    lines = []
    for p in problems[:10]:
        value = "" if p["value"] is None else f" = {p['value']:g}"
        lines.append(f"  {'BLOCKING ' if p['blocking'] and p['outcome'] != 'warned' else ''}{p['outcome']}: "
                     f"{p['contract']} / {p['check']}{value}")
    return lines


def truth_check(settings: Settings, figures: dict[str, Any]) -> list[str]:
    """Compare with the simulator's ground truth, when there is one."""
    if not settings.truth_file.exists():
        return []
    truth = json.loads(settings.truth_file.read_text())
    earlier = (figures.get("events") or 0) - (truth.get("valid_events") or 0)
    if earlier > 0:
        # a second demo on the same data directory, or a broker still holding an earlier run's
        # records: the warehouse's persons, violations and dead letters are of more than this
        # simulation, and a comparison would say DIFFERS about a correct warehouse
        return [f"  not compared: the warehouse holds {figures.get('events')} distinct events, this simulation "
                f"{truth.get('valid_events')} (earlier runs' data is kept); to compare, start from a clean slate: "
                "`make clean` (stops the broker, removes the data directory) or a new OMNIVUE_HOME, then simulate again"]
    lines = []
    for label, mine, theirs in (("persons", figures.get("persons"), truth.get("persons")),
                                ("consent violations", figures.get("consent_violations"), len(truth.get("violations", []))),
                                ("dead letters", figures.get("dead_letters"), len(truth.get("bad_records", [])))):
        mark = "ok" if mine == theirs else "DIFFERS"
        lines.append(f"  {label:<20} warehouse {mine}  truth {theirs}  {mark}")
    return lines


def render(settings: Settings, figures: dict[str, Any], ok: bool | None = None) -> str:
    f = figures
    lines = ["", "omnivue run summary", "==================="]
    if ok is not None:
        lines.append(f"run:                {'SUCCEEDED' if ok else 'FAILED'}")
    if "landed_this_run" in f:
        lines.append(f"this run landed:    {f['landed_this_run']} records, {f.get('dead_this_run', 0)} dead letters")
    if ok is False:
        lines.append("(the figures below are the warehouse's as the failed run left it: not verified, not published)")
    lines.append(f"events landed:      {f.get('records_landed', 0)} records, {f.get('events', 0)} distinct events")
    reasons = ", ".join(f"{k} {v}" for k, v in (f.get("dead_letter_reasons") or {}).items())
    lines.append(f"dead letters:       {f.get('dead_letters', 0)}" + (f" ({reasons})" if reasons else ""))
    lifecycle = ", ".join(f"{k} {v}" for k, v in (f.get("lifecycle") or {}).items())
    lines.append(f"persons:            {f.get('persons', 0)}" + (f" ({lifecycle})" if lifecycle else ""))
    lines.append(f"consent violations: {f.get('consent_violations', 0)} of {f.get('marketing_sends', 0)} marketing sends"
                 " (reported in consent_audit, never hidden)")
    audience = ", ".join(f"{k} {v}" for k, v in (f.get("audience") or {}).items())
    lines.append(f"marketing audience: {audience or 'nobody'}")
    if f.get("dbt_outcomes"):
        lines.append("dbt tests:          " + ", ".join(f"{k} {v}" for k, v in f["dbt_outcomes"].items()))
        lines.extend(_problem_lines(f.get("dbt_problems") or []))
    outcomes = ", ".join(f"{k} {v}" for k, v in (f.get("contract_outcomes") or {}).items())
    if f.get("contract_run"):
        lines.append(f"contract checks:    {outcomes or 'none'} (run {f['contract_run']})")
    else:
        lines.append("contract checks:    not run" + (" in this run" if "contract_run" in f else ""))
    lines.extend(_problem_lines(f.get("contract_problems") or []))
    truth = truth_check(settings, f)
    if truth:
        lines.append("ground truth (simulator):")
        lines.extend(truth)
    if f.get("published") and ok is False and f.get("published_earlier"):
        at = f["published_at"].strftime("%Y-%m-%d %H:%M:%S UTC")
        lines.append(f"published snapshot: unchanged, from an earlier run ({at}): {f['published']}")
    elif f.get("published"):
        lines.append(f"published snapshot: {f['published']} (open it read-only)")
        lines.append("example query:")
        lines.append(f"  omnivue query \"{EXAMPLE_QUERY}\"")
    else:
        lines.append("published snapshot: none (nothing passed the blocking contracts yet)")
    return "\n".join(lines)
