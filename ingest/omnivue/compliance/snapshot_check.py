"""Soda verification of a snapshot file before it is published: no clear-text
personal data, nobody erased (``contracts/published/*.yml``).

Each contract there is a template verified once per table of the snapshot
(Soda variable ``table``) against a data source pointing at the candidate
file. The identity values it compares with are handed over as salted hashes
in a temporary Parquet file (random salt, deleted afterwards); the suppressed
keyed hashes likewise. Every result goes to ``contract_results`` like the
warehouse contracts' (contract ``published_snapshot/<name>``).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from ..config import Settings, contracts_dir
from ..contract_checks import CheckResult, VerificationReport, data_source_yaml, record_results, verify_contract
from ..warehouse import session
from .store import table_exists

os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")  # before soda_core is imported

log = logging.getLogger(__name__)

DATA_SOURCE = "snapshot"

#: Columns whose values are codes a producer sets (the system that saw the event, the campaign,
#: the platform, language and currency), not personal data. The identity-value and handle checks
#: skip them, and every column that is not text: a count of 12345 or a SendGrid campaign 12345 is
#: not customer 12345, and a campaign "promo:summer" is no social handle (one such cell blocked
#: every publish). Emails and phone numbers are still looked for in them.
CODE_COLUMNS = frozenset({"source", "campaign_id", "platform", "lang", "currency"})


def snapshot_contracts() -> list[Path]:
    return sorted((contracts_dir() / "published").glob("*.yml"))


def _write_reference_files(settings: Settings, workdir: Path, salt: str) -> tuple[Path, Path]:
    """Salted hashes of every identifier value (and node key) the warehouse knows; suppressed keyed hashes."""
    values, suppressed = workdir / "values.parquet", workdir / "suppressed.parquet"
    v_sql, s_sql = (str(p).replace("'", "''") for p in (values, suppressed))
    with session(settings.warehouse, read_only=True) as con:
        sources = []
        if table_exists(con, "identity_map"):
            sources += ["select identifier_value as v from identity_map",
                        "select identifier_type || ':' || identifier_value as v from identity_map"]
        union = " union ".join(sources) if sources else "select null::varchar as v where false"
        con.execute(f"copy (select distinct sha256(? || lower(trim(v))) as h from ({union}) where length(v) >= 4) "
                    f"to '{v_sql}' (format parquet)", [salt])
        if table_exists(con, "suppressed_identifiers"):
            con.execute(f"copy (select identifier_hash from suppressed_identifiers) to '{s_sql}' (format parquet)")
        else:
            con.execute(f"copy (select null::varchar as identifier_hash where false) to '{s_sql}' (format parquet)")
    return values, suppressed


def _text_filter(columns: list[str]) -> str:
    """The contract's column filter (a DuckDB lambda body on ``c``): these columns, or none but the
    contract's all-NULL placeholder column."""
    names = [*columns, "omnivue_no_column"]
    return "list_contains([" + ", ".join("'" + n.replace("'", "''") + "'" for n in names) + "], c)"


def verify_snapshot(settings: Settings, candidate: Path, run_id: str) -> VerificationReport:
    """Verify every published-snapshot contract against every table of ``candidate``."""
    import duckdb

    checked_at = datetime.now(timezone.utc)
    con = duckdb.connect(str(candidate), read_only=True)
    try:
        tables = [t for (t,) in con.execute("select table_name from duckdb_tables() where schema_name = 'main' "
                                            "order by table_name").fetchall()]
        text_columns = {t: [c for (c,) in con.execute(
            "select column_name from duckdb_columns() where schema_name = 'main' and table_name = ? "
            "and data_type = 'VARCHAR' order by column_index", [t]).fetchall() if c not in CODE_COLUMNS]
            for t in tables}
    finally:
        con.close()
    ds = data_source_yaml(candidate, DATA_SOURCE, read_only=True)
    salt = secrets.token_hex(16)
    workdir = Path(tempfile.mkdtemp(prefix=".snapshot-check-", dir=settings.published_dir))
    results: list[CheckResult] = []
    try:
        os.chmod(workdir, 0o700)
        values, suppressed = _write_reference_files(settings, workdir, salt)
        for path in snapshot_contracts():
            name = f"published_snapshot/{path.stem}"
            for table in tables:
                variables = {"table": table, "salt": salt, "values_file": str(values),
                             "suppressed_file": str(suppressed), "text_filter": _text_filter(text_columns[table])}
                results.extend(verify_contract(path, ds, name, variables, table=table, dataset=f"snapshot/{table}",
                                               redact=lambda text: text.replace(salt, "<salt>")))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if not snapshot_contracts():
        results.append(CheckResult("published_snapshot", "snapshot", "contract", None, None, "error", None, True,
                                   message=f"no contract in {contracts_dir() / 'published'}"))
    record_results(settings, run_id, checked_at, results)
    report = VerificationReport(run_id, checked_at, results)
    log.info("snapshot %s verified (%d tables): %s", candidate.name, len(tables), dict(report.counts))
    return report
