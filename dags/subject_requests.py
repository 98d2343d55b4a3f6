"""Airflow DAG ``subject_requests``: serve the data subjects' requests that
were queued (``omnivue subject erase|export --queue``).

1. ``serve_erasures``: every queued erasure, oldest first: the person is
   removed from every store under OMNIVUE_HOME, the result verified and
   recorded in ``subject_requests`` (keyed hashes only), an erasure notice
   published on the ``erasure`` topic;
2. ``serve_access``: every queued access request: one JSON document per
   request under ``$OMNIVUE_HOME/exports/`` (or the path asked for);
3. ``publish_erasure_notices``: notices that could not be published when
   their erasure ran (broker down) are retried.

Queued requests hold the keyed hash of the identifier, never its value, and
nothing here passes a value through XCom or task arguments: the Airflow
metadata database and task logs stay free of personal data. A request that
cannot be served as asked (a placeholder identifier, a suspicious merge) is
marked ``refused``; any other failure fails the task, which retries.

Run it once without a server (``omnivue subject serve`` does the same work
without Airflow), or let a scheduler pick it up every 15 minutes.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="subject_requests",
    description="Serve queued erasure and access requests (GDPR art. 15 and 17)",
    schedule=timedelta(minutes=15),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    max_active_tasks=1,  # DuckDB: one writer at a time
    default_args={"retries": 3, "retry_delay": timedelta(minutes=1), "owner": "compliance"},
    tags=["omnivue", "compliance"],
    doc_md=__doc__,
)
def subject_requests() -> None:
    @task(retries=3, retry_delay=timedelta(minutes=1))
    def serve_erasures() -> list[dict]:
        """Serve every queued erasure request."""
        from omnivue.compliance.requests import serve_queue
        from omnivue.config import load_settings

        served = serve_queue(load_settings(), kind="erasure")
        for s in served:
            print(s.summary)
        return [s.as_dict() for s in served]

    @task(retries=3, retry_delay=timedelta(minutes=1))
    def serve_access() -> list[dict]:
        """Serve every queued access request."""
        from omnivue.compliance.requests import serve_queue
        from omnivue.config import load_settings

        served = serve_queue(load_settings(), kind="access")
        for s in served:
            print(s.summary)
        return [s.as_dict() for s in served]

    @task(retries=5, retry_delay=timedelta(minutes=2))
    def publish_erasure_notices() -> int:
        """Publish the erasure notices still pending."""
        from omnivue.compliance.requests import publish_pending_notices
        from omnivue.config import load_settings

        return publish_pending_notices(load_settings())

    serve_erasures() >> serve_access() >> publish_erasure_notices()


subject_requests_dag = subject_requests()

if __name__ == "__main__":
    print("OK", subject_requests_dag.dag_id, [t.task_id for t in subject_requests_dag.topological_sort()])
