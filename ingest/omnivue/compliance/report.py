"""``omnivue audit report [--out FILE]``: one self-contained HTML file for
compliance (inline CSS and SVG, no script, no external asset): runs, checks
and their outcomes over time, the consent violations (open and
acknowledged) with the person's pseudonymous id and the consent record that
allowed or forbade the send, a chart of violations over time, consent
conflicts between identifiers, and the access and erasure requests served.

It reads the warehouse read-only and shows pseudonymous ids and keyed
hashes only: no identifier value ever appears in it.
"""

from __future__ import annotations

import html
import json
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from ..config import Settings
from ..warehouse import session
from .store import ComplianceError, fetch_dicts, table_exists

MAX_RUNS_IN_MATRIX = 20
MAX_ROWS = 1000

_OUTCOME_CLASS = {"passed": "ok", "warned": "warn", "failed": "bad", "error": "bad"}


def _e(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return html.escape(f"{value:g}")
    return html.escape(str(value))


def _ts(value: Any) -> str:
    if not value:
        return ""
    text = str(value)
    try:
        return datetime.fromisoformat(text).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return text


def collect(settings: Settings) -> dict[str, Any]:
    """Everything the report shows, from the warehouse (read-only)."""
    if not settings.warehouse.exists():
        raise ComplianceError(f"{settings.warehouse} does not exist yet: run `omnivue run` first")
    data: dict[str, Any] = {"generated_at": datetime.now(timezone.utc).isoformat(), "home": str(settings.home)}
    with session(settings.warehouse, read_only=True) as con:
        has = {t: table_exists(con, t) for t in ("contract_results", "consent_audit", "consent_alerts",
                                                   "violation_acks", "consent_alert_reminders", "subject_requests",
                                                   "consent_conflicts", "suppressed_identifiers")}
        data["runs"] = fetch_dicts(con, """
            select run_id, min(checked_at) as started_at, max(checked_at) as checked_at, count(*) as checks,
                   count(*) filter (where outcome = 'passed') as passed,
                   count(*) filter (where outcome = 'warned') as warned,
                   count(*) filter (where outcome = 'failed') as failed,
                   count(*) filter (where outcome = 'error') as errors,
                   count(*) filter (where blocking and outcome in ('failed', 'error')) as blocking_failures,
                   max(case when contract = 'consent_audit' and "check" = 'marketing sends that broke consent'
                            then "value" end) as violations,
                   max(case when contract = 'consent_audit' and "check" = 'violations nobody acknowledged'
                            then "value" end) as open_violations
            from contract_results group by run_id order by min(checked_at), run_id""") if has["contract_results"] else []
        recent = [r["run_id"] for r in data["runs"][-MAX_RUNS_IN_MATRIX:]]
        data["matrix_runs"] = recent
        data["checks"] = fetch_dicts(con, """
            select run_id, contract, "check", outcome, "value", blocking, checked_at, message
            from contract_results where list_contains(?::varchar[], run_id)
            order by contract, "check", checked_at""", [recent]) if has["contract_results"] else []
        data["check_totals"] = fetch_dicts(con, """
            select contract, "check", bool_or(blocking) as blocking, count(*) as runs,
                   count(*) filter (where outcome = 'passed') as passed,
                   count(*) filter (where outcome = 'warned') as warned,
                   count(*) filter (where outcome in ('failed', 'error')) as failed,
                   max(checked_at) filter (where outcome <> 'passed') as last_not_passed
            from contract_results group by contract, "check" order by contract, "check"
            """) if has["contract_results"] else []
        data["violations"] = []
        if has["consent_audit"]:
            ack_sql = ("(select k.acknowledged_by from violation_acks k where lower(k.event_id) = a.event_id "
                       "order by k.acknowledged_at limit 1) as acknowledged_by, "
                       "(select k.reason from violation_acks k where lower(k.event_id) = a.event_id "
                       "order by k.acknowledged_at limit 1) as ack_reason, "
                       "(select min(k.acknowledged_at) from violation_acks k where lower(k.event_id) = a.event_id) "
                       "as acknowledged_at") if has["violation_acks"] else \
                      "null as acknowledged_by, null as ack_reason, null as acknowledged_at"
            alert_sql = ("(select s.alerted_at from consent_alerts s where s.event_id = a.event_id) as alerted_at"
                         if has["consent_alerts"] else "null as alerted_at")
            remind_sql = ("(select count(*) from consent_alert_reminders r where r.event_id = a.event_id) as reminders"
                          if has["consent_alert_reminders"] else "0 as reminders")
            data["violations"] = fetch_dicts(con, f"""
                select a.event_id, a.person_id, a.event_type, a.occurred_at, a.scope, a.purpose, a.source,
                       a.campaign_id, a.consent_status, a.consent_event_id, a.consent_valid_from, a.consent_valid_to,
                       a.violation_reason, {alert_sql}, {remind_sql}, {ack_sql}
                from consent_audit a where not a.consent_ok order by a.occurred_at, a.event_id""")
            data["sends"] = con.execute("select count(*) from consent_audit").fetchone()[0]
        audit_ids = {v["event_id"] for v in data["violations"]}
        # acknowledgements of violations no longer in consent_audit (e.g. their person was erased)
        data["orphan_acks"] = [a for a in fetch_dicts(con, "select * from violation_acks order by acknowledged_at")
                               if a["event_id"].lower() not in audit_ids] if has["violation_acks"] else []
        data["requests"] = fetch_dicts(con, """
            select request_id, kind, identifier_type, identifier_hash, requested_by, reason, requested_at, status,
                   served_at, person_ids, details, output_path, notice_published_at, error
            from subject_requests order by requested_at, request_id""") if has["subject_requests"] else []
        data["suppressed"] = con.execute(
            "select count(*), coalesce(sum(suppressed_records), 0) from suppressed_identifiers").fetchone() \
            if has["suppressed_identifiers"] else (0, 0)
        data["conflicts"] = fetch_dicts(con, f"""
            select person_id, purpose, scope, sequence_number, consent_event_id, status, occurred_at, source,
                   source_identifier_types, is_winner, lost_to_winner, winning_event_id, winning_status
            from consent_conflicts order by person_id, purpose, scope, sequence_number limit {MAX_ROWS}
            """) if has["consent_conflicts"] else []
    return data


# --- SVG -----------------------------------------------------------------------------------------

def _bar_chart(title: str, points: list[tuple[str, float, str]], width: int = 760, height: int = 220,
               color: str = "#c0392b") -> str:
    """Bars with labels; each point is (label, value, tooltip)."""
    pad_l, pad_b, pad_t = 40, 46, 26
    if not points:
        return (f'<svg role="img" aria-label="{_e(title)}" width="{width}" height="60" xmlns="http://www.w3.org/2000/svg">'
                f'<text x="10" y="30" font-size="13">{_e(title)}: no data</text></svg>')
    top = max(v for _, v, _ in points) or 1
    inner_w, inner_h = width - pad_l - 10, height - pad_b - pad_t
    step = inner_w / len(points)
    bar_w = min(48.0, max(2.0, step * 0.7))
    parts = [f'<svg role="img" aria-label="{_e(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" class="chart">',
             f'<text x="{pad_l}" y="16" font-size="13" font-weight="bold">{_e(title)}</text>',
             f'<line x1="{pad_l}" y1="{pad_t + inner_h}" x2="{width - 10}" y2="{pad_t + inner_h}" stroke="#888"/>',
             f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + inner_h}" stroke="#888"/>']
    for frac in (0, 0.5, 1):
        y = pad_t + inner_h * (1 - frac)
        parts.append(f'<text x="{pad_l - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{top * frac:g}</text>')
    label_every = max(1, len(points) // 12)
    for i, (label, value, tip) in enumerate(points):
        h = inner_h * value / top
        x = pad_l + i * step + (step - bar_w) / 2
        y = pad_t + inner_h - h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{color}">'
                     f'<title>{_e(tip)}</title></rect>')
        if value:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" font-size="9" text-anchor="middle">'
                         f'{value:g}</text>')
        if i % label_every == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{pad_t + inner_h + 14}" font-size="9" '
                         f'text-anchor="middle">{_e(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# --- HTML ----------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#666;font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:22px}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4}
