-- Identity-graph nodes: one row per normalised identifier seen on any event,
-- with its evidence (first / last event time, first event, number of
-- events) and whether it is a placeholder (var identity_blocklist /
-- identity_blocklist_patterns): placeholders are nodes of nobody.
-- Incremental: the nodes carried by events landed after this model's newest
-- last_received_at (less the lookback) are recomputed from all their events.

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='node_key',
    on_schema_change='append_new_columns'
) }}

with

event_identifiers as (

    select * from {{ ref('int_event_identifiers') }}
    {%- if is_incremental() %}
    where node_key in (
        select node_key
        from {{ ref('int_event_identifiers') }}
        where last_received_at > {{ own_received_watermark() }}
    )
    {%- endif %}

),

aggregated as (

    select
        node_key,
        identifier_type,
        identifier_value,
        min(identifier_priority) as identifier_priority,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        {{ arg_min_by('event_id', ['occurred_at', 'event_id']) }} as first_event_id,
        count(*) as n_events,
        max(last_received_at) as last_received_at

    from event_identifiers
    group by node_key, identifier_type, identifier_value

),

final as (

    select
        node_key,
        identifier_type,
        identifier_value,
        identifier_priority,
        {{ is_blocklisted_identifier('identifier_type', 'identifier_value') }} as is_blocklisted,
        first_seen_at,
        last_seen_at,
        first_event_id,
        n_events,
        last_received_at

    from aggregated

)

-- written in landing order: DuckDB skips the row groups older than a watermark by their min/max
select * from final
order by last_received_at
