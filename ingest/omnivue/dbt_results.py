"""The dbt data tests of a run, in the audit trail beside the Soda checks.

The DAG builds each model with `dbt build` (the model, then its tests), and
some of those tests are consent checks (`assert_marketing_audience_has_consent_
in_force`, `assert_consent_audit_covers_every_marketing_send`); a failing one
stops the run before the Soda contracts. Compliance must see every check that
ran, when, and its outcome, so each dbt task hands its ``run_results.json`` to
:func:`record_test_results` (a cosmos ``callback``, called whether dbt passed or
failed), which appends one row per test to ``contract_results``:

- ``contract`` ``dbt/<model>`` (the model the test is attached to; singular
  tests spanning several models: ``dbt/tests``), ``dataset`` the model;
- ``check`` the test's name, ``check_type`` its kind (``not_null``,
  ``relationships``, ..., ``singular``), ``column`` its column;
- ``outcome`` passed / failed / warned / error, ``value`` the failing rows;
- ``blocking``: severity ``error`` (such a failure stops the run, so nothing
  is published).

The publish step's "latest verification" is the Soda one: rows of
``dbt/...`` contracts never stand in for it (``publish.VERIFICATION_ROWS``).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .config import dbt_project_dir, load_settings
from .contract_checks import CheckResult, record_results

log = logging.getLogger(__name__)

#: contract names of the dbt tests start with this (publish.DBT_TEST_ROWS selects them)
CONTRACT_PREFIX = "dbt/"
_OUTCOMES = {"pass": "passed", "fail": "failed", "warn": "warned", "error": "error"}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def test_results(project_dir: Path) -> list[CheckResult]:
    """The tests of the dbt invocation whose project (target/) is ``project_dir``; skipped ones are left out."""
    run_results = _read_json(project_dir / "target" / "run_results.json")
    if not run_results:
        return []
    manifest = (_read_json(project_dir / "target" / "manifest.json")
                or _read_json(dbt_project_dir() / "target" / "manifest.json") or {})
    nodes = manifest.get("nodes", {})
    out = []
    for r in run_results.get("results", []):
        uid = r.get("unique_id", "")
        outcome = _OUTCOMES.get(r.get("status"))
        if not uid.startswith("test.") or outcome is None:
            continue
        node = nodes.get(uid, {})
        attached = (node.get("attached_node") or "").rsplit(".", 1)[-1]
        parents = [n.rsplit(".", 1)[-1] for n in (node.get("depends_on") or {}).get("nodes", [])]
        failures = r.get("failures")
        out.append(CheckResult(
            contract=CONTRACT_PREFIX + (attached or "tests"), dataset=attached or ", ".join(parents) or "dbt",
            check=node.get("name") or uid.split(".")[2], check_type=(node.get("test_metadata") or {}).get("name")
            or "singular", column=node.get("column_name"), outcome=outcome,
            value=None if failures is None else float(failures),
            blocking=(node.get("config") or {}).get("severity", "error").lower() == "error",
            diagnostics={"unique_id": uid, "execution_time": r.get("execution_time")},
            message=r.get("message") if outcome != "passed" else None))
    return out


def record_test_results(project_dir: str, context: dict[str, Any] | None = None, **_: Any) -> int:
    """Cosmos callback: append the tests this dbt task ran to contract_results under the DAG run's id."""
    results = test_results(Path(project_dir))
    if results:
        run_id = (context or {}).get("run_id") or f"dbt__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
        record_results(load_settings(), run_id, datetime.now(timezone.utc), results)
        log.info("recorded %d dbt test results in contract_results (run %s)", len(results), run_id)
    return len(results)
