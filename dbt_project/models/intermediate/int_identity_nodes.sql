-- Identity-graph nodes: one row per normalised identifier seen on any event.

with

event_identifiers as (

    select * from {{ ref('int_event_identifiers') }}

),

final as (

    select
        node_key,
        identifier_type,
        identifier_value,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        count(distinct event_id) as n_events

    from event_identifiers
    group by node_key, identifier_type, identifier_value

)

select * from final
