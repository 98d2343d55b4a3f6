"""Identity resolution benchmark (``make bench``; docs/identity.md).

1. Accuracy: the simulator's traffic for --people people (100k by default,
   identity traps planted: family tablets, shops' generic emails, junk
   emails, the all-zero device id) is landed through ingest's validation
   code, the dbt project is built, and identity_map is compared with the
   simulator's truth: pairwise precision and recall of "same person".
2. Incremental: 99% of the records (in arrival order) are landed and built,
   then the last 1% (late events, logins that stitch earlier anonymous use,
   consent changes) land and an incremental build runs, then one with
   nothing new; a --full-refresh build of the same data is timed against
   them. At --people and again at --incremental-people (500k by default:
   the fixed cost of an incremental run weighs less in a bigger warehouse).
3. Scale: the identity-resolution models (shared identifiers, connected
   components, per-person limits, ids and history, current map) on
   synthetic identity graphs of 1M and 10M identifiers (--scales).

Results are printed and written to docs/identity.md (between the
benchmark markers) unless --no-write.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT = ROOT / "dbt_project"
DOC = ROOT / "docs" / "identity.md"
START, END_MARK = "<!-- bench:identity:start -->", "<!-- bench:identity:end -->"
END = datetime(2026, 1, 31, tzinfo=timezone.utc)
AS_OF = "2026-02-01 00:00:00+00"
IDENTITY_MODELS = ["int_identity_rules", "int_identity_shared_identifiers", "int_identity_raw_components",
                   "int_identity_rejected_edges", "int_identity_history", "int_identity_components"]


def dbt(warehouse: Path, work: Path, *args: str) -> tuple[float, float, dict[str, float]]:
    """Run dbt; return (wall seconds, sum of model execution seconds, per-model seconds)."""
    env = {**os.environ, "OMNIVUE_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "DO_NOT_TRACK": "1"}
    cmd = [str(Path(sys.executable).with_name("dbt")), *args, "--profiles-dir", str(DBT_PROJECT),
           "--project-dir", str(DBT_PROJECT), "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
           "--vars", f'{{as_of: "{AS_OF}"}}']
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=DBT_PROJECT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"dbt {' '.join(args)} failed:\n{proc.stdout[-4000:]}")
    results = json.loads((work / "target" / "run_results.json").read_text())["results"]
    per_model = {r["unique_id"].split(".")[-1]: r["execution_time"] for r in results}
    return wall, sum(per_model.values()), per_model


def score_sentiment(warehouse: Path) -> None:
    """Stand-in for the pipeline's scoring step (deterministic scores). Each score is
    stamped with the landing time of its event, as if the pipeline had scored every
    landed batch before dbt ran (it does): stamping the whole simulated month with the
    bench's wall-clock time would put every score inside the models' one-hour lookback
    (var incremental_lookback_hours), a history no real warehouse has."""
    import duckdb

    con = duckdb.connect(str(warehouse))
    con.execute("""
        insert or ignore into social_sentiment (event_id, lang, score, label, scored_at)
        select event_id, json_extract_string(properties, '$.lang'), s,
               case when s <= -0.05 then 'negative' when s >= 0.05 then 'positive' else 'neutral' end, received_at
        from (select distinct on (event_id) event_id, properties, received_at,
                     round((cast(hash(event_id) % 2001 as integer) - 1000) / 1000.0, 3) as s
              from landed_events
              where event_type in ('social.mention', 'social.comment', 'social.direct_message')
                and json_extract_string(properties, '$.text') is not null
              order by event_id, received_at)""")
    con.close()


def pairwise(mine: dict[str, str], truth: dict[str, str]) -> tuple[float, float, int]:
    from omnivue.reference import pairwise_scores, same_person_pairs

    precision, recall = pairwise_scores(mine, truth)
    return precision, recall, len(same_person_pairs(truth))


def accuracy_and_incremental(people: int, work: Path, accuracy: bool = True) -> dict:
    """Land 99% of the simulated records, build, land the last 1%, build incrementally,
    again with nothing new, then a full refresh of the same data; with accuracy, compare
    identity_map with the simulator's truth after the incremental build."""
    import duckdb

    from omnivue.simulator import Simulation, land

    out: dict = {"people": people}
    t = time.perf_counter()
    sim = Simulation(people, 30, seed=42, end=END).build()
    records = sorted(sim.records, key=lambda r: r.publish_at)
    out["records"] = len(records)
    out["simulate_s"] = time.perf_counter() - t
    cut = int(len(records) * 0.99)
    wh = work / "warehouse.duckdb"
    t = time.perf_counter()
    land(wh, records[:cut])
    out["land_s"] = time.perf_counter() - t
    score_sentiment(wh)
    out["first_build"] = dbt(wh, work, "run")[:2]
    land(wh, records[cut:])
    score_sentiment(wh)
    out["new_records"] = len(records) - cut
    out["incremental"] = dbt(wh, work, "run")
    if not accuracy:
        out["no_change"] = dbt(wh, work, "run")
        out["full_refresh"] = dbt(wh, work, "run", "--full-refresh")
        return out
    con = duckdb.connect(str(wh), read_only=True)
    mine = {f"{t}:{v}": p for t, v, p in con.execute(
        "select identifier_type, identifier_value, person_id from identity_map").fetchall()}
    rejections = dict(con.execute("select identifier_type || ':' || identifier_value, rejection_kind "
                                  "from identity_merge_rejections").fetchall())
    persons = con.execute("select count(*) from customer_360").fetchone()[0]
    con.close()
    truth = sim.truth
    precision, recall, n_pairs = pairwise(mine, truth["identifiers"])
    traps = truth["unattributed_identifiers"]
    out.update(precision=precision, recall=recall, pairs=n_pairs, identifiers=len(truth["identifiers"]),
               persons=persons, truth_persons=truth["persons"], traps=len(traps),
               traps_attributed=len(set(traps) & set(mine)),
               traps_reported=sum(1 for k in traps if k in rejections))
    out["no_change"] = dbt(wh, work, "run")  # nothing new: the fixed cost of an incremental run
    out["full_refresh"] = dbt(wh, work, "run", "--full-refresh")
    return out


