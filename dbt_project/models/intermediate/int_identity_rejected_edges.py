"""Identity edges that are not applied because they would give one person
more values of a type than var identity_max_per_person allows.

Only the components of int_identity_raw_components that break a limit are
looked at (a handful: everything else is within the limits). In each, the
edges are applied one by one in event-time order (first_linked_at, then the
first linking event, then the strongest pair first, then the node keys: a
deterministic order, the same in every build) with a union-find that keeps
the count of each identifier type per group; an edge whose union would
exceed a limit is rejected and recorded here with the reason. What is left
are the persons: int_identity_history splits these components along the
rejected edges. Applying the rule to every component would give the same
result (a component within the limits never rejects an edge).

The same rule, in plain Python over events, is omnivue.reference.resolve_identities.
"""

import pyarrow as pa

SCHEMA = pa.schema([
    ("component_node_key", pa.string()),
    ("node_key_a", pa.string()),
    ("node_key_b", pa.string()),
    ("identifier_type_a", pa.string()),
    ("identifier_type_b", pa.string()),
    ("over_limit_type", pa.string()),
    ("max_per_person", pa.int64()),
    ("reason", pa.string()),
    ("first_linked_at", pa.timestamp("us", tz="UTC")),
    ("first_event_id", pa.string()),
    ("latest_event_id", pa.string()),
    ("latest_event_at", pa.timestamp("us", tz="UTC")),
    ("n_events", pa.int64()),
    ("application_order", pa.int64()),
])


def guard_component(edges, node_types, limits, priority):
    """Apply the edges of one component in order; return the rejected ones
    as (edge, over_limit_type). ``edges``: dicts with node_key_a/b, sorted."""
    parent = {n: n for n in node_types}
    counts = {n: {t: 1} for n, t in node_types.items()}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    rejected = []
    for edge in edges:
        ra, rb = find(edge["node_key_a"]), find(edge["node_key_b"])
        if ra == rb:
            continue
        ca, cb = counts[ra], counts[rb]
        over = [t for t in set(ca) | set(cb)
                if limits.get(t) is not None and ca.get(t, 0) + cb.get(t, 0) > limits[t]]
        if over:
            rejected.append((edge, min(over, key=lambda t: priority[t])))
            continue
        if ra > rb:
            ra, rb = rb, ra
            ca, cb = cb, ca
        parent[rb] = ra
        for t, n in cb.items():
            ca[t] = ca.get(t, 0) + n
        del counts[rb]
    return rejected


def model(dbt, session):
    dbt.config(materialized="table")
    raw = dbt.ref("int_identity_raw_components")
    edges = dbt.ref("int_identity_edges")
    nodes = dbt.ref("int_identity_nodes")
    rules = dbt.ref("int_identity_rules")
    raw.create_view("__rej_raw", replace=True)
    edges.create_view("__rej_edges", replace=True)
    nodes.create_view("__rej_nodes", replace=True)

    limits, priority = {}, {}
    for identifier_type, identifier_priority, max_per_person in rules.fetchall():
        limits[identifier_type] = max_per_person
        priority[identifier_type] = identifier_priority

    members = session.sql("""
        select raw.component_node_key, raw.node_key, nodes.identifier_type
        from __rej_raw as raw inner join __rej_nodes as nodes using (node_key)
        where raw.violates_limits
    """).fetchall()
    if not members:
        return pa.Table.from_pylist([], schema=SCHEMA)
    node_types = {}
    for component, node_key, identifier_type in members:
        node_types.setdefault(component, {})[node_key] = identifier_type

    rows = session.sql("""
        select
            a.component_node_key, edges.node_key_a, edges.node_key_b, edges.identifier_type_a, edges.identifier_type_b,
            edges.first_linked_at, edges.first_event_id, edges.latest_event_id, edges.latest_event_at, edges.n_events
        from __rej_edges as edges
        inner join __rej_raw as a on a.node_key = edges.node_key_a
        inner join __rej_raw as b on b.node_key = edges.node_key_b
        where a.violates_limits and a.component_node_key = b.component_node_key
        order by
            a.component_node_key, edges.first_linked_at, edges.first_event_id,
            least(edges.identifier_priority_a, edges.identifier_priority_b),
            greatest(edges.identifier_priority_a, edges.identifier_priority_b),
            edges.node_key_a, edges.node_key_b
    """).fetch_arrow_table().to_pylist()
    by_component = {}
    for order, row in enumerate(rows):
        row["application_order"] = order
        by_component.setdefault(row["component_node_key"], []).append(row)

    out = []
    for component in sorted(by_component):
        for edge, over_type in guard_component(by_component[component], node_types[component], limits, priority):
            out.append({
                **{k: edge[k] for k in ("component_node_key", "node_key_a", "node_key_b", "identifier_type_a",
                                        "identifier_type_b", "first_linked_at", "first_event_id",
                                        "latest_event_id", "latest_event_at", "n_events", "application_order")},
                "over_limit_type": over_type,
                "max_per_person": limits[over_type],
                "reason": f"would give one person more than {limits[over_type]} {over_type}",
            })
    return pa.Table.from_pylist(out, schema=SCHEMA)
