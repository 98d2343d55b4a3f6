"""Alerts on the ``alerts`` topic: one JSON object per alert with its type,
time, evidence and who should act (DESIGN.md).

Consent violations found by ``consent_audit`` are alerted once each: the
alerted event ids are kept in ``consent_alerts`` in the warehouse, so a
violation never disappears from the audit but only alerts when it is new.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
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


def consent_alert(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "type": "consent_violation",
        "time": now.isoformat(),
        "severity": "warning",
        "summary": f"{row['event_type']} to person {row['person_id']} at {row['occurred_at']} without marketing "
                   f"consent for scope {row['scope']} ({row['violation_reason']})",
        "evidence": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()},
        "owner": "compliance",
        "action": "review the send and its campaign; acknowledge it once handled",
    }


def raise_consent_alerts(settings: Settings, run_id: str) -> int:
    """Publish an alert for every consent violation not alerted before."""
    with session(settings.warehouse) as con:
        con.execute(ALERTS_DDL)
        if not table_exists(con, "consent_audit"):
            return 0
        cur = con.execute(
            "select a.event_id, a.person_id, a.event_type, a.occurred_at, a.scope, a.purpose, a.consent_status, "
            "a.consent_event_id, a.consent_valid_from, a.violation_reason, a.source, a.campaign_id "
            "from consent_audit a left join consent_alerts s on s.event_id = a.event_id "
            "where not a.consent_ok and s.event_id is null order by a.occurred_at")
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    if not rows:
        return 0
    now = datetime.now(timezone.utc)
    alerts = [consent_alert(r, now) for r in rows]
    producer = make_producer(settings)
    try:
        for row, alert in zip(rows, alerts):
            producer.send(ALERTS_TOPIC, key=(row["person_id"] or "").encode(), value=json.dumps(alert).encode())
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    with session(settings.warehouse) as con:
        con.executemany("insert or ignore into consent_alerts values (?, ?, ?, ?, ?)",
                        [(r["event_id"], r["person_id"], run_id, now, json.dumps(a)) for r, a in zip(rows, alerts)])
    log.warning("raised %d consent-violation alerts on topic %r", len(alerts), ALERTS_TOPIC)
    return len(alerts)
