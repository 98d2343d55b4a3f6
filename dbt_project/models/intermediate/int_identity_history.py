"""Identity history: an append-only log of every change of an identifier's
person, and the registry that keeps person ids stable across runs.

Each build
1. takes the persons of this build: the components of
   int_identity_raw_components, those breaking a per-person limit split
   along int_identity_rejected_edges;
2. gives each person an id. A person that holds identifiers of earlier
   persons keeps the id of one of them: the earlier person holding its
   earliest-seen identifier (then the one holding most of its identifiers,
   then the smallest id); each earlier id goes to at most one person. A
   person with no earlier id (or whose earlier ids went to others) gets a
   new one, 'p_' + 16 hex digits of md5(OMNIVUE_PSEUDONYM_KEY | its
   earliest-seen identifier), never an id used before (a '#n' suffix is
   hashed in if it was). So an id does not change when identifiers join,
   when a late event brings an earlier identifier, or when persons merge
   (the one with the oldest identifier keeps its id); it changes only for
   the part of a person that splits away.
3. appends one row per identifier whose person changed since the latest
   row of that identifier: 'attributed' (new identifier, or one that was
   nobody's), 'merged' (its person was absorbed by another), 'split' (it
   left a person that goes on), 'unattributed' (it became a placeholder or a
   shared identifier), with the event that caused it.

Incremental: only the persons that can have changed are looked at: those
of the identifiers and links landed after the watermark (less the
lookback), with every identifier of their earlier persons and of their
components. Never rebuilt by --full-refresh (config full_refresh: false):
the log and the ids it holds are the state a full refresh of everything
else keeps. The current person of an identifier is its latest row
(int_identity_components).
"""

import hashlib
import os
from datetime import datetime, timezone

DEFAULT_KEY = "omnivue-local-dev-key"