def synthetic_graph(warehouse: Path, identifiers: int) -> dict:
    """int_identity_nodes / int_identity_edges (and an empty history) for a synthetic
    population of about ``identifiers`` identifiers: people with 1-6 identifiers linked
    by several events (chains and stars), 1 in 500 sharing a family tablet with the
    next person, one shop email typed in for 1 in 2000."""
    import duckdb

    people = int(identifiers / 3.6)
    con = duckdb.connect(str(warehouse))
    con.execute(f"""
        create or replace table person_ids as
        with p as (select range as i from range({people}))
        select i, 'customer_id' as t, 'C' || i as v from p where hash(i, 1) % 10 < 6
        union all select i, 'email', 'e' || i || '@example.com' from p
        union all select i, 'device_id', 'd-' || i from p where hash(i, 2) % 10 < 5
        union all select i, 'anonymous_id', 'a-' || i from p where hash(i, 2) % 10 < 5
        union all select i, 'anonymous_id', 'a2-' || i from p where hash(i, 3) % 10 < 3
        union all select i, 'phone', '+336' || lpad(cast(i as varchar), 8, '0') from p where hash(i, 4) % 10 < 3
        union all select i, 'social_handle', 'x:h' || i from p where hash(i, 5) % 10 < 4
        union all select i, 'device_id', 'tablet-' || (i // 2) from p where i % 500 in (0, 1) and hash(i, 1) % 10 < 6
        union all select i, 'email', 'shop@shops.example.com' from p where i % 2000 = 0 and hash(i, 1) % 10 < 6
    """)
    con.execute("""
        create or replace table int_identity_rules as
        select * from (values ('customer_id', 1, 1), ('email', 2, 3), ('phone', 3, 3), ('social_handle', 4, 5),
                              ('device_id', 5, 10), ('anonymous_id', 6, 100))
                      as r(identifier_type, identifier_priority, max_per_person)""")
    con.execute("""
        create or replace table int_identity_nodes as
        select t || ':' || v as node_key, t as identifier_type, v as identifier_value,
               r.identifier_priority, false as is_blocklisted,
               timestamp with time zone '2026-01-01 00:00:00+00' + to_seconds(min(hash(v) % 2592000)) as first_seen_at,
               timestamp with time zone '2026-01-31 00:00:00+00' as last_seen_at,
               'ev-' || min(i) as first_event_id, cast(count(*) as bigint) as n_events,
               timestamp with time zone '2026-01-31 00:00:00+00' as last_received_at
        from person_ids join int_identity_rules as r on r.identifier_type = t
        group by t, v, r.identifier_priority""")
    # events: a chain through each person's identifiers in a random order, plus one star
    con.execute("""
        create or replace table int_identity_edges as
        with keyed as (
            select i, t || ':' || v as k, t, hash(i, t, v) as h from person_ids
        ),
        chain as (
            select i, k as a, lead(k) over (partition by i order by h) as b from keyed
        ),
        star as (
            select k1.i, k1.k as a, k2.k as b from keyed k1 join keyed k2 on k1.i = k2.i
            where k1.t = 'email' and k2.t in ('customer_id', 'device_id')
        ),
        pairs as (
            select least(a, b) as a, greatest(a, b) as b, min(i) as i from (
                select i, a, b from chain where b is not null union all select i, a, b from star
            ) where a <> b group by 1, 2
        )
        select md5(a || '|' || b) as edge_id, a as node_key_a, b as node_key_b,
               split_part(a, ':', 1) as identifier_type_a, split_part(b, ':', 1) as identifier_type_b,
               ra.identifier_priority as identifier_priority_a, rb.identifier_priority as identifier_priority_b,
               timestamp with time zone '2026-01-01 00:00:00+00' + to_seconds(hash(a, b) % 2592000) as first_linked_at,
               'ev-' || md5(a || b) as first_event_id,
               timestamp with time zone '2026-01-31 00:00:00+00' as last_linked_at,
               'ev-' || md5(b || a) as latest_event_id,
               timestamp with time zone '2026-01-31 00:00:00+00' as latest_event_at,
               cast(1 as bigint) as n_events, true as is_explicit_link,
               timestamp with time zone '2026-01-31 00:00:00+00' as last_received_at
        from pairs
        join int_identity_rules ra on ra.identifier_type = split_part(a, ':', 1)
        join int_identity_rules rb on rb.identifier_type = split_part(b, ':', 1)""")
    con.execute("drop table person_ids")
    nodes, edges = (con.execute(f"select count(*) from {t}").fetchone()[0] for t in ("int_identity_nodes", "int_identity_edges"))
    con.close()
    return {"nodes": nodes, "edges": edges}


