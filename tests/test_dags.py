"""Every DAG imports cleanly and customer_view has the expected shape."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, other_group_member


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow")
    from omnivue.config import load_settings
    from omnivue.pipeline import airflow_environment, ensure_manifest

    env = airflow_environment(load_settings()) | {"AIRFLOW_HOME": str(home),
                                                  "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/a.db"}
    os.environ.update(env)
    ensure_manifest(load_settings())
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_every_dag_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "customer_view" in dagbag.dag_ids


def test_customer_view_runs_ingest_dbt_contracts_publish_in_order(dagbag):
    dag = dagbag.dags["customer_view"]
    ids = set(dag.task_ids)
    assert {"ingest", "verify_contracts", "publish"} <= ids
    models = {p.stem for p in (ROOT / "dbt_project" / "models").rglob("*") if p.suffix in (".sql", ".py")}
    model_tasks = {t.removeprefix("dbt.").removesuffix("_model_build") for t in ids if t.endswith("_model_build")}
    assert model_tasks == models  # one Airflow task per dbt model
    upstream_of_verify = dag.get_task("verify_contracts").get_flat_relative_ids(upstream=True)
    assert {t for t in ids if t.startswith("dbt.")} <= upstream_of_verify
    assert "ingest" in upstream_of_verify
    assert dag.get_task("publish").upstream_task_ids == {"verify_contracts"}
    assert dag.get_task("ingest").retries >= 1
    assert dag.get_task("verify_contracts").retries == 0  # a failed contract is not retried into passing


def test_dag_file_runs_as_a_script():
    """`python dags/customer_view.py` shows import errors that the scheduler would hide."""
    proc = subprocess.run([sys.executable, str(ROOT / "dags" / "customer_view.py")], capture_output=True, text=True,
                          timeout=300, env={**os.environ})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "customer_view" in proc.stdout


# the ingest task's own code, as a worker runs it (in a process of its own: before the fix it waited an hour)
RUN_INGEST_TASK = ("import runpy, sys; "
                   "runpy.run_path(sys.argv[1])['customer_view_dag'].get_task('ingest').python_callable()")


def test_ingest_task_fails_fast_when_another_consumer_holds_partitions(broker):
    """Another ingester in the group (an `omnivue ingest` left running, a second scheduler) holds
    partitions: the task could never catch up, waited its hour and was retried three times. Now it
    waits a bounded time for it to leave, then fails without a retry and says what to do."""
    from omnivue.config import load_settings
    from omnivue.ingester import describe_partitions
    from omnivue.pipeline import airflow_environment, ensure_manifest

    settings = load_settings()
    ensure_manifest(settings)
    env = {**os.environ, **airflow_environment(settings), "OMNIVUE_INGEST_GROUP_WAIT_SECONDS": "10"}
    with other_group_member(settings, keep_polling=True) as held:
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-c", RUN_INGEST_TASK, str(ROOT / "dags" / "customer_view.py")],
                              capture_output=True, text=True, env=env, timeout=90)
        took = time.monotonic() - start
    error = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode != 0, proc.stderr[-3000:]
    assert error.startswith("airflow.sdk.exceptions.AirflowFailException: ")  # failed for good: no retry
    assert "another consumer in group 'omnivue-ingest' holds partitions " in error
    assert "stop it or use another group" in error
    # it names what the other member held once this ingest joined (not all: this ingest had the rest)
    named = [describe_partitions(h) for h in held[1:] if 0 < len(h) < len(held[0])]
    assert any(f"holds partitions {p}:" in error for p in named), (error, named)
    assert took < 60