def split_components(members, edges, rejected):
    """Union-find over the non-rejected edges of the components that broke a limit."""
    parent = {n: n for n, _ in members}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        if (a, b) in rejected:
            continue
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [(n, f"g:{find(n)}") for n, _ in members]


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="append", full_refresh=False,
               on_schema_change="append_new_columns")
    raw = dbt.ref("int_identity_raw_components")
    rejected = dbt.ref("int_identity_rejected_edges")
    nodes = dbt.ref("int_identity_nodes")
    edges = dbt.ref("int_identity_edges")
    shared = dbt.ref("int_identity_shared_identifiers")
    for name, rel in (("raw", raw), ("rejected", rejected), ("nodes", nodes), ("edges", edges), ("shared", shared)):
        rel.create_view(f"__hist_{name}", replace=True)
    key = os.environ.get("OMNIVUE_PSEUDONYM_KEY", DEFAULT_KEY)
    recorded_at = datetime.now(timezone.utc)
    incremental = dbt.is_incremental
    this = str(dbt.this) if incremental else None

    # 0. the identifiers whose person may change (all, in a first build)
    if incremental:
        lookback = int(dbt.config.get("lookback_hours") or 1)
        # a literal, not a subquery: DuckDB skips the row groups of nodes and edges (written in
        # landing order) whose last_received_at is older, by their min/max
        (watermark,) = session.execute(
            "select strftime(coalesce((select received_at from dbt_incremental_state where model = 'int_identity_history')"
            f" - interval '{int(lookback)} hours', cast('-infinity' as timestamp with time zone)), '%Y-%m-%d %H:%M:%S.%f%z')"
        ).fetchone()
        watermark = f"cast('{watermark}' as timestamp with time zone)"
        session.execute(f"""
            create or replace temp table __hist_touched as
            select node_key_a as node_key from __hist_edges where last_received_at > {watermark}
            union select node_key_b from __hist_edges where last_received_at > {watermark}
            union select node_key from __hist_nodes where last_received_at > {watermark}
        """)
        # the previous state of an identifier is its latest row. Only the identifiers below are
        # looked up: a pass over one column of the log finds their rows, and only those rows are
        # grouped (arg_max_null: an 'unattributed' latest row names nobody)
        def latest(node_keys):
            return f"""
                select node_key, arg_max_null(person_id, identity_run) as person_id
                from {this}
                where node_key in ({node_keys})
                group by node_key
            """

        def holding(person_ids):
            """The identifiers whose latest row names one of person_ids (a person's identifiers
            all have a row naming it: only those identifiers are looked up)."""
            return f"""
                select node_key, person_id from (
                    {latest(f"select node_key from {this} where person_id in ({person_ids})")}
                ) as latest_rows
                where person_id in ({person_ids})
            """

        # the earlier persons of the touched identifiers, and all their identifiers
        session.execute(f"""
            create or replace temp table __hist_touched_persons as
            select distinct person_id from ({latest("select node_key from __hist_touched")}) as latest_rows
            where person_id is not null
        """)
        session.execute(f"""
            create or replace temp table __hist_scope_nodes as
            select node_key from __hist_touched
            union
            select node_key from ({holding("select person_id from __hist_touched_persons")}) as held
        """)
        session.execute("""
            create or replace temp table __hist_scope_components as
            select distinct component_node_key from __hist_raw where node_key in (select node_key from __hist_scope_nodes)
        """)
        raw_scope = "where raw.component_node_key in (select component_node_key from __hist_scope_components)"
    else:
        raw_scope = ""

    # 1. the persons of this build (components keyed by an opaque label)
    session.execute(f"create or replace temp table __hist_raw_scoped as select raw.* from __hist_raw as raw {raw_scope}")
    members = session.sql("select node_key, component_node_key from __hist_raw_scoped where violates_limits").fetchall()
    split = []
    if members:
        inner = session.sql("""
            select edges.node_key_a, edges.node_key_b
            from __hist_edges as edges
            inner join __hist_raw_scoped as a on a.node_key = edges.node_key_a
            inner join __hist_raw_scoped as b on b.node_key = edges.node_key_b
            where a.violates_limits and a.component_node_key = b.component_node_key
        """).fetchall()
        cut = set(session.sql("select node_key_a, node_key_b from __hist_rejected").fetchall())
        split = split_components(members, inner, cut)
    # lists as parameters, not an Arrow table: no pyarrow import in the run (macros/python/py_write_table.sql)
    session.execute("""
        create or replace temp table __hist_split as
        select unnest(cast(? as varchar[])) as node_key, unnest(cast(? as varchar[])) as comp_key
    """, [[n for n, _ in split], [c for _, c in split]])
    session.execute("""
        create or replace temp table __hist_cur as
        select raw.node_key,
               coalesce(split.comp_key, 'r:' || raw.component_node_key) as comp_key,
               nodes.first_seen_at
        from __hist_raw_scoped as raw
        inner join __hist_nodes as nodes using (node_key)
        left join __hist_split as split using (node_key)
    """)

    # 2. the previous state of those identifiers: their latest rows
    if incremental:
        session.execute(f"""
            create or replace temp table __hist_prev as
            {latest("select node_key from __hist_cur union select node_key from __hist_scope_nodes")}
        """)
        (last_run,) = session.execute(f"select coalesce(max(identity_run), 0) from {this}").fetchone()
        # ids still held by identifiers outside the scope are not available (only the earlier
        # persons of the scope matter: __hist_held_elsewhere is compared with them alone)
        session.execute(f"""
            create or replace temp table __hist_held_elsewhere as
            select distinct person_id
            from ({holding("select person_id from __hist_prev where person_id is not null")}) as held
            where node_key not in (select node_key from __hist_prev)
        """)
    else:
        session.execute("create or replace temp table __hist_prev (node_key varchar, person_id varchar)")
        session.execute("create or replace temp table __hist_held_elsewhere (person_id varchar)")
        last_run = 0
    run = last_run + 1

    # 3. keep earlier ids: (person of this build, earlier person) pairs by shared identifiers
    session.execute("""
        create or replace temp table __hist_pairs as
        with pairs as (
            select cur.comp_key, prev.person_id, count(*) as n_shared,
                   min(cur.first_seen_at) as earliest
            from __hist_cur as cur inner join __hist_prev as prev using (node_key)
            where prev.person_id is not null
                and prev.person_id not in (select person_id from __hist_held_elsewhere)
            group by cur.comp_key, prev.person_id
        )
        select *,
               count(*) over (partition by comp_key) as n_earlier_ids,
               count(*) over (partition by person_id) as n_successors
        from pairs
    """)
    session.execute("""
        create or replace temp table __hist_assigned as
        select comp_key, person_id from __hist_pairs where n_earlier_ids = 1 and n_successors = 1
    """)
    contested = session.sql("""
        select comp_key, person_id from __hist_pairs where n_earlier_ids > 1 or n_successors > 1
        order by earliest, n_shared desc, person_id, comp_key
    """).fetchall()
    if contested:
        taken_comps, taken_ids, picks = set(), set(), []
        for comp_key, person_id in contested:
            if comp_key in taken_comps or person_id in taken_ids:
                continue
            taken_comps.add(comp_key)
            taken_ids.add(person_id)
            picks.append((comp_key, person_id))
        session.execute("insert into __hist_assigned select unnest(cast(? as varchar[])), unnest(cast(? as varchar[]))",
                        [[c for c, _ in picks], [p for _, p in picks]])

    # 4. new ids for the others: hash of the earliest-seen identifier, never an id used before
    session.execute("""
        create or replace temp table __hist_fresh_ids as
        select comp_key, anchor, 'p_' || substr(md5(? || '|' || anchor), 1, 16) as person_id
        from (
            select cur.comp_key, arg_min(cur.node_key, (cur.first_seen_at, cur.node_key)) as anchor
            from __hist_cur as cur
            anti join __hist_assigned as assigned using (comp_key)
            group by cur.comp_key
        )
    """, [key])
    used = f"select person_id from {this}" if incremental else "select null::varchar as person_id where false"
    clashes = session.sql(f"""
        with candidates as (
            select comp_key, anchor, person_id, count(*) over (partition by person_id) as n_same
            from __hist_fresh_ids
        )
        select comp_key, anchor from candidates
        where n_same > 1
            or person_id in ({used})
            or person_id in (select person_id from __hist_assigned)
        order by anchor
    """).fetchall()
    if clashes:
        candidates = {}
        for comp_key, anchor in clashes:
            candidates[comp_key] = [
                "p_" + hashlib.md5(f"{key}|{anchor}#{n}".encode()).hexdigest()[:16] for n in range(1, 65)]
        flat = sorted({c for cs in candidates.values() for c in cs})
        session.execute("create or replace temp table __hist_candidates as select unnest(cast(? as varchar[])) as person_id",
                        [flat])
        taken = {p for (p,) in session.execute(f"""
            select person_id from __hist_candidates
            where person_id in ({used}) or person_id in (select person_id from __hist_assigned)
               or person_id in (select person_id from __hist_fresh_ids)
        """).fetchall()}
        fixes = []
        for comp_key, anchor in clashes:
            candidate = next(c for c in candidates[comp_key] if c not in taken)
            taken.add(candidate)
            fixes.append((candidate, comp_key))
        session.executemany("update __hist_fresh_ids set person_id = ? where comp_key = ?", fixes)
    session.execute("insert into __hist_assigned select comp_key, person_id from __hist_fresh_ids")

    # 5. what changed, and why
    session.execute("""
        create or replace temp table __hist_new as
        select cur.node_key, cur.comp_key, assigned.person_id
        from __hist_cur as cur inner join __hist_assigned as assigned using (comp_key)
    """)
    session.execute("""
        create or replace temp table __hist_diff as
        select coalesce(new.node_key, prev.node_key) as node_key, new.comp_key,
               prev.person_id as previous_person_id, new.person_id,
               prev.node_key is not null as was_known
        from __hist_new as new full outer join __hist_prev as prev using (node_key)
        where prev.person_id is distinct from new.person_id
    """)
    session.execute("""
        create or replace temp table __hist_out as
        with surviving as (
            select distinct person_id from __hist_new
            union select person_id from __hist_held_elsewhere
        ),
        -- causes are looked up only for identifiers that moved between persons (few)
        changed_comps as (
            select distinct comp_key from __hist_diff
            where comp_key is not null and previous_person_id is not null
        ),
        comp_edges as (
            select cur_a.comp_key, edges.latest_event_id, edges.latest_event_at, edges.last_received_at,
                   prev_a.person_id is not null and prev_b.person_id is not null as links_two_persons
            from __hist_edges as edges
            inner join __hist_new as cur_a on cur_a.node_key = edges.node_key_a
            inner join __hist_new as cur_b on cur_b.node_key = edges.node_key_b and cur_b.comp_key = cur_a.comp_key
            inner join changed_comps on changed_comps.comp_key = cur_a.comp_key
            left join __hist_prev as prev_a on prev_a.node_key = edges.node_key_a
            left join __hist_prev as prev_b on prev_b.node_key = edges.node_key_b
            where prev_a.person_id is distinct from prev_b.person_id
        ),
        comp_causes as (
            -- a link between two earlier persons first, then the most recently landed
            select comp_key,
                   arg_max(latest_event_id, (links_two_persons, last_received_at, latest_event_at, latest_event_id)) as event_id,
                   arg_max(latest_event_at, (links_two_persons, last_received_at, latest_event_at, latest_event_id)) as event_at
            from comp_edges group by comp_key
        ),
        dropped as (select node_key from __hist_diff where person_id is null),
        node_edges as (
            select dropped.node_key, edges.latest_event_id, edges.latest_event_at, edges.last_received_at
            from __hist_edges as edges
            inner join dropped on dropped.node_key = edges.node_key_a
            union all
            select dropped.node_key, edges.latest_event_id, edges.latest_event_at, edges.last_received_at
            from __hist_edges as edges
            inner join dropped on dropped.node_key = edges.node_key_b
        ),
        node_causes as (
            select node_key,
                   arg_max(latest_event_id, (last_received_at, latest_event_at, latest_event_id)) as event_id,
                   arg_max(latest_event_at, (last_received_at, latest_event_at, latest_event_id)) as event_at
            from node_edges group by node_key
        )
        select
            md5(cast(? as varchar) || '|' || diff.node_key) as history_id,
            cast(? as bigint) as identity_run,
            cast(? as timestamp with time zone) as recorded_at,
            diff.node_key,
            nodes.identifier_type,
            nodes.identifier_value,
            diff.previous_person_id,
            diff.person_id,
            case
                when diff.previous_person_id is null then 'attributed'
                when diff.person_id is null then 'unattributed'
                when diff.previous_person_id in (select person_id from surviving) then 'split'
                else 'merged'
            end as change_kind,
            case
                when diff.person_id is not null then null
                when nodes.is_blocklisted then 'blocklisted'
                when shared.reason is not null then shared.reason
                else 'rejected'
            end as reason,
            case
                when diff.person_id is null then coalesce(node_causes.event_id, nodes.first_event_id)
                when not diff.was_known or diff.previous_person_id is null then nodes.first_event_id
                else coalesce(comp_causes.event_id, nodes.first_event_id)
            end as caused_by_event_id,
            case
                when diff.person_id is null then coalesce(node_causes.event_at, nodes.first_seen_at)
                when not diff.was_known or diff.previous_person_id is null then nodes.first_seen_at
                else coalesce(comp_causes.event_at, nodes.first_seen_at)
            end as changed_at
        from __hist_diff as diff
        inner join __hist_nodes as nodes using (node_key)
        left join __hist_shared as shared using (node_key)
        left join comp_causes using (comp_key)
        left join node_causes using (node_key)
    """, [run, run, recorded_at])
    return session.table("__hist_out")
