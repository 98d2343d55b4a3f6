"""Connected components of the identity graph before the per-person limits.

Nodes: identifiers that are neither placeholders (int_identity_nodes.
is_blocklisted) nor shared (int_identity_shared_identifiers); edges: the
co-occurrences between them (int_identity_edges). Computed in DuckDB with
min-label propagation and pointer jumping over integer ids, each round
restricted to the nodes next to a label that changed (the frontier), so a
round costs what changed, not the graph: near-linear, about 10 s for 10M
identifiers on two cores (docs/identity.md).

One row per node: its component (component_node_key = the component's smallest
node key, so the same data gives the same labels in every build), the
component's size and whether it holds more values of a type than one person
may (var identity_max_per_person): those few components are resolved edge by
edge in int_identity_rejected_edges.

Incremental (strategy replace_partitions, one partition per component):
only the components touched since the watermark are recomputed: those of
the nodes and edges landed after it (less the lookback), with every node of
the components those nodes were in before. A new edge can only merge
components and a newly shared identifier only split its own, so the rest is
unchanged; the result is the same as a full rebuild. Of the recomputed
components, only those that differ from the stored rows are written (most
come out the same: a node seen again, an edge inside a component).
"""

MAX_ROUNDS = 500


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="replace_partitions",
               unique_key="component_node_key", on_schema_change="ignore")
    nodes = dbt.ref("int_identity_nodes")
    edges = dbt.ref("int_identity_edges")
    shared = dbt.ref("int_identity_shared_identifiers")
    rules = dbt.ref("int_identity_rules")
    nodes.create_view("__cc_nodes", replace=True)
    edges.create_view("__cc_edges", replace=True)
    shared.create_view("__cc_shared", replace=True)
    rules.create_view("__cc_rules", replace=True)

    if dbt.is_incremental:
        this = str(dbt.this)
        lookback = int(dbt.config.get("lookback_hours") or 1)
        # a literal, not a subquery: DuckDB skips the row groups of nodes and edges (written in
        # landing order) whose last_received_at is older, by their min/max
        (watermark,) = session.execute(
            "select strftime(coalesce((select received_at from dbt_incremental_state where model = 'int_identity_raw_components')"
            f" - interval '{int(lookback)} hours', cast('-infinity' as timestamp with time zone)), '%Y-%m-%d %H:%M:%S.%f%z')"
        ).fetchone()
        watermark = f"cast('{watermark}' as timestamp with time zone)"
        session.execute(f"""
            create or replace temp table __cc_touched as
            select node_key_a as node_key from __cc_edges where last_received_at > {watermark}
            union select node_key_b from __cc_edges where last_received_at > {watermark}
            union select node_key from __cc_nodes where last_received_at > {watermark}
        """)
        session.execute(f"""
            create or replace temp table __cc_old_components as
            select distinct component_node_key from {this}
            where node_key in (select node_key from __cc_touched)
        """)
        # the stored rows of those components: compared with the result below
        session.execute(f"""
            create or replace temp table __cc_stored as
            select node_key, component_node_key, component_size, violates_limits from {this}
            where component_node_key in (select component_node_key from __cc_old_components)
        """)
        session.execute("""
            create or replace temp table __cc_scope as
            select node_key from __cc_touched
            union select node_key from __cc_stored
        """)
        scope_filter = "and nodes.node_key in (select node_key from __cc_scope)"
    else:
        session.execute("create or replace temp table __cc_old_components (component_node_key varchar)")
        scope_filter = ""

    session.execute(f"""
        create or replace temp table __cc_ids as
        select nodes.node_key, nodes.identifier_type, (row_number() over ())::integer as id
        from __cc_nodes as nodes
        anti join __cc_shared as shared on nodes.node_key = shared.node_key
        where not nodes.is_blocklisted {scope_filter}
    """)
    # edges between two nodes of the scope (an edge leaving it cannot exist: its other end
    # was in the same component before, or the edge is new and both ends were touched)
    session.execute("""
        create or replace temp table __cc_adjacent as
        with e as (
            select a.id as a, b.id as b
            from __cc_edges as edges
            inner join __cc_ids as a on a.node_key = edges.node_key_a
            inner join __cc_ids as b on b.node_key = edges.node_key_b
        )
        select a, b from e union all select b as a, a as b from e
    """)
    # label = min(own id, neighbours' ids); then only the neighbours of moved labels move
    session.execute("""
        create or replace temp table __cc_labels as
        select ids.id, least(ids.id, coalesce(m.min_neighbour, ids.id)) as label
        from __cc_ids as ids
        left join (select a as id, min(b) as min_neighbour from __cc_adjacent group by a) as m using (id)
    """)
    session.execute("create or replace temp table __cc_changed as select id, label from __cc_labels where label <> id")
    rounds = 0
    while True:
        rounds += 1
        if rounds > MAX_ROUNDS:
            raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")
        session.execute("""
            create or replace temp table __cc_update as
            with proposed as (
                select adjacent.a as id, min(changed.label) as label
                from __cc_changed as changed
                inner join __cc_adjacent as adjacent on adjacent.b = changed.id
                group by adjacent.a
            ),
            better as (
                select proposed.id, proposed.label
                from proposed inner join __cc_labels as labels using (id)
                where proposed.label < labels.label
            )
            -- pointer jumping: adopt the label of the label when it is smaller
            select better.id, least(better.label, jump.label) as label
            from better inner join __cc_labels as jump on jump.id = better.label
        """)
        (n_changed,) = session.execute("select count(*) from __cc_update").fetchone()
        if n_changed == 0:
            break
        session.execute("update __cc_labels set label = u.label from __cc_update as u where __cc_labels.id = u.id")
        session.execute("create or replace temp table __cc_changed as select id, label from __cc_update")

    limits = dict(session.execute("select identifier_type, max_per_person from __cc_rules").fetchall())
    kinds = sorted(limits)
    type_counts = ",\n                ".join(
        f"count(case when identifier_type = '{k}' then 1 end) as n_{k}" for k in kinds)
    violates = " or ".join(f"components.n_{k} > {int(limits[k])}" for k in kinds if limits[k] is not None) or "false"
    session.execute(f"""
        create or replace temp table __cc_result as
        with labelled as (
            select ids.node_key, ids.identifier_type, labels.label
            from __cc_ids as ids inner join __cc_labels as labels using (id)
        ),
        components as (
            -- named after the component's smallest node key: the same in every build
            select
                label,
                min(node_key) as component_node_key,
                count(*) as component_size,
                {type_counts}
            from labelled
            group by label
        )
        select
            labelled.node_key,
            components.component_node_key,
            cast(components.component_size as bigint) as component_size,
            {violates} as violates_limits
        from labelled inner join components using (label)
    """)
    if not dbt.is_incremental:
        return session.table("__cc_result")

    # Only the components that differ from what is stored are written: most touched components
    # (a node seen again, an edge inside a component) come out the same. A component differs when
    # one of its rows is not stored as such, or a stored row of it is not in the result (a node
    # that left it, a component that no longer exists: its stored rows are deleted by its
    # tombstone). Every scope node's stored component is one of __cc_old_components, so the
    # stored rows compared are all those of the components involved.
    session.execute("""
        create or replace temp table __cc_changed_components as
        select component_node_key from (
            select * from __cc_result except select * from __cc_stored
        ) as added
        union
        select component_node_key from (
            select * from __cc_stored except select * from __cc_result
        ) as removed
    """)
    session.execute("""
        create or replace temp table __cc_batch as
        select node_key, component_node_key, component_size, violates_limits, false as _tombstone
        from __cc_result
        where component_node_key in (select component_node_key from __cc_changed_components)
        union all
        select null, component_node_key, null, null, true
        from __cc_old_components
        where component_node_key in (select component_node_key from __cc_changed_components)
    """)
    return session.table("__cc_batch")
