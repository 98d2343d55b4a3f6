"""Alerts on the ``alerts`` topic: one JSON object per alert with its type,
time, evidence and who should act (DESIGN.md).

Consent violations found by ``consent_audit`` are alerted once each: the
alerted event ids are kept in ``consent_alerts`` in the warehouse, so a
violation never disappears from the audit but only alerts when it is new.

A violation nobody acknowledged (``omnivue audit ack``, table
``violation_acks``) is reminded (type ``consent_violation_reminder``) when
its last alert is older than ``OMNIVUE_ALERT_REMINDER_HOURS`` (default 24;
0 turns reminders off). Acknowledging it stops the reminders; it stays in
consent_audit, consent_alerts and the audit report.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timedelta, timezone
from typing import Any

from .config import Settings
from .envelope import ALERTS_TOPIC
from .kafka_io import make_producer
from .warehouse import session, table_exists

log = logging.getLogger(__name__)

ALERTS_DDL = """
create table if not exists consent_alerts (
    event_id varchar primary key,
    person_id varchar,
    run_id varchar not null,
    alerted_at timestamptz not null,
    alert json not null
)
"""

_EVIDENCE_COLUMNS = ("a.event_id, a.person_id, a.event_type, a.occurred_at, a.scope, a.purpose, a.consent_status, "
                     "a.consent_event_id, a.consent_valid_from, a.violation_reason, a.source, a.campaign_id")


def reminder_interval() -> timedelta | None:
    """OMNIVUE_ALERT_REMINDER_HOURS (default 24); None when reminders are off."""
    try:
        hours = float(os.environ.get("OMNIVUE_ALERT_REMINDER_HOURS", "24"))
    except ValueError:
        hours = 24.0
    return timedelta(hours=hours) if hours > 0 else None


def consent_alert(row: dict[str, Any], now: datetime, reminder: bool = False) -> dict[str, Any]:
    return {
        "type": "consent_violation_reminder" if reminder else "consent_violation",
        "time": now.isoformat(),
        "severity": "warning",
        "summary": ("REMINDER (not acknowledged yet): " if reminder else "")
                   + f"{row['event_type']} to person {row['person_id']} at {row['occurred_at']} without marketing "
                   f"consent for scope {row['scope']} ({row['violation_reason']})",
        "evidence": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()},
        "owner": "compliance",
        "action": "review the send and its campaign; acknowledge it once handled: "
                  f"omnivue audit ack {row['event_id']} --by NAME --why TEXT",
    }


def _fetch(con, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def raise_consent_alerts(settings: Settings, run_id: str) -> int:
    """Publish an alert for every consent violation not alerted (nor acknowledged) before,
    and a reminder for every unacknowledged one whose last alert is older than the reminder
    interval. Returns the number of new-violation alerts."""
    from .compliance.store import ensure_compliance_tables

    now = datetime.now(timezone.utc)
    interval = reminder_interval()
    with session(settings.warehouse) as con:
        con.execute(ALERTS_DDL)
        ensure_compliance_tables(con)
        if not table_exists(con, "consent_audit"):
            return 0
        new = _fetch(con, f"select {_EVIDENCE_COLUMNS} from consent_audit a "
                          "left join consent_alerts s on s.event_id = a.event_id "
                          "where not a.consent_ok and s.event_id is null "
                          "and not exists (select 1 from violation_acks k where lower(k.event_id) = a.event_id) "
                          "order by a.occurred_at")
        due: list[dict[str, Any]] = []
        if interval is not None:
            due = _fetch(con, f"select {_EVIDENCE_COLUMNS} from consent_audit a "
                              "inner join consent_alerts s on s.event_id = a.event_id "
                              "where not a.consent_ok "
                              "and not exists (select 1 from violation_acks k where lower(k.event_id) = a.event_id) "
                              "and greatest(s.alerted_at, coalesce((select max(r.reminded_at) from "
                              "consent_alert_reminders r where r.event_id = a.event_id), s.alerted_at)) <= ? "
                              "order by a.occurred_at", [now - interval])
    if not new and not due:
        return 0
    alerts = [(r, consent_alert(r, now)) for r in new] + [(r, consent_alert(r, now, reminder=True)) for r in due]
    producer = make_producer(settings)
    try:
        for row, alert in alerts:
            producer.send(ALERTS_TOPIC, key=(row["person_id"] or "").encode(), value=json.dumps(alert).encode())
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    with session(settings.warehouse) as con:
        if new:
            con.executemany("insert or ignore into consent_alerts values (?, ?, ?, ?, ?)",
                            [(r["event_id"], r["person_id"], run_id, now, json.dumps(a)) for r, a in alerts[:len(new)]])
        if due:
            con.executemany("insert into consent_alert_reminders values (?, ?, ?)",
                            [(r["event_id"], run_id, now) for r in due])
    if new:
        log.warning("raised %d consent-violation alerts on topic %r", len(new), ALERTS_TOPIC)
    if due:
        log.warning("reminded %d unacknowledged consent violations on topic %r", len(due), ALERTS_TOPIC)
    return len(new)


def violation_counts(settings: Settings) -> dict[str, int]:
    """Violations in consent_audit: total, acknowledged, open (for the run summary)."""
    with session(settings.warehouse, read_only=True) as con:
        if not table_exists(con, "consent_audit"):
            return {"total": 0, "acknowledged": 0, "open": 0}
        acks = table_exists(con, "violation_acks")
        total, acked = con.execute(
            "select count(*), count(*) filter (where " + (
                "exists (select 1 from violation_acks k where lower(k.event_id) = a.event_id)" if acks else "false")
            + ") from consent_audit a where not a.consent_ok").fetchone()
    return {"total": total, "acknowledged": acked, "open": total - acked}
