"""Subject requests: serve an access request now, queue requests for the
``subject_requests`` DAG, serve the queue, retry pending erasure notices.

A queued request holds the keyed hash of the identifier only (never its
value): serving resolves the hash against the identifiers the warehouse
holds. Queuing an erasure suppresses the identifier at once, so ingest stops
landing the person's records before the erasure itself runs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..config import Settings
from ..warehouse import session
from .erasure import erase_subject, erasure_notice, new_request_id, publish_notice, record_request
from .store import ComplianceError, ensure_compliance_tables, fetch_dicts
from .matching import Identifier
from .subject import Seed, access_document, document_summary, is_placeholder, resolve_subject
from .suppression import add_suppressions, erased_by

log = logging.getLogger(__name__)

#: Statuses a request is (re)served from.
PENDING = ("queued", "in_progress", "failed")


def _require_warehouse(settings: Settings) -> None:
    if not settings.warehouse.exists():
        raise ComplianceError(f"{settings.warehouse} does not exist yet: nothing is held (run `omnivue run` first)")


def default_export_path(settings: Settings, request_id: str) -> Path:
    return settings.home / "exports" / f"{request_id}.json"


def export_subject(settings: Settings, seeds: list[Seed], out: Path | None = None, requested_by: str | None = None,
                   reason: str | None = None, request_id: str | None = None) -> tuple[str, dict[str, Any]]:
    """Right of access: everything held on the person, written to ``out`` (when given) and recorded."""
    _require_warehouse(settings)
    request_id = request_id or new_request_id("access")
    now = datetime.now(timezone.utc)
    with session(settings.warehouse) as con:
        ensure_compliance_tables(con)
        subject = resolve_subject(con, settings.pseudonym_key, seeds)
        doc = access_document(con, settings.pseudonym_key, subject, request_id, now)
        summary = document_summary(doc) | {"output": str(out) if out else "stdout"}
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.tmp")
            tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str))
            tmp.chmod(0o600)
            tmp.replace(out)
        record_request(con, request_id, "access", seeds[0], requested_by, reason,
                       "served" if subject.found else "not_found", now, person_ids=subject.person_ids,
                       details=summary, output_path=str(out) if out else None, served=True)
    log.info("access request %s served: %s", request_id, summary["sections"])
    return request_id, doc


def queue_request(settings: Settings, kind: str, seed: Seed, requested_by: str | None = None,
                  reason: str | None = None, out: Path | None = None) -> str:
    """Queue an access or erasure request for the subject_requests DAG (hash only)."""
    if kind not in ("access", "erasure"):
        raise ValueError(kind)
    if seed.value is not None and is_placeholder(Identifier(seed.type, seed.value)):
        # refused now, not when served: queuing an erasure suppresses the hash at once, and a suppressed
        # placeholder would drop every later record of everybody who carries it
        raise ComplianceError(f"the {seed.type} given is a placeholder value (dbt vars identity_blocklist / "
                              "identity_blocklist_patterns) shared by unrelated people: refusing to queue it")
    request_id = new_request_id(kind)
    now = datetime.now(timezone.utc)
    with session(settings.warehouse) as con:
        ensure_compliance_tables(con)
        con.begin()
        record_request(con, request_id, kind, Seed(seed.type, seed.hash), requested_by, reason, "queued", now,
                       output_path=str(out) if out else None)
        if kind == "erasure":  # stop landing the person's records now, before the erasure runs
            add_suppressions(con, [(seed.type, seed.hash)], request_id, "erasure", now)
        con.commit()
    log.info("queued %s request %s", kind, request_id)
    return request_id


@dataclass
class Served:
    request_id: str
    kind: str
    status: str
    summary: str

    def as_dict(self) -> dict[str, str]:
        return {"request_id": self.request_id, "kind": self.kind, "status": self.status}


def pending_requests(settings: Settings, kind: str | None = None) -> list[dict[str, Any]]:
    if not settings.warehouse.exists():
        return []
    with session(settings.warehouse) as con:
        ensure_compliance_tables(con)
        return fetch_dicts(con, "select * from subject_requests where list_contains(?::varchar[], status) "
                                "and (? is null or kind = ?) order by requested_at, request_id",
                           [list(PENDING), kind, kind])


def _set_status(settings: Settings, request_id: str, status: str, error: str | None) -> None:
    with session(settings.warehouse) as con:
        con.execute("update subject_requests set status = ?, error = ? where request_id = ?",
                    [status, error, request_id])


def _lift_suppression(settings: Settings, request_id: str) -> None:
    """A refused erasure suppresses nothing: drop what queuing it suppressed (unless a served erasure holds it too:
    the row then points at that erasure)."""
    lifted = 0
    with session(settings.warehouse) as con:
        for (h,) in con.execute("select identifier_hash from suppressed_identifiers where request_id = ?",
                                [request_id]).fetchall():
            held = erased_by(con, h)
            if held:
                con.execute("update suppressed_identifiers set request_id = ? where identifier_hash = ? "
                            "and request_id = ?", [held["request_id"], h, request_id])
            else:
                con.execute("delete from suppressed_identifiers where identifier_hash = ? and request_id = ?",
                            [h, request_id])
                lifted += 1
    if lifted:
        log.warning("erasure request %s refused: its %d suppressed identifier(s) are no longer suppressed",
                    request_id, lifted)


def serve_queue(settings: Settings, kind: str | None = None) -> list[Served]:
    """Serve every pending request (erasures first, then access), oldest first.

    A request that cannot be served as asked (ComplianceError: a placeholder
    identifier, a suspicious merge) is marked ``refused`` and not retried;
    any other failure is marked ``failed``, retried next time, and re-raised
    after the rest of the queue was served."""
    served: list[Served] = []
    failures: list[Exception] = []
    order = ("erasure", "access") if kind is None else (kind,)
    for k in order:
        for req in pending_requests(settings, k):
            seed = Seed(req["identifier_type"], req["identifier_hash"])
            rid = req["request_id"]
            try:
                if k == "erasure":
                    result = erase_subject(settings, [seed], requested_by=req.get("requested_by"),
                                           reason=req.get("reason"), request_id=rid)
                    served.append(Served(rid, k, result.status, result.render()))
                else:
                    out = Path(req["output_path"]) if req.get("output_path") else default_export_path(settings, rid)
                    _, doc = export_subject(settings, [seed], out=out, requested_by=req.get("requested_by"),
                                            reason=req.get("reason"), request_id=rid)
                    served.append(Served(rid, k, "served" if doc["identifiers"] else "not_found",
                                         f"request {rid}: access export written to {out}"))
            except ComplianceError as exc:
                _set_status(settings, rid, "refused", str(exc))
                if k == "erasure":
                    _lift_suppression(settings, rid)
                served.append(Served(rid, k, "refused", f"request {rid}: refused: {exc}"))
            except Exception as exc:  # retried next time
                log.exception("request %s failed", rid)
                _set_status(settings, rid, "failed", f"{type(exc).__name__}: {exc}"[:1000])
                served.append(Served(rid, k, "failed", f"request {rid}: FAILED: {exc}"))
                failures.append(exc)
    served_notices = publish_pending_notices(settings)
    if served_notices:
        log.info("published %d pending erasure notices", served_notices)
    if failures:
        raise RuntimeError(f"{len(failures)} subject requests failed (they stay queued): {failures[0]}")
    return served


def publish_pending_notices(settings: Settings) -> int:
    """Publish the erasure notices that could not be sent when their erasure ran."""
    if not settings.warehouse.exists():
        return 0
    with session(settings.warehouse) as con:
        ensure_compliance_tables(con)
        rows = fetch_dicts(con, "select request_id, served_at, person_ids, details from subject_requests "
                                "where kind = 'erasure' and status in ('served', 'served_with_residue') "
                                "and notice_published_at is null order by served_at")
    sent = 0
    for row in rows:
        details = row.get("details") or {}
        hashes = [(i["type"], i["hash"]) for i in details.get("identifiers", [])]
        served_at = datetime.fromisoformat(row["served_at"]) if row.get("served_at") else datetime.now(timezone.utc)
        try:
            publish_notice(settings, erasure_notice(row["request_id"], hashes, row.get("person_ids") or [], served_at))
        except Exception as exc:
            log.warning("erasure notice %s still pending: %s", row["request_id"], exc)
            continue
        with session(settings.warehouse) as con:
            con.execute("update subject_requests set notice_published_at = ? where request_id = ?",
                        [datetime.now(timezone.utc), row["request_id"]])
        sent += 1
    return sent


def list_requests(settings: Settings) -> list[dict[str, Any]]:
    if not settings.warehouse.exists():
        return []
    with session(settings.warehouse, read_only=True) as con:
        from .store import table_exists

        if not table_exists(con, "subject_requests"):
            return []
        return fetch_dicts(con, "select request_id, kind, identifier_type, identifier_hash, requested_by, "
                                "requested_at, status, served_at, notice_published_at, error "
                                "from subject_requests order by requested_at")
