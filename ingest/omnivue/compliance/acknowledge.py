"""``omnivue audit ack EVENT_ID --by NAME --why TEXT``: compliance acknowledges
a consent violation.

The acknowledgement (who, why, when) is appended to ``violation_acks``. The
violation itself never disappears: it stays in consent_audit, in
consent_alerts and in the audit report (listed as acknowledged); it only
stops being reminded on the alerts topic and counted by the
'violations nobody acknowledged' warning.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from ..config import Settings
from ..warehouse import session
from .store import ComplianceError, ensure_compliance_tables, table_exists


@dataclass
class Ack:
    event_id: str
    person_id: str | None
    acknowledged_by: str
    reason: str
    acknowledged_at: datetime
    new: bool  # False: it had been acknowledged before (kept as it was)


def acknowledge(settings: Settings, event_ids: list[str], by: str, why: str) -> list[Ack]:
    """Acknowledge consent violations; every event id must be a known violation."""
    by, why = (by or "").strip(), (why or "").strip()
    if not by:
        raise ComplianceError("--by must name who acknowledges (it is recorded)")
    if not why:
        raise ComplianceError("--why must say why (it is recorded)")
    ids = [e.strip().lower() for e in event_ids if e.strip()]
    if not ids:
        raise ComplianceError("give at least one EVENT_ID")
    now = datetime.now(timezone.utc)
    out: list[Ack] = []
    if not settings.warehouse.exists():
        raise ComplianceError(f"{settings.warehouse} does not exist yet: run `omnivue run` first")
    with session(settings.warehouse) as con:
        ensure_compliance_tables(con)
        known: dict[str, str | None] = {}
        if table_exists(con, "consent_audit"):
            known |= dict(con.execute("select event_id, person_id from consent_audit where not consent_ok "
                                      "and list_contains(?::varchar[], event_id)", [ids]).fetchall())
        if table_exists(con, "consent_alerts"):  # alerted once, maybe no longer in the mart (a later rebuild)
            for e, p in con.execute("select event_id, person_id from consent_alerts "
                                    "where list_contains(?::varchar[], lower(event_id))", [ids]).fetchall():
                known.setdefault(e.lower(), p)
        unknown = [e for e in ids if e not in known]
        if unknown:
            raise ComplianceError(f"not a known consent violation (consent_audit / consent_alerts): {', '.join(unknown)}")
        con.begin()
        for event_id in ids:
            prior = con.execute("select acknowledged_by, reason, acknowledged_at from violation_acks "
                                "where lower(event_id) = ? order by acknowledged_at limit 1", [event_id]).fetchone()
            if prior:
                out.append(Ack(event_id, known[event_id], prior[0], prior[1], prior[2], new=False))
                continue
            con.execute("insert into violation_acks values (?, ?, ?, ?, ?, ?)",
                        [f"ack_{uuid.uuid4().hex[:12]}", event_id, known[event_id], by, why, now])
            out.append(Ack(event_id, known[event_id], by, why, now, new=True))
        con.commit()
    return out
