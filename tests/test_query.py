"""``omnivue query`` on the published snapshot: read-only (the file system too), every column, and it
says when it cut the result."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from conftest import run_cli
from omnivue.config import load_settings
from omnivue.query import QueryError, run_query


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OMNIVUE_HOME", str(tmp_path / "home"))
    s = load_settings()
    s.published.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(s.published)) as con:
        con.execute("create table customer_360 as select 'p_' || i as person_id from range(120) t(i)")
    return s


def test_query_says_when_the_result_was_cut_and_honours_limit(settings):
    out = run_query(settings, "select * from customer_360 order by person_id", limit=30)
    # DuckDB's own rendering showed 20 rows whatever --limit said, and only the columns that fit 120 characters
    assert out.count("│ p_") == 30 and "the first 30 rows only" in out
    assert "the first" not in run_query(settings, "select * from customer_360", limit=500)
    assert run_query(settings, "select * from customer_360", limit=500).count("│ p_") == 120


@pytest.mark.parametrize("sql", ["copy customer_360 to '{tmp}/leak.csv'", "attach '{tmp}/other.duckdb' as w",
                                 "select * from read_csv('/etc/hostname')"])
def test_query_touches_no_other_file(settings, tmp_path, sql):
    with pytest.raises(QueryError, match="disabled"):
        run_query(settings, sql.format(tmp=tmp_path))
    assert not (tmp_path / "leak.csv").exists()


def test_query_refuses_empty_sql(settings):
    with pytest.raises(QueryError, match="no SQL"):
        run_query(settings, "  ; ")


def test_query_shows_every_column(settings):
    columns = ", ".join(f"'value {i}' as column_{i:02d}" for i in range(14))
    out = run_query(settings, f"select {columns}")
    assert all(f"column_{i:02d}" in out for i in range(14)) and "value 13" in out


def test_query_runs_one_statement_only(settings):
    """Two statements ran both and printed the last: a silently partial answer (or a write first)."""
    proc = run_cli("query", "select count(*) from customer_360; select 2")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["omnivue: error: omnivue query runs one statement; got 2"]
    assert proc.stdout == ""
    # DuckDB's parser counts them: a ';' in a string and a trailing ';' are one statement
    proc = run_cli("query", "select count(*) as n, 'a;b' as s from customer_360;")
    assert proc.returncode == 0, proc.stderr
    assert "120" in proc.stdout and "a;b" in proc.stdout
