"""`omnivue demo`, the README's main command, end to end on a fresh data directory."""

from __future__ import annotations

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow


def test_demo_runs_end_to_end_and_matches_its_truth(omnivue_env):
    try:
        demo = run_cli("demo", "--people", "80", "--days", "10", "--seed", "11", env=omnivue_env)
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        out = demo.stdout
        assert "run:                SUCCEEDED" in out
        landed = [line for line in out.splitlines() if line.startswith("this run landed:    ")]
        assert len(landed) == 1 and int(landed[0].split()[3]) > 0, landed
        assert "not verified" not in out and "contract checks:    passed " in out
        truth_lines = [line for line in out.splitlines() if line.strip().startswith(("persons ", "consent violations ",
                                                                                     "dead letters "))]
        assert len(truth_lines) == 3 and all(line.rstrip().endswith(" ok") for line in truth_lines), truth_lines
        assert "published snapshot: " in out and "omnivue query" in out
        query = run_cli("query", "select count(*) as people from customer_360", env=omnivue_env)
        assert query.returncode == 0 and "people" in query.stdout
        # a second demo on the same data directory adds a new simulation to the first one's data:
        # its truth covers only the new one, so the summary says why it does not compare
        again = run_cli("demo", "--people", "40", "--days", "10", "--seed", "12", env=omnivue_env)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        assert "DIFFERS" not in again.stdout
        assert "  not compared: the warehouse holds " in again.stdout and "make clean" in again.stdout
    finally:
        run_cli("broker", "stop", env=omnivue_env)
