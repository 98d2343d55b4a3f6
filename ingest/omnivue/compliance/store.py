"""The compliance tables in the warehouse: their DDL in one place.

- ``subject_requests``: every access and erasure request, queued or served:
  the keyed hash of the identifier (never the value), who asked, when, what
  was exported or erased where, and when the erasure notice went out. It is
  the proof compliance shows; erasure never deletes from it.
- ``suppressed_identifiers``: keyed hashes of the identifiers of erased
  persons. Ingest drops records carrying one of them (``suppression``);
  marketing_audience must hold nobody with one of them (contract).
- ``violation_acks``: who acknowledged which consent violation, why and when
  (append-only; the violation itself stays in consent_audit).
- ``consent_alert_reminders``: reminders sent on the alerts topic for
  violations nobody acknowledged yet.

Every writer calls :func:`ensure_compliance_tables` first (idempotent).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb

COMPLIANCE_DDL = """
create table if not exists subject_requests (
    request_id varchar primary key,
    kind varchar not null,
    identifier_type varchar not null,
    identifier_hash varchar not null,
    requested_by varchar,
    reason varchar,
    requested_at timestamptz not null,
    status varchar not null,
    served_at timestamptz,
    person_ids json,
    details json,
    output_path varchar,
    notice_published_at timestamptz,
    error varchar
);
create table if not exists suppressed_identifiers (
    identifier_type varchar not null,
    identifier_hash varchar not null,
    request_id varchar,
    reason varchar not null,
    suppressed_at timestamptz not null,
    suppressed_records bigint not null default 0,
    last_suppressed_at timestamptz,
    primary key (identifier_type, identifier_hash)
);
create table if not exists violation_acks (
    ack_id varchar primary key,
    event_id varchar not null,
    person_id varchar,
    acknowledged_by varchar not null,
    reason varchar not null,
    acknowledged_at timestamptz not null
);
create table if not exists consent_alert_reminders (
    event_id varchar not null,
    run_id varchar,
    reminded_at timestamptz not null
);
"""

#: Tables that are the audit trail: erasure never deletes their rows (it
#: redacts a clear identifier value if one was ever written into their text).
AUDIT_TABLES = frozenset({"subject_requests", "suppressed_identifiers", "violation_acks",
                          "consent_alert_reminders", "consent_alerts", "contract_results"})


class ComplianceError(Exception):
    """A problem the user can fix (unknown event, bad request): one line, exit 1."""


def ensure_compliance_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(COMPLIANCE_DDL)


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute("select count(*) from duckdb_tables() where database_name = current_database() "
                      "and schema_name = 'main' and table_name = ?", [name]).fetchone()
    if row and row[0]:
        return True
    row = con.execute("select count(*) from duckdb_views() where database_name = current_database() "
                      "and schema_name = 'main' and view_name = ?", [name]).fetchone()
    return bool(row and row[0])


def jsonable(value: Any) -> Any:
    """A DuckDB value as plain JSON (timestamps as RFC 3339)."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def fetch_dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    out = []
    for row in cur.fetchall():
        rec = {}
        for c, v in zip(cols, row):
            if isinstance(v, str) and c in ("properties", "details", "person_ids", "alert", "diagnostics"):
                try:
                    v = json.loads(v)
                except ValueError:
                    pass
            rec[c] = jsonable(v)
        out.append(rec)
    return out
