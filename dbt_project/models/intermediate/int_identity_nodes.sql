-- Identity-graph nodes: one row per normalised identifier seen on any event,
-- with its evidence (first / last event time, first event, number of
-- events) and whether it is a placeholder (var identity_blocklist /
-- identity_blocklist_patterns): placeholders are nodes of nobody.
-- Incremental: the nodes carried by events landed after this model's newest
-- last_received_at (less the lookback) are updated: their number of events is
-- counted again from all their evidence (one column of int_event_identifiers:
-- the lookback re-reads events already counted), and first / last event time,
-- first event and last landing time, which the rows already counted cannot
-- move, are the least / greatest of the stored row and the landed evidence.
-- An event's identifiers and times never change (a redelivery is the same
-- record), so the result is the same as a full refresh; a node without a
-- stored row but with older evidence (its row deleted, e.g. by an erasure) is
-- recomputed from all of it.

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='node_key',
    on_schema_change='append_new_columns'
) }}

with

{% if is_incremental() %}
-- the evidence landed after the watermark (the table is in landing order: the old row groups
-- are skipped by their min/max)
landed as (

    select * from {{ ref('int_event_identifiers') }}
    where last_received_at > {{ own_received_watermark() }}

),

landed_aggregated as (

    {{ node_aggregates('landed') | indent(4) }}

),

-- the number of events of those identifiers, from all their evidence (node keys only)
counted as (

    select node_key, count(*) as n_events
    from {{ ref('int_event_identifiers') }}
    where node_key in (select node_key from landed_aggregated)
    group by node_key

),

stored as (

    select * from {{ this }}
    where node_key in (select node_key from landed_aggregated)

),

-- identifiers without a stored row but with evidence landed earlier: recomputed from all of it
-- (none, usually: a lookup of nothing reads nothing)
unknown as (

    select landed_aggregated.node_key
    from landed_aggregated
    inner join counted
        on landed_aggregated.node_key = counted.node_key
    anti join stored
        on landed_aggregated.node_key = stored.node_key
    where counted.n_events > landed_aggregated.n_events

),

recomputed as (

    {{ node_aggregates(ref('int_event_identifiers'), where='node_key in (select node_key from unknown)') | indent(4) }}

),

aggregated as (

    select
        landed_aggregated.node_key,
        landed_aggregated.identifier_type,
        landed_aggregated.identifier_value,
        least(landed_aggregated.identifier_priority, stored.identifier_priority) as identifier_priority,
        least(landed_aggregated.first_seen_at, stored.first_seen_at) as first_seen_at,
        greatest(landed_aggregated.last_seen_at, stored.last_seen_at) as last_seen_at,
        -- the first event: the least (event time, event_id) of both
        case
            when stored.node_key is null
                or landed_aggregated.first_seen_at < stored.first_seen_at
                or (landed_aggregated.first_seen_at = stored.first_seen_at
                    and landed_aggregated.first_event_id < stored.first_event_id)
                then landed_aggregated.first_event_id
            else stored.first_event_id
        end as first_event_id,
        counted.n_events,
        greatest(landed_aggregated.last_received_at, stored.last_received_at) as last_received_at

    from landed_aggregated
    inner join counted
        on landed_aggregated.node_key = counted.node_key
    left join stored
        on landed_aggregated.node_key = stored.node_key
    where landed_aggregated.node_key not in (select node_key from recomputed)

    union all

    select * from recomputed

),
{% else %}
aggregated as (

    {{ node_aggregates(ref('int_event_identifiers')) | indent(4) }}

),
{% endif %}

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
