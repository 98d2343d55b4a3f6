"""``omnivue demo``: the whole flow on the embedded defaults, with a summary."""

from __future__ import annotations

import logging
import os

from . import broker
from .config import load_settings
from .pipeline import run_pipeline
from .simulator import Simulation, publish, write_truth
from .summary import collect, render

log = logging.getLogger(__name__)


def run_demo(people: int = 300, days: int = 30, seed: int | None = None, verbose: bool = False) -> int:
    settings = load_settings()
    print(f"omnivue demo: data in {settings.home}, Kafka at {settings.bootstrap}")
    print("1/3 broker")
    status = broker.start(settings)
    print(f"    running on {status.address}; topics {', '.join(sorted(status.topics))}")
    seed = seed if seed is not None else int.from_bytes(os.urandom(4), "big")
    print(f"2/3 simulate {people} people over {days} days (seed {seed})")
    result = Simulation(people, days, seed=seed).build()
    write_truth(settings.truth_file, result.truth)
    sent = publish(settings, result)
    print(f"    {sent} records published; ground truth in {settings.truth_file}")
    print("3/3 pipeline: Airflow DAG customer_view (ingest -> dbt -> Soda contracts -> publish)")
    outcome = run_pipeline(settings, verbose=verbose)
    print(outcome.render())
    print(render(settings, collect(settings, run_id=outcome.run_id, since=outcome.started_at), ok=outcome.ok))
    print("\nnext: `omnivue query \"select * from customer_360 limit 5\"`, `omnivue broker stop` when done")
    return 0 if outcome.ok else 1
