-- Identifier values that look like placeholders the blocklist missed, e.g.
-- a test device or a dummy email shared by thousands of people. Such a
-- value would merge everybody into one component (and make the component
-- computation quadratic), so it is treated like a blocklisted value:
-- neither node nor edge. A hub is a value seen, on the same events, with
--   - more than var identity_hub_threshold distinct identifiers of one
--     "strong" type (customer_id, email, phone, social_handle), or
--   - more than var identity_hub_max_neighbours distinct identifiers in
--     all (anonymous and device ids included: one real person legitimately
--     has several of them, hence the much higher bound).

{%- set strong_types = ['customer_id', 'email', 'phone', 'social_handle'] %}

with

event_identifiers as (

    {{ usable_event_identifiers() }}

),

co_occurring as (

    select distinct
        identifier.node_key,
        identifier.identifier_type,
        identifier.identifier_value,
        neighbour.identifier_type as neighbour_type,
        neighbour.node_key as neighbour_node_key

    from event_identifiers as identifier
    inner join event_identifiers as neighbour
        on identifier.event_id = neighbour.event_id
        and identifier.kafka_topic = neighbour.kafka_topic
        and identifier.node_key <> neighbour.node_key

),

neighbour_counts as (

    select
        node_key,
        identifier_type,
        identifier_value,
        neighbour_type,
        count(*) as n_neighbours

    from co_occurring
    group by node_key, identifier_type, identifier_value, neighbour_type

),

hub_candidates as (

    select
        node_key,
        identifier_type,
        identifier_value,
        coalesce(max(case when neighbour_type in ({{ sql_literal_list(strong_types) }}) then n_neighbours end), 0)
            as max_strong_neighbours_of_one_type,
        cast(sum(n_neighbours) as {{ dbt.type_bigint() }}) as n_neighbours

    from neighbour_counts
    group by node_key, identifier_type, identifier_value

),

final as (

    select * from hub_candidates
    where max_strong_neighbours_of_one_type > {{ var('identity_hub_threshold') }}
        or n_neighbours > {{ var('identity_hub_max_neighbours') }}

)

select * from final
