-- Connected components of the identity graph: one row per node with the
-- person it belongs to, via a portable recursive CTE. Every node starts as
-- a label of itself; a label spreads along edges to nodes with a larger key
-- only (the smallest node of a component still reaches all of it, and
-- nothing spreads upward past it). UNION (set semantics) stops the
-- recursion once no new (label, node) pair appears. A node's component key
-- is the smallest label that reached it = the component's smallest node key.

with recursive

nodes as (

    select * from {{ ref('int_identity_nodes') }}

),

edges as (

    select node_key_a as from_node_key, node_key_b as to_node_key
    from {{ ref('int_identity_edges') }}

    union

    select node_key_b as from_node_key, node_key_a as to_node_key
    from {{ ref('int_identity_edges') }}

),

labels (label_node_key, node_key) as (

    select node_key as label_node_key, node_key
    from nodes

    union

    select
        labels.label_node_key,
        edges.to_node_key as node_key
    from labels
    inner join edges
        on labels.node_key = edges.from_node_key
    where edges.to_node_key > labels.label_node_key

),

components as (

    select
        node_key,
        min(label_node_key) as component_key

    from labels
    group by node_key

),

final as (

    select
        nodes.node_key,
        nodes.identifier_type,
        nodes.identifier_value,
        components.component_key,
        {{ person_id_from_key('components.component_key') }} as person_id

    from nodes
    inner join components
        on nodes.node_key = components.node_key

)

select * from final
