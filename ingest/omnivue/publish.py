"""Publish: copy the verified marts into the analysts' snapshot,
``$OMNIVUE_HOME/published/customer_view.duckdb``, replaced atomically.

Analysts open the snapshot read-only while the next run builds; a reader that
has the old file open keeps reading it (the new one is renamed over it).
Identifier values are replaced by keyed hashes (``OMNIVUE_PSEUDONYM_KEY``):
the snapshot holds no clear-text email, phone, handle or device id.

Write, audit, publish - also for the snapshot itself: the new snapshot is
built into a temp file, the contracts of ``contracts/published/`` are
verified against THAT file (no clear-text personal data in any column of any
table, nobody erased), every result goes to ``contract_results``, and only
when no blocking check failed is the file renamed into place. Otherwise the
temp file is deleted, :class:`SnapshotRejected` is raised and the previous
snapshot stays.

Publishing and erasure take the publish lock (``published/.publish.lock``)
for their whole work, publish before the warehouse: a snapshot built before
an erasure can never be renamed in after it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .config import Settings
from .dbt_results import CONTRACT_PREFIX
from .warehouse import session, table_exists

log = logging.getLogger(__name__)

#: Marts copied as they are (they hold person ids, never identifier values).
PUBLISHED_TABLES = ("customer_360", "fct_interactions", "consent_audit", "marketing_audience",
                    "channel_engagement", "contract_results", "consent_conflicts", "ereputation_daily")


#: The contract_results rows of a verification of the warehouse's contracts (`omnivue verify`, the
#: DAG's verify_contracts): not the snapshot's checks (published_snapshot/...) nor the dbt tests
#: recorded during a build (dbt/..., dbt_results.CONTRACT_PREFIX).
DBT_TEST_ROWS = f"contract like '{CONTRACT_PREFIX}%'"
VERIFICATION_ROWS = f"contract not like 'published_snapshot/%' and not ({DBT_TEST_ROWS})"


class SnapshotRejected(RuntimeError):
    """The candidate snapshot failed a blocking check: it was not published."""

    def __init__(self, report) -> None:  # a contract_checks.VerificationReport
        super().__init__("the new snapshot failed its blocking checks; the previous snapshot is unchanged:\n"
                         + report.render())
        self.report = report


@contextmanager
def publish_lock(settings: Settings, wait_s: float = 900.0) -> Iterator[None]:
    """Exclusive lock between publishing and erasure (one process at a time)."""
    settings.published_dir.mkdir(parents=True, exist_ok=True)
    path = settings.published_dir / ".publish.lock"
    with open(path, "a+") as f:
        deadline = time.monotonic() + wait_s
        warned = False
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path} stayed locked for {wait_s:.0f}s (a publish or an erasure is running)")
                if not warned:
                    log.info("waiting for the publish lock (a publish or an erasure is running)")
                    warned = True
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def build_snapshot(settings: Settings, tmp: Path) -> list[str]:
    """Write the snapshot's tables into ``tmp``; return their names."""
    tmp.unlink(missing_ok=True)
    # read-write like dbt: in the Airflow process dbt keeps a handle with that configuration
    with session(settings.warehouse) as con:
        con.execute("attach '" + str(tmp).replace("'", "''") + "' as snap (read_only false)")
        copied = []
        try:
            for name in PUBLISHED_TABLES:
                if table_exists(con, name):
                    con.execute(f"create table snap.main.{name} as select * from main.{name}")
                    copied.append(name)
            if table_exists(con, "identity_map"):
                # identifier values become keyed hashes: analysts can join and count, not read them
                con.execute(
                    "create table snap.main.identity_map as select identifier_type, "
                    "sha256(? || ':' || identifier_type || ':' || identifier_value) as identifier_hash, "
                    "* exclude (identifier_type, identifier_value, identifier_hash) from main.identity_map",
                    [settings.pseudonym_key])
                copied.append("identity_map")
            if table_exists(con, "dead_letter"):
                con.execute("create table snap.main.dead_letter_summary as select split_part(reason, ':', 1) "
                            "as reason_code, topic, count(*) as records, min(received_at) as first_received_at, "
                            "max(received_at) as last_received_at from main.dead_letter group by all")
                copied.append("dead_letter_summary")
        finally:
            con.execute("detach snap")
    return copied


