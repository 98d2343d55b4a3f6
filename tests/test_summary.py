"""The end-of-run summary of `omnivue run` and `omnivue demo` after a failed run: what this run
landed, and no figure that passes for verified or published when it is not."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone

import duckdb

from omnivue.config import load_settings
from omnivue.contract_checks import CheckResult, record_results
from omnivue.simulator import Simulation, land
from omnivue.summary import collect, render


def test_a_failed_run_says_what_it_landed_and_that_nothing_was_verified_or_published(omnivue_env):
    settings = load_settings()
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    earlier = datetime.now(timezone.utc) - timedelta(days=1)
    sim = Simulation(20, 5, seed=3).build()
    half = len(sim.records) // 2
    land(settings.warehouse, sim.records[:half], received_at=earlier)  # landed by an earlier run
    passed = CheckResult("customer_360", "customer_360", "there are people", "row_count", None, "passed", 20.0, True)
    record_results(settings, "earlier_run", earlier, [passed])
    settings.published.parent.mkdir(parents=True, exist_ok=True)
    duckdb.connect(str(settings.published)).close()
    os.utime(settings.published, (earlier.timestamp(), earlier.timestamp()))

    started = datetime.now(timezone.utc)
    time.sleep(0.01)
    landed_now = land(settings.warehouse, sim.records[half:], received_at=datetime.now(timezone.utc))
    out = render(settings, collect(settings, run_id="this_run", since=started), ok=False)
    lines = out.splitlines()
    assert "run:                FAILED" in lines
    assert f"this run landed:    {landed_now - sum(1 for r in sim.records[half:] if r.event is None)} records, " \
           f"{sum(1 for r in sim.records[half:] if r.event is None)} dead letters" in lines
    assert any("not verified, not published" in line for line in lines)
    # the earlier run's contract results are not this run's
    assert "contract checks:    not run in this run" in lines and "earlier_run" not in out
    assert f"published snapshot: unchanged, from an earlier run ({earlier:%Y-%m-%d %H:%M:%S} UTC): " \
           f"{settings.published}" in lines
    # a run that got to its contracts shows them
    ok_out = render(settings, collect(settings, run_id="earlier_run", since=started), ok=True)
    assert "contract checks:    passed 1 (run earlier_run)" in ok_out.splitlines()
