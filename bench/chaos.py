"""Chaos benchmark (part of ``make bench``): SIGKILL the ingester at random
instants during a large load, restarting it each time, then prove that the
landed events are exactly the produced valid events (no loss, no duplicate)
and the dead letters exactly the produced bad records.

Defaults: >= 1,000,000 records and >= 50 kills.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, table, write_section  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _watch_join(proc: subprocess.Popen, joined: threading.Event) -> None:
    """Set ``joined`` when the ingester logs its partition assignment (it then starts landing)."""
    for line in proc.stderr:
        if "assigned" in line:
            joined.set()


def landed_count(warehouse: Path) -> int:
    """Records handled so far (landed + dead-lettered)."""
    import duckdb

    if not warehouse.exists():
        return 0
    for _ in range(100):
        try:
            con = duckdb.connect(str(warehouse), read_only=True)
        except duckdb.IOException:  # a killed ingester's last transaction may still hold it
            time.sleep(0.1)
            continue
        try:
            return con.execute("select (select count(*) from landed_events) + (select count(*) from dead_letter)"
                               ).fetchone()[0]
        except duckdb.CatalogException:
            return 0
        finally:
            con.close()
    raise RuntimeError(f"{warehouse} stayed locked")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="at least this many records (default 1M)")
    parser.add_argument("--kills", type=int, default=50, help="at least this many SIGKILLs (default 50)")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="omnivue-chaos-"))
    env = {**os.environ, "OMNIVUE_HOME": str(home), "OMNIVUE_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_port()}"}
    os.environ.update(env)
    from omnivue import broker
    from omnivue.config import load_settings
    from omnivue.simulator import Simulation, publish

    settings = load_settings()
    broker.start(settings)
    exe = str(Path(sys.executable).with_name("omnivue"))
    rng = random.Random(args.seed)
    try:
        people = max(100, args.records // 14)
        result = Simulation(people, 30, seed=args.seed).build()
        while len(result.records) < args.records:
            people = int(people * args.records / len(result.records) * 1.02) + 1
            result = Simulation(people, 30, seed=args.seed).build()
        truth = result.truth
        total = len(result.records)
        print(f"publishing {total:,} records ({people:,} people)...", flush=True)
        publish(settings, result, progress=False)
        del result

        kills, lives, start = 0, 0, time.monotonic()
        rate = 30_000.0  # records/s once a life has joined the group; re-estimated after every kill
        while True:
            lives += 1
            before = landed_count(settings.warehouse)
            # records a life may land before it is killed, on average: what is left shared among the
            # kills still to make, with a margin, so that the load does not end before the last kill
            kills_left = max(1, args.kills - kills)
            per_life = max(1, total - before) / (kills_left * 2)
            proc = subprocess.Popen([exe, "ingest", "--until-caught-up", "-q", "--batch-size", "2000"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            joined = threading.Event()
            threading.Thread(target=_watch_join, args=(proc, joined), daemon=True).start()
            if kills < args.kills and joined.wait(timeout=120) and proc.poll() is None:
                # a random instant within the landing: between 0 and ~2x this life's share of the load
                wait = 0.05 + rng.uniform(0.0, 2.0) * per_life / rate
                if kills_left <= 5:  # the last kills early in their life: the load must not end first
                    wait = min(wait, rng.uniform(0.05, 0.5))
                t0 = time.monotonic()
                time.sleep(wait)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    kills += 1
                    handled = landed_count(settings.warehouse)
                    if wait > 0.2 and handled > before:
                        rate = 0.7 * rate + 0.3 * (handled - before) / (time.monotonic() - t0)
                    print(f"kill {kills}: {handled:,}/{total:,} records handled", flush=True)
                    continue
            rc = proc.wait()
            if rc != 0:
                print(f"ingester exited {rc}", flush=True)
                return 1
            break
        elapsed = time.monotonic() - start
    finally:
        broker.stop(settings)

    import duckdb

    con = duckdb.connect(str(settings.warehouse), read_only=True)
    landed, records, events = con.execute(
        'select count(*), count(distinct (topic, "partition", "offset")), count(distinct event_id) '
        "from landed_events").fetchone()
    dead_raw = Counter(r for (r,) in con.execute("select raw from dead_letter").fetchall())
    con.close()
    expected_landed = truth["valid_events"] + len(truth["duplicates"])
    expected_dead = Counter(b["raw"] for b in truth["bad_records"])
    lost = max(0, expected_landed - records) + sum((expected_dead - dead_raw).values())
    duplicated = (landed - records) + sum((dead_raw - expected_dead).values())
    ok = lost == 0 and duplicated == 0 and landed == expected_landed and events == truth["valid_events"] \
        and kills >= args.kills and total >= args.records
    rows = [("records produced", f"{total:,}"), ("valid events (distinct)", f"{truth['valid_events']:,}"),
            ("SIGKILLs during the load", str(kills)), ("ingester lives", str(lives)),
            ("rows landed / expected", f"{landed:,} / {expected_landed:,}"),
            ("dead letters / planted bad records", f"{sum(dead_raw.values()):,} / {sum(expected_dead.values()):,}"),
            ("lost", str(lost)), ("duplicated", str(duplicated)), ("wall time", f"{elapsed:.0f} s"),
            ("verdict", "PASS" if ok else "FAIL")]
    text = table(rows, ("chaos run", "value"))
    print(machine())
    print(text)
    if not args.no_write:
        write_section("chaos", "Exactly once under SIGKILL",
                      f"{machine()}, local Tansu broker; `bench/chaos.py`: the ingester is killed with SIGKILL at "
                      "random instants and restarted each time.\n\n" + text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