def _verified_run_id(settings: Settings) -> str | None:
    """The run whose contract verification this publish follows (the latest one recorded)."""
    with session(settings.warehouse, read_only=True) as con:
        if not table_exists(con, "contract_results"):
            return None
        row = con.execute(f"select run_id from contract_results where {VERIFICATION_ROWS} "
                          "order by checked_at desc limit 1").fetchone()
    return row[0] if row else None


def build_after_latest_verification(settings: Settings) -> tuple[str, str] | None:
    """(when the latest dbt build began, when the latest contract verification began) if the build
    began after it: marts no contract has checked (a run stopped between its dbt build and the end
    of its verification); None otherwise or when nothing says (dbt_project/macros/pipeline/)."""
    with session(settings.warehouse, read_only=True) as con:
        if not (table_exists(con, "dbt_build_started") and table_exists(con, "contract_results")):
            return None
        row = con.execute(
            "select b.started_at, v.checked_at from (select max(started_at) as started_at from dbt_build_started) b, "
            f"(select max(checked_at) as checked_at from contract_results where {VERIFICATION_ROWS}) v "
            "where b.started_at >= v.checked_at").fetchone()
    return (f"{row[0]:%Y-%m-%d %H:%M:%S %Z}", f"{row[1]:%Y-%m-%d %H:%M:%S %Z}") if row else None


def blocking_failures_of_latest_verification(settings: Settings) -> tuple[str | None, list[str]]:
    """The latest contract verification's run id and its failed blocking checks (``contract / check``),
    with the blocking dbt tests that failed since (a build after it that stopped on a test);
    (None, []) when no verification was recorded yet."""
    run_id = _verified_run_id(settings)
    if run_id is None:
        return None, []
    with session(settings.warehouse, read_only=True) as con:
        rows = con.execute(
            'select contract, "check" from contract_results where blocking and outcome in (\'failed\', \'error\') '
            f"and ((run_id = ? and {VERIFICATION_ROWS}) "
            f"     or ({DBT_TEST_ROWS} and checked_at >= (select max(checked_at) from contract_results "
            f"                                            where run_id = ? and {VERIFICATION_ROWS}))) "
            "order by 1, 2", [run_id, run_id]).fetchall()
    return run_id, [f"{c} / {k}" for c, k in rows]


def publish_snapshot(settings: Settings, run_id: str | None = None) -> Path:
    """Build, verify (contracts/published/), then atomically replace the snapshot.

    ``run_id`` labels the snapshot checks in contract_results (default: the
    run of the latest contract verification, i.e. the one that allowed this
    publish); raises :class:`SnapshotRejected` when a blocking check fails."""
    from .compliance.snapshot_check import verify_snapshot

    target = settings.published
    target.parent.mkdir(parents=True, exist_ok=True)
    run_id = run_id or _verified_run_id(settings) or f"publish__{time.strftime('%Y%m%dT%H%M%S')}_{uuid.uuid4().hex[:6]}"
    with publish_lock(settings):
        for stale in target.parent.glob(f".{target.name}.*.tmp*"):
            stale.unlink(missing_ok=True)  # a killed publish's or erasure's unverified copy (nobody else works here)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            copied = build_snapshot(settings, tmp)
            report = verify_snapshot(settings, tmp, run_id)
            if not report.ok:
                log.error("snapshot not published: %s", report.render())
                raise SnapshotRejected(report)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}.wal").unlink(missing_ok=True)
    log.info("published %s (%s); %d snapshot checks passed", target, ", ".join(copied), len(report.results))
    return target