td.ok{background:#e6f4ea}td.warn{background:#fff4d6}td.bad{background:#fbe3e0}
td.num{text-align:right}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px}
.note{color:#555;font-size:12px;max-width:1000px}
.tag{display:inline-block;padding:0 6px;border-radius:8px;font-size:11px}
.tag.bad{background:#fbe3e0}.tag.ok{background:#e6f4ea}.tag.warn{background:#fff4d6}
"""


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]], table_id: str | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(rows_cell for rows_cell in row) + "</tr>" for row in rows)
    return f'<table{f" id={json.dumps(table_id)}" if table_id else ""}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _td(value: Any, cls: str = "") -> str:
    return f'<td{f" class={json.dumps(cls)}" if cls else ""}>{_e(value)}</td>'


def _details_summary(details: dict[str, Any] | None, kind: str) -> str:
    if not details:
        return ""
    if kind == "access":
        sections = details.get("sections", {})
        return ", ".join(f"{k} {v}" for k, v in sections.items() if v) or "nothing held"
    parts = []
    earlier = details.get("already_erased_by")
    if earlier:
        parts.append(f"already erased by request {earlier.get('request_id')} ({_ts(earlier.get('served_at'))}): "
                     "nothing done again")
    wh = details.get("warehouse") or {}
    if wh:
        parts.append("warehouse: " + ", ".join(f"{t} {c.get('deleted', 0)}" for t, c in sorted(wh.items())))
    snap = details.get("snapshot") or {}
    if snap:
        parts.append("snapshot " + str(snap.get("action", "")))
    files = details.get("files") or {}
    if files:
        parts.append("files: " + ", ".join(f"{p} ({f.get('count')})" for p, f in sorted(files.items())))
    ver = details.get("verification") or {}
    if ver:
        left = len(ver.get("file_hits") or {}) + len(ver.get("table_hits") or {})
        parts.append(f"verified: {ver.get('files_scanned', 0)} files, {ver.get('tables_scanned', 0)} tables, "
                     + ("0 values left" if not left else f"{left} places with values left"))
    return "; ".join(parts) or ("nothing held" if not details.get("found", True) else "")


def render(data: dict[str, Any]) -> str:
    runs, violations = data["runs"], data["violations"]
    open_v = [v for v in violations if not v.get("acknowledged_at")]
    acked_v = [v for v in violations if v.get("acknowledged_at")]
    erasures = [r for r in data["requests"] if r["kind"] == "erasure"]
    accesses = [r for r in data["requests"] if r["kind"] == "access"]
    out: list[str] = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        "<title>omnivue compliance audit report</title>", f"<style>{CSS}</style></head><body>",
        "<h1>omnivue compliance audit report</h1>",
        f'<p class="meta">Generated {_e(_ts(data["generated_at"]))} from {_e(data["home"])}/warehouse.duckdb. '
        "Persons appear by pseudonymous id (person_id) and identifiers by keyed hash only.</p>",
        '<div class="cards">',
        f'<div class="card" id="card-runs"><b>{len(runs)}</b>runs checked</div>',
        f'<div class="card"><b>{sum(r["checks"] for r in runs)}</b>check results kept</div>',
        f'<div class="card" id="card-violations"><b>{len(violations)}</b>consent violations '
        f'(of {data.get("sends", 0)} marketing sends)</div>',
        f'<div class="card" id="card-open"><b>{len(open_v)}</b>open (not acknowledged)</div>',
        f'<div class="card"><b>{len(acked_v)}</b>acknowledged</div>',
        f'<div class="card" id="card-erasures"><b>{len(erasures)}</b>erasure requests</div>',
        f'<div class="card" id="card-access"><b>{len(accesses)}</b>access requests</div>',
        f'<div class="card"><b>{data["suppressed"][0]}</b>suppressed identifiers '
        f'({data["suppressed"][1]} records dropped at ingest)</div>',
        "</div>",
    ]
    # charts
    by_day: Counter = Counter()
    for v in violations:
        by_day[str(v["occurred_at"])[:10]] += 1
    day_points = [(d[5:], n, f"{d}: {n} violating sends") for d, n in sorted(by_day.items())]
    run_points = [(_ts(r["started_at"])[5:16], r["violations"] or 0,
                   f"{r['run_id']}: {r['violations'] or 0:g} violations in consent_audit"
                   + (f", {r['open_violations']:g} not acknowledged" if r.get("open_violations") is not None else ""))
                  for r in runs if r.get("violations") is not None]
    out += ['<h2 id="chart">Violations over time</h2>',
            '<p class="note">Marketing sends that broke consent, by the day they were sent (event time: a withdrawal '
            "that arrived late still counts at the instant it was made), and the number of violations each run "
            "found in consent_audit.</p>",
            _bar_chart("Violating sends per day (event time)", day_points),
            _bar_chart("Violations found per run", run_points, color="#8e44ad")]
    # runs
    out += ['<h2 id="runs">Runs</h2>',
            '<p class="note">Every run of the contracts (contract_results keeps every check of every run). '
            "A run with a blocking failure published nothing.</p>",
            _table(["run", "checked at", "checks", "passed", "warned", "failed", "error", "blocking failures",
                    "violations", "not acknowledged", "verdict"],
                   [[_td(r["run_id"], "mono"), _td(_ts(r["checked_at"])), _td(r["checks"], "num"),
                     _td(r["passed"], "num"), _td(r["warned"], "num"), _td(r["failed"], "num"),
                     _td(r["errors"], "num"), _td(r["blocking_failures"], "num bad" if r["blocking_failures"] else "num"),
                     _td(r["violations"], "num"), _td(r["open_violations"], "num"),
                     _td("blocked" if r["blocking_failures"] else "pass", "bad" if r["blocking_failures"] else "ok")]
                    for r in reversed(runs)], "runs-table")]
    # checks x runs
    cells: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for c in data["checks"]:
        cells[(c["contract"], c["check"])][c["run_id"]] = c
    matrix_runs = data["matrix_runs"]
    rows = []
    for (contract, check), per_run in sorted(cells.items()):
        row = [_td(contract), _td(check)]
        for rid in matrix_runs:
            c = per_run.get(rid)
            if c is None:
                row.append("<td></td>")
            else:
                label = c["outcome"] + (f" {c['value']:g}" if isinstance(c["value"], (int, float)) and c["outcome"] != "passed" else "")
                row.append(_td(label, _OUTCOME_CLASS.get(c["outcome"], "")))
        rows.append(row)
    out += ['<h2 id="checks">Checks and outcomes over time</h2>',
            f'<p class="note">The last {len(matrix_runs)} runs, oldest first (columns); a blank cell: the check did '
            "not exist in that run.</p>",
            _table(["contract", "check"] + [f"run {i + 1}" for i in range(len(matrix_runs))], rows, "checks-table"),
            '<p class="note">Runs: ' + "; ".join(f"run {i + 1} = {_e(r)}" for i, r in enumerate(matrix_runs)) + "</p>",
            "<h3>All runs, per check</h3>",
            _table(["contract", "check", "blocking", "runs", "passed", "warned", "failed/error", "last not passed"],
                   [[_td(t["contract"]), _td(t["check"]), _td("yes" if t["blocking"] else "no"), _td(t["runs"], "num"),
                     _td(t["passed"], "num"), _td(t["warned"], "num"), _td(t["failed"], "num bad" if t["failed"] else "num"),
                     _td(_ts(t["last_not_passed"]))] for t in data["check_totals"]])]
    # violations
    def vrow(v: dict[str, Any], acked: bool) -> list[str]:
        row = [_td(v["event_id"], "mono"), _td(v["person_id"], "mono"), _td(v["event_type"]), _td(_ts(v["occurred_at"])),
               _td(v["scope"]), _td(v["campaign_id"]), _td(v["consent_status"], "bad"),
               _td(v["consent_event_id"], "mono"), _td(_ts(v["consent_valid_from"])), _td(_ts(v["consent_valid_to"])),
               _td(v["violation_reason"]), _td(_ts(v["alerted_at"]))]
        if acked:
            row += [_td(v["acknowledged_by"]), _td(v["ack_reason"]), _td(_ts(v["acknowledged_at"]))]
        else:
            row += [_td(v["reminders"], "num")]
        return row

    vhead = ["event (send)", "person (pseudonymous)", "type", "sent at", "scope", "campaign", "consent status",
             "consent record (event)", "record valid from", "record valid to", "reason", "first alerted"]
    out += ['<h2 id="violations">Open consent violations</h2>',
            '<p class="note">Marketing sends made without marketing consent in force for their scope at the instant '
            "of the send, with the consent record that forbade it (none: no consent event before the send). Nobody "
            "acknowledged them yet: they are reminded on the alerts topic.</p>",
            _table(vhead + ["reminders"], [vrow(v, False) for v in open_v], "open-violations"),
            '<h2 id="acknowledged">Acknowledged consent violations</h2>',
            '<p class="note">Still violations (they stay in consent_audit); compliance acknowledged them: who, why, '
            "when.</p>",
            _table(vhead + ["acknowledged by", "why", "when"], [vrow(v, True) for v in acked_v], "acknowledged-violations")]
    if data["orphan_acks"]:
        out += ["<h3>Acknowledgements of violations no longer in consent_audit (erased persons)</h3>",
                _table(["event", "person", "by", "why", "when"],
                       [[_td(a["event_id"], "mono"), _td(a["person_id"], "mono"), _td(a["acknowledged_by"]),
                         _td(a["reason"]), _td(_ts(a["acknowledged_at"]))] for a in data["orphan_acks"]])]
    # requests
    def req_rows(reqs: list[dict[str, Any]], erasure: bool) -> list[list[str]]:
        rows = []
        for r in reqs:
            status_cls = "ok" if r["status"] in ("served", "already_erased", "not_found") else (
                "warn" if r["status"] in ("queued", "in_progress") else "bad")
            row = [_td(r["request_id"], "mono"), _td(r["identifier_type"]),
                   _td((r["identifier_hash"] or "")[:16] + "…", "mono"), _td(r["requested_by"]), _td(r["reason"]),
                   _td(_ts(r["requested_at"])), _td(_ts(r["served_at"])), _td(r["status"], status_cls),
                   _td(", ".join(r.get("person_ids") or []), "mono"), _td(_details_summary(r.get("details"), r["kind"]))]
            if erasure and r["status"] == "already_erased":
                row.append(_td("not sent again (the earlier request's)"))
            elif erasure:
                row.append(_td(_ts(r["notice_published_at"]) or "pending", "" if r["notice_published_at"] else "warn"))
            rows.append(row)
        return rows

    rhead = ["request", "identifier type", "identifier (keyed hash)", "requested by", "why", "requested at", "served at",
             "status", "persons", "what"]
    out += ['<h2 id="erasures">Erasure requests</h2>',
            '<p class="note">Each erasure removed the person from the warehouse, the published snapshot, dead '
            "letters and the files under OMNIVUE_HOME, rewrote the database files, then scanned every file and table "
            "for their values (\"verified\"); its identifiers stay on the suppression list so their records are "
            "dropped at ingest; a notice went to the erasure topic.</p>",
            _table(rhead + ["erasure notice"], req_rows(erasures, True), "erasure-requests"),
            '<h2 id="access">Access requests</h2>',
            _table(rhead, req_rows(accesses, False), "access-requests")]
    # conflicts
    out += ['<h2 id="conflicts">Consent conflicts between identifiers</h2>',
            '<p class="note">Persons whose consent events for a purpose and scope came from different identifiers and '
            "disagreed; the latest event (event time) won (consent_conflicts).</p>",
            _table(["person", "purpose", "scope", "#", "consent event", "status", "at", "source", "identifier types",
                    "winner", "overruled"],
                   [[_td(c["person_id"], "mono"), _td(c["purpose"]), _td(c["scope"]), _td(c["sequence_number"], "num"),
                     _td(c["consent_event_id"], "mono"), _td(c["status"]), _td(_ts(c["occurred_at"])), _td(c["source"]),
                     _td(c["source_identifier_types"]), _td("won" if c["is_winner"] else "", "ok" if c["is_winner"] else ""),
                     _td("yes" if c["lost_to_winner"] else "")] for c in data["conflicts"]], "conflicts-table")]
    out += ["</body></html>"]
    return "\n".join(out)


def default_report_path(settings: Settings) -> Path:
    return settings.home / "reports" / f"audit-report-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.html"


def write_report(settings: Settings, out: Path | None = None) -> tuple[Path, dict[str, Any]]:
    data = collect(settings)
    path = out or default_report_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render(data), encoding="utf-8")
    tmp.replace(path)
    return path, data
