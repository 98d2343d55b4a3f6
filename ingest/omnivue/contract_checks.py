"""Verify the Soda (v4) data contracts under ``contracts/`` against the
warehouse and keep every check's result in ``contract_results``.

A check is blocking unless its threshold has ``level: warn`` (Soda reports
WARN) or it carries ``attributes: {blocking: false}``. A contract that cannot
be evaluated (missing table, bad SQL) counts as a blocking failure: nothing is
published on a guess.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa

from .config import Settings, contracts_dir
from .warehouse import session, table_exists

os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")  # before soda_core is imported

log = logging.getLogger(__name__)

DATA_SOURCE = "warehouse"

RESULTS_DDL = """
create table if not exists contract_results (
    run_id varchar not null,
    contract varchar not null,
    dataset varchar not null,
    "check" varchar not null,
    check_type varchar,
    "column" varchar,
    outcome varchar not null,
    "value" double,
    blocking boolean not null,
    diagnostics json,
    message varchar,
    checked_at timestamptz not null
)
"""


@dataclass
class CheckResult:
    contract: str
    dataset: str
    check: str
    check_type: str | None
    column: str | None
    outcome: str  # passed / failed / warned / error
    value: float | None
    blocking: bool
    diagnostics: dict[str, Any] = field(default_factory=dict)
    message: str | None = None

    @property
    def blocks(self) -> bool:
        return self.blocking and self.outcome in ("failed", "error")


@dataclass
class VerificationReport:
    run_id: str
    checked_at: datetime
    results: list[CheckResult]

    @property
    def ok(self) -> bool:
        return not any(r.blocks for r in self.results)

    @property
    def counts(self) -> Counter:
        return Counter(r.outcome for r in self.results)

    def blocking_failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.blocks]

    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if r.outcome in ("warned",) or (r.outcome == "failed" and not r.blocking)]

    def render(self) -> str:
        c = self.counts
        lines = [f"contracts: {len(self.results)} checks in run {self.run_id}: "
                 + ", ".join(f"{k} {c[k]}" for k in ("passed", "warned", "failed", "error") if c[k])]
        for r in self.blocking_failures():
            lines.append(f"  BLOCKING {r.outcome}: {r.contract} / {r.check}"
                         + (f" (value {r.value:g})" if r.value is not None else "") + (f": {r.message}" if r.message else ""))
        for r in self.warnings():
            lines.append(f"  warning: {r.contract} / {r.check}" + (f" (value {r.value:g})" if r.value is not None else ""))
        lines.append("verdict: " + ("PASS: safe to publish" if self.ok else "FAIL: publish blocked"))
        return "\n".join(lines)


def contract_files(directory: Path | None = None) -> list[Path]:
    base = directory or contracts_dir()
    return sorted(p for p in base.glob("*.yml"))


def data_source_yaml(database: Path, name: str = DATA_SOURCE, read_only: bool = False) -> str:
    """Soda's data source for a DuckDB file. The warehouse is opened read-write: dbt (in process)
    keeps a read-write handle, and DuckDB wants the same configuration."""
    return (f"type: duckdb\nname: {name}\nconnection:\n  database: {json.dumps(str(database))}\n"
            f"  read_only: {'true' if read_only else 'false'}\n")



def _outcome(raw: str) -> str:
    return {"PASSED": "passed", "FAILED": "failed", "WARN": "warned"}.get(raw, "error")


def verify_contract(path: Path, data_source_yaml: str, name: str, variables: dict[str, str] | None = None,
                    table: str | None = None, dataset: str | None = None,
                    redact: Callable[[str], str] = lambda text: text) -> list[CheckResult]:
    """Run one Soda contract and turn every check into a CheckResult.

    ``table``: the contract is a template verified against that table (the published snapshot's
    contracts): checks are labelled with the table instead of a column, results carry ``dataset``
    and errors the table. Otherwise results carry the contract's dataset. ``redact`` is applied to
    error messages (e.g. to hide a salt passed in ``variables``)."""
    from soda_core.common.exceptions import SodaCoreException
    from soda_core.common.yaml import ContractYamlSource, DataSourceYamlSource
    from soda_core.contracts.contract_verification import ContractVerificationSession

    try:
        res = ContractVerificationSession.execute(
            contract_yaml_sources=[ContractYamlSource.from_file_path(str(path))],
            data_source_yaml_sources=[DataSourceYamlSource.from_str(data_source_yaml)],
            **({"variables": variables} if variables is not None else {}))
    except (SodaCoreException, ValueError, ImportError) as exc:
        return [CheckResult(name, table or name, "contract", None, None, "error", None, True,
                            message=redact(f"{type(exc).__name__}: {exc}"[:2000]))]
    out: list[CheckResult] = []
    for contract in res.contract_verification_results:
        result_dataset = dataset if table else (getattr(contract.contract, "dataset_name", name) or name)
        errors = contract.get_errors() if contract.has_errors else []
        for cr in contract.check_results:
            check = cr.check
            attrs = check.attributes or {}
            outcome = _outcome(cr.outcome.value if hasattr(cr.outcome, "value") else str(cr.outcome))
            value = cr.threshold_value
            if table:
                label, column = f"{table}: {check.name or check.type}", None
            else:
                label = (f"{check.column_name}: " if check.column_name else "") + (check.name or check.type)
                column = check.column_name
            out.append(CheckResult(
                contract=name, dataset=result_dataset, check=label, check_type=check.type, column=column,
                outcome=outcome, value=float(value) if isinstance(value, (int, float)) else None,
                blocking=bool(attrs.get("blocking", True)),
                diagnostics={k: v for k, v in (cr.diagnostic_metric_values or {}).items()
                             if isinstance(v, (int, float, str, bool)) or v is None},
                message=redact("; ".join(str(e) for e in errors)[:2000]) if outcome == "error" and errors else None,
            ))
        if errors and not contract.check_results:
            out.append(CheckResult(name, table or result_dataset, "contract", None, None, "error", None, True,
                                   message=redact("; ".join(str(e) for e in errors)[:2000])))
    return out


def missing_datasets(settings: Settings, directory: Path | None = None) -> list[str]:
    """The tables the contracts verify that the warehouse does not have (all of them when it does
    not exist): before the first run, nothing is there to verify."""
    wanted = []
    for path in contract_files(directory):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("dataset:"):
                wanted.append(line.split(":", 1)[1].strip().rsplit("/", 1)[-1])
    if not settings.warehouse.exists():
        return wanted
    with session(settings.warehouse, read_only=True) as con:
        return [name for name in wanted if not table_exists(con, name)]


def verify_all(settings: Settings, run_id: str | None = None, directory: Path | None = None) -> VerificationReport:
    """Verify every contract, then append every check's result to contract_results."""
    run_id = run_id or f"manual__{uuid.uuid4().hex[:12]}"
    checked_at = datetime.now(timezone.utc)
    results: list[CheckResult] = []
    files = contract_files(directory)
    if not files:
        raise FileNotFoundError(f"no contracts found in {directory or contracts_dir()}")
    for path in files:
        results.extend(verify_contract(path, data_source_yaml(settings.warehouse), path.stem))
    record_results(settings, run_id, checked_at, results)
    report = VerificationReport(run_id, checked_at, results)
    log.info("verified %d contracts: %s", len(files), dict(report.counts))
    return report


def record_results(settings: Settings, run_id: str, checked_at: datetime, results: list[CheckResult]) -> None:
    table = pa.table({
        "run_id": [run_id] * len(results),
        "contract": [r.contract for r in results],
        "dataset": [r.dataset for r in results],
        "check": [r.check for r in results],
        "check_type": [r.check_type for r in results],
        "column": [r.column for r in results],
        "outcome": [r.outcome for r in results],
        "value": pa.array([r.value for r in results], pa.float64()),
        "blocking": [r.blocking for r in results],
        "diagnostics": [json.dumps(r.diagnostics, default=str) for r in results],
        "message": [r.message for r in results],
        "checked_at": pa.array([checked_at] * len(results), pa.timestamp("us", tz="UTC")),
    })
    with session(settings.warehouse) as con:
        con.execute(RESULTS_DDL)
        con.register("results_batch", table)
        con.execute('insert into contract_results select run_id, contract, dataset, "check", check_type, "column", '
                    'outcome, "value", blocking, diagnostics, message, checked_at from results_batch')
