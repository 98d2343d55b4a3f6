"""Reading the warehouse back, for the end-to-end tests."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import duckdb
from omnivue.reference import pairwise_scores, same_person_pairs  # noqa: F401  (re-exported for the tests)


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def partition(mapping: dict[str, str]) -> set[frozenset[str]]:
    """identifier -> group  ==>  the set of groups (as sets of identifiers)."""
    groups: dict[str, set[str]] = defaultdict(set)
    for identifier, group in mapping.items():
        groups[group].add(identifier)
    return {frozenset(g) for g in groups.values()}


def warehouse_identity(path: Path) -> dict[str, str]:
    return {f"{t}:{v}": p for t, v, p in query(path, "select identifier_type, identifier_value, person_id from identity_map")}


def warehouse_violations(path: Path) -> set[str]:
    return {e for (e,) in query(path, "select event_id from consent_audit where not consent_ok")}


# -- identity resolution and incremental builds without a broker (tests/test_identity.py) ----

DBT_PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"

#: The marts and the incremental models compared between an incremental build and a full refresh.
COMPARED_MODELS = (
    "customer_360", "fct_interactions", "consent_audit", "channel_engagement", "marketing_audience", "ereputation_daily",
    "identity_map", "identity_merge_rejections",
    "int_events", "int_consent_intervals", "int_person_channel_activity", "int_person_profile",
    "int_identity_components", "int_identity_raw_components", "int_identity_shared_identifiers",
    "int_identity_nodes", "int_identity_edges", "int_event_identifiers",
)


def run_dbt(warehouse: Path, work: Path, *args: str, as_of: str | None = None) -> str:
    """dbt on a throwaway warehouse; raise with dbt's output when it fails."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMNIVUE_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "DO_NOT_TRACK": "1"}
    cmd = [str(Path(sys.executable).with_name("dbt")), *args, "--profiles-dir", str(DBT_PROJECT),
           "--project-dir", str(DBT_PROJECT), "--target-path", str(work / "target"), "--log-path", str(work / "logs")]
    if as_of:
        cmd += ["--vars", f'{{as_of: "{as_of}"}}']
    proc = subprocess.run(cmd, cwd=DBT_PROJECT, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"dbt {' '.join(args)} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def as_records(events: list[dict], publish_at) -> list:
    """Canonical events as simulator records published at ``publish_at``."""
    from omnivue.envelope import encode, partition_key, topic_for
    from omnivue.simulator import Record

    return [Record(publish_at, topic_for(e["event_type"]), partition_key(e["identities"]), encode(e), e) for e in events]


def score_sentiment(warehouse: Path) -> int:
    """A stand-in for the pipeline's scoring step: every unscored social text gets a
    deterministic score in social_sentiment (the dbt source)."""
    con = duckdb.connect(str(warehouse))
    try:
        before = con.execute("select count(*) from social_sentiment").fetchone()[0]
        con.execute("""
            insert or ignore into social_sentiment (event_id, lang, score, label, scored_at)
            select event_id, json_extract_string(properties, '$.lang'), s,
                   case when s <= -0.05 then 'negative' when s >= 0.05 then 'positive' else 'neutral' end, now()
            from (select distinct on (event_id) event_id, properties,
                         round((cast(hash(event_id) % 2001 as integer) - 1000) / 1000.0, 3) as s
                  from landed_events
                  where event_type in ('social.mention', 'social.comment', 'social.direct_message')
                    and json_extract_string(properties, '$.text') is not null)
        """)
        return con.execute("select count(*) from social_sentiment").fetchone()[0] - before
    finally:
        con.close()


def snapshot(warehouse: Path, models=COMPARED_MODELS) -> dict[str, list]:
    """Every row of every model, sorted (for comparing builds)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {m: sorted(map(repr, con.execute(f"select * from {m}").fetchall())) for m in models}
    finally:
        con.close()


