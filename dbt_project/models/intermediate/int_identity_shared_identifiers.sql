-- Shared identifiers: values that several people use, so linking through
-- them would merge different people (over-merge). They are attributed to
-- nobody and form no edge of the person graph; events carrying them still
-- belong to the person of their strongest other identifier.
-- A node is shared when, in the events that carry it (int_identity_edges),
--   - it is seen with more values of a STRONGER identifier type than one
--     person may hold (var identity_max_per_person, order var
--     identity_priority): a family tablet (device_id) used by 2 customer_ids,
--     a shop's generic email typed in at checkout by many customers
--     (reason 'shared'); or
--   - it is a hub whatever its type: more than var identity_hub_threshold
--     values of one strong type (customer_id / email / phone /
--     social_handle), or more than var identity_hub_max_neighbours
--     identifiers in all (reason 'hub'): a test account, a junk value the
--     blocklist missed.
-- Local and order-independent; what this misses (over-merges through a
-- chain of identifiers) is caught by the per-person limits in
-- int_identity_rejected_edges.
-- Incremental: only the endpoints of edges landed after the watermark can
-- change (counts only grow: a shared identifier stays shared).

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='node_key',
    on_schema_change='append_new_columns',
    post_hook="{{ save_incremental_state(['int_identity_edges', 'int_identity_nodes'], identity=false) }}"
) }}

{%- set strong_types = ['customer_id', 'email', 'phone', 'social_handle'] %}

with

edges as (

    select * from {{ ref('int_identity_edges') }}

),

{% if is_incremental() %}
touched as (

    select node_key_a as node_key from edges where last_received_at > {{ received_watermark() }}
    union
    select node_key_b as node_key from edges where last_received_at > {{ received_watermark() }}
    union
    select node_key from {{ ref('int_identity_nodes') }} where last_received_at > {{ received_watermark() }}

),
{% endif %}

directed as (

    select node_key_a as node_key, identifier_type_a as identifier_type, identifier_type_b as neighbour_type
    from edges
    {%- if is_incremental() %}
    where node_key_a in (select node_key from touched)
    {%- endif %}
    union all
    select node_key_b as node_key, identifier_type_b as identifier_type, identifier_type_a as neighbour_type
    from edges
    {%- if is_incremental() %}
    where node_key_b in (select node_key from touched)
    {%- endif %}

),

-- edges are unique per pair: a count per type is a count of distinct neighbours
neighbour_counts as (

    select
        node_key,
        identifier_type,
        {% for kind in identifier_columns() -%}
        count(case when neighbour_type = '{{ kind }}' then 1 end) as n_{{ kind }},
        {% endfor -%}
        count(*) as n_neighbours

    from directed
    group by node_key, identifier_type

),

classified as (

    select
        neighbour_counts.*,
        -- the strongest type seen more often than a person may hold it, when stronger than the node's own
        case
            {%- for kind in var('identity_priority') if var('identity_max_per_person').get(kind) is not none %}
            when n_{{ kind }} > {{ var('identity_max_per_person')[kind] }}
                and {{ identifier_priority(dbt.string_literal(kind)) }} < {{ identifier_priority('identifier_type') }}
                then '{{ kind }}'
            {%- endfor %}
        end as over_limit_type,
        greatest({% for kind in strong_types %}n_{{ kind }}{% if not loop.last %}, {% endif %}{% endfor %}) as max_strong_neighbours_of_one_type

    from neighbour_counts

),

flagged as (

    select
        classified.*,
        case
            when max_strong_neighbours_of_one_type > {{ var('identity_hub_threshold') }}
                or n_neighbours > {{ var('identity_hub_max_neighbours') }} then 'hub'
            when over_limit_type is not null then 'shared'
        end as reason

    from classified
    where max_strong_neighbours_of_one_type > {{ var('identity_hub_threshold') }}
        or n_neighbours > {{ var('identity_hub_max_neighbours') }}
        or over_limit_type is not null

),

nodes as (

    select * from {{ ref('int_identity_nodes') }}

),

final as (

    select
        flagged.node_key,
        nodes.identifier_type,
        nodes.identifier_value,
        nodes.identifier_priority,
        flagged.reason,
        {%- set by_type %}
        {%- for kind in identifier_columns() %}
        case when flagged.n_{{ kind }} > 0 then '{{ kind }}=' || cast(flagged.n_{{ kind }} as {{ dbt.type_string() }}) end
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
        {%- endset %}
        case flagged.reason
            when 'hub' then 'seen with ' || concat_ws(', ', {{ by_type }}) || ' (hub)'
            else 'seen with more ' || flagged.over_limit_type || ' values than one person may hold: '
                || concat_ws(', ', {{ by_type }})
        end as reason_detail,
        flagged.over_limit_type,
        flagged.max_strong_neighbours_of_one_type,
        cast(flagged.n_neighbours as {{ dbt.type_bigint() }}) as n_neighbours,
        concat_ws(', ', {{ by_type }}) as neighbours_by_type,
        nodes.first_seen_at,
        nodes.last_seen_at,
        nodes.n_events,
        nodes.last_received_at

    from flagged
    inner join nodes
        on flagged.node_key = nodes.node_key
    where not nodes.is_blocklisted

)

select * from final