def identity_scale(identifiers: int, work: Path) -> dict:
    import duckdb

    wh = work / "warehouse.duckdb"
    graph = synthetic_graph(wh, identifiers)
    wall, models, per_model = dbt(wh, work, "run", "--select", *IDENTITY_MODELS[1:])
    con = duckdb.connect(str(wh), read_only=True)
    persons, shared, rejected = con.execute("""
        select (select count(distinct person_id) from int_identity_components),
               (select count(*) from int_identity_shared_identifiers),
               (select count(*) from int_identity_rejected_edges)""").fetchone()
    con.close()
    return {**graph, "wall_s": wall, "models_s": models, "per_model": per_model, "persons": persons,
            "shared": shared, "rejected": rejected}


def render(acc: dict | None, scales: list[dict], large: dict | None = None) -> str:
    lines = [f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {platform.machine()}, {os.cpu_count()} cores, "
             f"Python {platform.python_version()} (`python bench/identity.py`).", ""]
    if acc:
        lines += [
            f"**Accuracy** ({acc['people']:,} simulated people, {acc['records']:,} records, {acc['traps']} planted "
            f"traps): pairwise precision **{acc['precision']:.4f}**, recall **{acc['recall']:.4f}** over "
            f"{acc['pairs']:,} same-person pairs of {acc['identifiers']:,} identifiers; {acc['persons']:,} persons "
            f"(truth {acc['truth_persons']:,}); traps attributed to a person: {acc['traps_attributed']}, "
            f"reported in identity_merge_rejections: {acc['traps_reported']}/{acc['traps']}.",
            "",
        ]
    runs = [r for r in (acc, large) if r]
    if runs:
        def cell(r: dict, key: str) -> str:
            wall, models = r[key][:2]
            return f"{wall:.1f} s | {models:.1f} s"

        def ratio(r: dict, key: str) -> str:
            return (f"{r[key][0] / r['full_refresh'][0]:.0%} | "
                    f"{r[key][1] / r['full_refresh'][1]:.0%}")

        lines += [
            "**Incremental** (+1% = the last 1% of the records by arrival, late events included; "
            "wall = the `dbt run`, models = the sum of the model times in run_results.json):",
            "",
            "| build | " + " | ".join(f"{r['people']:,} people: wall | models" for r in runs) + " |",
            "| --- |" + " ---: | ---: |" * len(runs),
            "| records before / added | " + " | ".join(f"{r['records'] - r['new_records']:,} | +{r['new_records']:,}"
                                                     for r in runs) + " |",
            "| full refresh, all data | " + " | ".join(cell(r, "full_refresh") for r in runs) + " |",
            "| incremental after +1% | " + " | ".join(cell(r, "incremental") for r in runs) + " |",
            "| **ratio** incremental / full | " + " | ".join(ratio(r, "incremental") for r in runs) + " |",
            "| incremental, nothing new (fixed cost) | " + " | ".join(cell(r, "no_change") for r in runs) + " |",
            "| ratio nothing new / full | " + " | ".join(ratio(r, "no_change") for r in runs) + " |",
            "",
        ]
        for r in runs:
            lines += [f"Slowest models of the incremental build at {r['people']:,} people: " + ", ".join(
                f"{m} {t:.2f} s" for m, t in sorted(r["incremental"][2].items(), key=lambda x: -x[1])[:8]) + ".", ""]
    if scales:
        lines += ["**Identity resolution at scale** (synthetic graphs; shared identifiers, connected components, "
                  "per-person limits, ids and history, current map; first build):", "",
                  "| identifiers | links | persons | shared | rejected links | wall (dbt run) | sum of model times | components model |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for s in scales:
            lines.append(f"| {s['nodes']:,} | {s['edges']:,} | {s['persons']:,} | {s['shared']:,} | {s['rejected']:,} "
                         f"| {s['wall_s']:.1f} s | {s['models_s']:.1f} s | "
                         f"{s['per_model'].get('int_identity_raw_components', 0):.1f} s |")
        lines.append("")
    return "\n".join(lines)


def write_doc(text: str) -> None:
    doc = DOC.read_text() if DOC.exists() else f"# Identity\n\n{START}\n{END_MARK}\n"
    if START not in doc:
        doc += f"\n{START}\n{END_MARK}\n"
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END_MARK, 1)
    DOC.write_text(f"{head}{START}\n{text}\n{END_MARK}{tail}")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from report import write_section

    write_section("identity", "Identity resolution (bench/identity.py)", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000, help="simulated people for accuracy (default 100000)")
    parser.add_argument("--scales", default="1000000,10000000",
                        help="comma-separated synthetic identifier counts (default 1000000,10000000; '' to skip)")
    parser.add_argument("--incremental-people", type=int, default=500_000,
                        help="also measure full vs incremental builds at this larger size (default 500000; 0 to skip)")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/identity.md")
    args = parser.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="omnivue-bench-identity-"))
    try:
        acc = None
        if not args.skip_accuracy:
            (base / "acc").mkdir()
            acc = accuracy_and_incremental(args.people, base / "acc")
            print(f"accuracy: precision {acc['precision']:.4f} recall {acc['recall']:.4f} "
                  f"({acc['people']} people, {acc['traps']} traps, {acc['traps_attributed']} attributed)")
            print(f"full refresh {acc['full_refresh'][0]:.1f}s (models {acc['full_refresh'][1]:.1f}s); "
                  f"incremental after +1% {acc['incremental'][0]:.1f}s (models {acc['incremental'][1]:.1f}s)")
            shutil.rmtree(base / "acc", ignore_errors=True)
        large = None
        if args.incremental_people:
            (base / "large").mkdir()
            large = accuracy_and_incremental(args.incremental_people, base / "large", accuracy=False)
            print(f"{large['people']} people: full refresh {large['full_refresh'][0]:.1f}s "
                  f"(models {large['full_refresh'][1]:.1f}s); incremental after +1% {large['incremental'][0]:.1f}s "
                  f"(models {large['incremental'][1]:.1f}s)")
            shutil.rmtree(base / "large", ignore_errors=True)
        scales = []
        for n in [int(x) for x in args.scales.split(",") if x.strip()]:
            work = base / f"scale-{n}"
            work.mkdir()
            s = identity_scale(n, work)
            scales.append(s)
            print(f"identity resolution: {s['nodes']:,} identifiers, {s['edges']:,} links -> {s['persons']:,} persons "
                  f"in {s['wall_s']:.1f}s (models {s['models_s']:.1f}s, components "
                  f"{s['per_model'].get('int_identity_raw_components', 0):.1f}s)")
            shutil.rmtree(work, ignore_errors=True)
        text = render(acc, scales, large)
        print(text)
        if not args.no_write:
            write_doc(text)
            print(f"written to {DOC}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "ingest"))
    raise SystemExit(main())
