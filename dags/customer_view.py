"""Airflow DAG ``customer_view``: ingest -> sentiment -> dbt (one task per
model) -> Soda contracts -> publish.

Write, audit, publish: the dbt models are built and tested in the warehouse,
every Soda contract is verified and its results stored in
``contract_results``, and only when no blocking check failed is the
analysts' snapshot replaced. A failed blocking contract fails the run and
leaves the previous snapshot in place.

Run it without a server with ``omnivue run`` (in-process ``dag.test()``), or
let a scheduler pick it up (docker-compose.yml).
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

from omnivue.config import dbt_project_dir, load_settings
from omnivue.dbt_results import collect_node_results

SETTINGS = load_settings()
DBT_DIR = dbt_project_dir()
MANIFEST = DBT_DIR / "target" / "manifest.json"
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))
DBT_ENV = {"OMNIVUE_WAREHOUSE": str(SETTINGS.warehouse)}
os.environ.update(DBT_ENV)  # the dbt profile reads it (in-process dbt runner)

if MANIFEST.exists():  # `omnivue run` parses the project first: no dbt call while the DAG is parsed
    project_config = ProjectConfig(dbt_project_path=DBT_DIR, manifest_path=MANIFEST, project_name="omnivue",
                                   install_dbt_deps=False, env_vars=DBT_ENV)
    load_method = LoadMode.DBT_MANIFEST
else:
    project_config = ProjectConfig(dbt_project_path=DBT_DIR, install_dbt_deps=False, env_vars=DBT_ENV)
    load_method = LoadMode.DBT_LS

profile_config = ProfileConfig(profile_name="omnivue", target_name="dev",
                               profiles_yml_filepath=DBT_DIR / "profiles.yml")


@dag(
    dag_id="customer_view",
    description="Kafka events -> landed -> dbt marts -> Soda contracts -> published customer view",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    max_active_tasks=1,  # DuckDB: one writer at a time
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10), "owner": "data-engineering"},
    # trigger with {"full_refresh": true} (`omnivue run --full-refresh`) to rebuild every model from all
    # landed events, e.g. after changing the identity blocklist or limits (docs/identity.md section 5);
    # the append-only int_identity_history and int_event_log keep their rows (full_refresh: false)
    params={"full_refresh": Param(False, type="boolean",
                                  description="rebuild every dbt model from all landed events (dbt --full-refresh)")},
    tags=["omnivue"],
    doc_md=__doc__,
)
def customer_view() -> None:
    @task(retries=3, retry_delay=timedelta(seconds=15))
    def ingest() -> dict:
        """Consume every input topic until the group has no lag."""
        from airflow.sdk.exceptions import AirflowFailException

        from omnivue.ingester import Ingester
        from omnivue.kafka_io import GroupShared

        try:
            stats = Ingester(load_settings()).run(until_caught_up=True, max_seconds=3600, progress=False)
        except GroupShared as exc:  # it already waited for the other consumer to leave: a retry would wait again
            raise AirflowFailException(str(exc)) from None
        return stats.as_dict()

    @task(retries=1)
    def score_sentiment() -> int:
        """Sentiment of every new social mention, comment and direct message (FR/EN, in process)."""
        from omnivue.sentiment import score_new

        return score_new(load_settings())

    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=project_config,
        profile_config=profile_config,
        # BUILD: one task per model running `dbt build` (the model, then its tests); tests that span
        # several models (relationships) get their own task after all of their parents.
        render_config=RenderConfig(load_method=load_method, test_behavior=TestBehavior.BUILD,
                                   should_detach_multiple_parents_tests=True,
                                   emit_datasets=False, enable_mock_profile=False),
        execution_config=ExecutionConfig(execution_mode=ExecutionMode.LOCAL,
                                         invocation_mode=InvocationMode.DBT_RUNNER,
                                         dbt_executable_path=DBT_EXECUTABLE),
        default_args={"retries": 0},  # a failing model or test is not fixed by retrying
        operator_args={"full_refresh": "{{ params.full_refresh }}",
                       # no manifest.json / run_results.json per task: writing the 2 MB manifest twice was half of
                       # a task's time; the test outcomes come from dbt's events instead
                       "dbt_cmd_global_flags": ["--no-write-json"],
                       "dbt_runner_callbacks": [collect_node_results],
                       # every dbt test's outcome goes to contract_results, failed or not (the audit trail)
                       "callback": "omnivue.dbt_results.record_test_results"},
    )

    @task(retries=0)
    def verify_contracts() -> dict:
        """Verify every Soda contract; record all results; fail on a blocking one."""
        from airflow.sdk.exceptions import AirflowFailException

        from omnivue.alerts import raise_consent_alerts
        from omnivue.contract_checks import verify_all

        run_id = get_current_context()["run_id"]
        report = verify_all(load_settings(), run_id=run_id)
        print(report.render())
        alerts = raise_consent_alerts(load_settings(), run_id=run_id)
        if not report.ok:
            raise AirflowFailException("blocking contract checks failed; the published snapshot is unchanged:\n"
                                       + report.render())
        return {"run_id": run_id, "outcomes": dict(report.counts), "alerts": alerts}

    @task(retries=0)
    def publish() -> str:
        """Replace the analysts' snapshot atomically."""
        from airflow.sdk.exceptions import AirflowFailException

        from omnivue.publish import SnapshotRejected, publish_snapshot

        try:
            return str(publish_snapshot(load_settings(), run_id=get_current_context()["run_id"]))
        except SnapshotRejected as exc:  # clear-text personal data found: the previous snapshot stays
            raise AirflowFailException(str(exc)) from None

    ingest() >> score_sentiment() >> dbt >> verify_contracts() >> publish()


customer_view_dag = customer_view()

if __name__ == "__main__":
    print("OK", customer_view_dag.dag_id, [t.task_id for t in customer_view_dag.topological_sort()])
