-- Identity-graph edges: identifiers co-occurring in one event (any topic,
-- identity.linked included) are connected. Per event, a star from its
-- smallest node key to each of its other node keys is enough for
-- connectivity. One row per undirected pair (node_key_a < node_key_b).

with

event_nodes as (

    select distinct
        event_id,
        kafka_topic,
        channel,
        occurred_at,
        node_key

    from {{ ref('int_event_identifiers') }}

),

event_anchors as (

    select
        event_id,
        kafka_topic,
        min(node_key) as anchor_node_key

    from event_nodes
    group by event_id, kafka_topic

),

star as (

    select
        event_anchors.anchor_node_key as node_key_a,
        event_nodes.node_key as node_key_b,
        event_nodes.event_id,
        event_nodes.channel,
        event_nodes.occurred_at

    from event_nodes
    inner join event_anchors
        on event_nodes.event_id = event_anchors.event_id
        and event_nodes.kafka_topic = event_anchors.kafka_topic
    where event_nodes.node_key <> event_anchors.anchor_node_key

),

final as (

    select
        {{ dbt.hash(dbt.concat(['node_key_a', "'|'", 'node_key_b'])) }} as edge_id,
        node_key_a,
        node_key_b,
        min(occurred_at) as first_linked_at,
        max(occurred_at) as last_linked_at,
        count(distinct event_id) as n_events,
        {{ dbt.bool_or("channel = 'identity'") }} as is_explicit_link

    from star
    group by node_key_a, node_key_b

)

select * from final
