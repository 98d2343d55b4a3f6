"""The dbt data tests of a run, in the audit trail beside the Soda checks.

The DAG builds each model with `dbt build` (the model, then its tests), and
some of those tests are consent checks (`assert_marketing_audience_has_consent_
in_force`, `assert_consent_audit_covers_every_marketing_send`); a failing one
stops the run before the Soda contracts. Compliance must see every check that
ran, when, and its outcome. The DAG runs dbt with ``--no-write-json`` (writing
the project's 2 MB manifest.json twice per task was half of a task's time), so
there is no ``run_results.json``: :func:`collect_node_results` (a cosmos
``dbt_runner_callbacks`` entry, dbt's event callback) keeps each finished
node's result, and :func:`record_test_results` (a cosmos ``callback``, called
after dbt whether it passed or failed) appends one row per test to
``contract_results``:

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
from typing import TYPE_CHECKING, Any

from .config import dbt_project_dir

if TYPE_CHECKING:  # the DAG file imports this module: keep its parse light
    from .contract_checks import CheckResult

log = logging.getLogger(__name__)

#: contract names of the dbt tests start with this (publish.DBT_TEST_ROWS selects them)
CONTRACT_PREFIX = "dbt/"
_OUTCOMES = {"pass": "passed", "fail": "failed", "warn": "warned", "error": "error"}

#: the finished nodes of the dbt invocation in progress in this process (one dbt task at a time)
_finished: list[dict[str, Any]] = []


def collect_node_results(event: Any) -> None:
    """dbt event callback: remember each finished node's outcome; a new invocation starts afresh."""
    name = event.info.name
    if name == "MainReportVersion":  # "Running with dbt=...": the first event of an invocation
        _finished.clear()
    elif name == "NodeFinished":
        node, result = event.data.node_info, event.data.run_result
        _finished.append({"unique_id": node.unique_id, "status": result.status, "message": result.message,
                          "failures": result.num_failures, "execution_time": result.execution_time})


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def test_results(project_dir: Path, finished: list[dict[str, Any]]) -> list[CheckResult]:
    """The tests among ``finished`` (:func:`collect_node_results`' records), described from the manifest of
    the dbt project ``project_dir`` (cosmos' copy of the parsed project); skipped ones are left out."""
    from .contract_checks import CheckResult

    manifest = (_read_json(project_dir / "target" / "manifest.json")
                or _read_json(dbt_project_dir() / "target" / "manifest.json") or {})
    nodes = manifest.get("nodes", {})
    out = []
    for r in finished:
        uid = r["unique_id"]
        outcome = _OUTCOMES.get(r["status"])
        if not uid.startswith("test.") or outcome is None:
            continue
        node = nodes.get(uid, {})
        attached = (node.get("attached_node") or "").rsplit(".", 1)[-1]
        parents = [n.rsplit(".", 1)[-1] for n in (node.get("depends_on") or {}).get("nodes", [])]
        out.append(CheckResult(
            contract=CONTRACT_PREFIX + (attached or "tests"), dataset=attached or ", ".join(parents) or "dbt",
            check=node.get("name") or uid.split(".")[2], check_type=(node.get("test_metadata") or {}).get("name")
            or "singular", column=node.get("column_name"), outcome=outcome,
            value=None if outcome == "error" else float(r["failures"]),
            blocking=(node.get("config") or {}).get("severity", "error").lower() == "error",
            diagnostics={"unique_id": uid, "execution_time": r["execution_time"]},
            message=r["message"] or None if outcome != "passed" else None))
    return out


def record_test_results(project_dir: str, context: dict[str, Any] | None = None, **_: Any) -> int:
    """Cosmos callback: append the tests this dbt task ran to contract_results under the DAG run's id."""
    from .config import load_settings
    from .contract_checks import record_results

    results = test_results(Path(project_dir), _finished)
    _finished.clear()
    if results:
        run_id = (context or {}).get("run_id") or f"dbt__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
        record_results(load_settings(), run_id, datetime.now(timezone.utc), results)
        log.info("recorded %d dbt test results in contract_results (run %s)", len(results), run_id)
    return len(results)
