-- Identity-graph edges: two identifiers are connected when they occur in
-- one event (any topic; identity.linked is the explicit case). Every pair
-- of an event's identifiers is an edge (an event carries at most six), so
-- the edges are the real co-occurrences that int_identity_shared_identifiers
-- counts. Placeholders (int_identity_nodes.is_blocklisted) form no edge.
-- One row per undirected pair, node_key_a < node_key_b.
-- Incremental: pairs occurring in newly landed events are recomputed from
-- every event that links them.

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='edge_id',
    on_schema_change='append_new_columns'
) }}

with

{% if is_incremental() %}
-- every identifier is a node: usable = not a placeholder (few of them)
blocklisted_nodes as (

    select node_key from {{ ref('int_identity_nodes') }}
    where is_blocklisted

),

-- the identifiers of the events landed after the watermark (an event's rows share its
-- last_received_at, and the table is in landing order: the old row groups are skipped)
new_event_identifiers as (

    select event_id, node_key
    from {{ ref('int_event_identifiers') }}
    where last_received_at > {{ own_received_watermark() }}
        and node_key not in (select node_key from blocklisted_nodes)

),

new_pairs as (

    select distinct
        a.node_key as node_key_a,
        b.node_key as node_key_b

    from new_event_identifiers as a
    inner join new_event_identifiers as b
        on a.event_id = b.event_id
        and a.node_key < b.node_key

),

-- every row of the new pairs' nodes (all usable), from all their events: all the evidence
-- of the new pairs (one pass over the node keys, filtered before anything is joined to it;
-- the pairs are formed and filtered below)
scoped_identifiers as (

    select
        event_id,
        channel,
        occurred_at,
        last_received_at,
        node_key,
        identifier_type,
        identifier_priority

    from {{ ref('int_event_identifiers') }}
    where node_key in (
        select node_key_a from new_pairs
        union
        select node_key_b from new_pairs
    )

),
{% else %}
usable_nodes as (

    select node_key from {{ ref('int_identity_nodes') }}
    where not is_blocklisted

),

event_identifiers as (

    select
        event_identifiers.event_id,
        event_identifiers.channel,
        event_identifiers.occurred_at,
        event_identifiers.last_received_at,
        event_identifiers.node_key,
        event_identifiers.identifier_type,
        event_identifiers.identifier_priority

    from {{ ref('int_event_identifiers') }} as event_identifiers
    inner join usable_nodes
        on event_identifiers.node_key = usable_nodes.node_key

),

scoped_identifiers as (

    select * from event_identifiers

),
{% endif %}

pairs as (

    select
        a.node_key as node_key_a,
        b.node_key as node_key_b,
        a.identifier_type as identifier_type_a,
        b.identifier_type as identifier_type_b,
        a.identifier_priority as identifier_priority_a,
        b.identifier_priority as identifier_priority_b,
        a.event_id,
        a.channel,
        a.occurred_at,
        a.last_received_at

    from scoped_identifiers as a
    inner join scoped_identifiers as b
        on a.event_id = b.event_id
        and a.node_key < b.node_key
    {%- if is_incremental() %}
    inner join new_pairs
        on a.node_key = new_pairs.node_key_a
        and b.node_key = new_pairs.node_key_b
    {%- endif %}

),

final as (

    select
        {{ dbt.hash(dbt.concat(['node_key_a', "'|'", 'node_key_b'])) }} as edge_id,
        node_key_a,
        node_key_b,
        identifier_type_a,
        identifier_type_b,
        identifier_priority_a,
        identifier_priority_b,
        min(occurred_at) as first_linked_at,
        {{ arg_min_by('event_id', ['occurred_at', 'event_id']) }} as first_event_id,
        max(occurred_at) as last_linked_at,
        {{ arg_max_by('event_id', ['last_received_at', 'occurred_at', 'event_id']) }} as latest_event_id,
        {{ arg_max_by('occurred_at', ['last_received_at', 'occurred_at', 'event_id']) }} as latest_event_at,
        count(*) as n_events,
        {{ dbt.bool_or("channel = 'identity'") }} as is_explicit_link,
        max(last_received_at) as last_received_at

    from pairs
    group by
        node_key_a, node_key_b, identifier_type_a, identifier_type_b,
        identifier_priority_a, identifier_priority_b

)

-- written in landing order: DuckDB skips the row groups older than a watermark by their min/max
select * from final
order by last_received_at
