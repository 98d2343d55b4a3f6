-- Every staged event of the five topics with its person: the person of its
-- strongest attributed identifier (var identity_priority). Identifiers that
-- are placeholders or shared belong to nobody, so an event carried by a
-- family tablet and a customer_id belongs to the customer; an event whose
-- identifiers are all nobody's has no person.
-- Incremental: the events landed after the watermark, and every event
-- carrying an identifier whose person changed in an identity run after the
-- watermark (retroactive stitching: the anonymous events of a person who
-- logs in later move to that person), are recomputed.

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='event_id',
    on_schema_change='append_new_columns',
    pre_hook="{{ ensure_key_column('person_key', 'person_id') }}",
    post_hook="{{ save_incremental_state(staged_event_models()) }}"
) }}

-- depends_on: {{ ref('int_identity_history') }}

with

{% if not is_incremental() %}
events as (

    {{ union_staged_events() }}

),
{% endif %}

{% if is_incremental() %}
-- the staged rows of the events landed after the watermark (the staging models are in
-- landing order: their old row groups are skipped by their min/max)
landed_events as (

    {{ union_staged_events(where='last_received_at > ' ~ received_watermark()) }}

),

-- the other events carrying an identifier whose person changed (retroactive stitching),
-- found by the identifiers' hashed keys (node_hash: one fixed-width column, where comparing
-- node_key would decompress all the node_key strings of int_event_identifiers). A hash
-- collision only adds an event whose person did not change: it is recomputed, from the same
-- staged rows, to the same row. Its staged rows are looked up by event_id, a pass over the
-- staged event ids, only when there are some
stitched as (

    select event_identifiers.event_id
    from {{ ref('int_event_identifiers') }} as event_identifiers
    where {{ hashed_in('node_key', 'node_hash', '(
            select node_key
            from ' ~ ref('int_identity_history') ~ '
            where identity_run > ' ~ identity_run_watermark() ~ '
        ) as changed_nodes', prefix='event_identifiers.') }}
        and event_identifiers.event_id not in (select event_id from landed_events)

),

scoped_events as (

    select * from landed_events

    union all

    select * from (
        {{ union_staged_events() | indent(8) }}
    ) as events
    where event_id in (select event_id from stitched)

),

-- the identifiers of the rebuilt events, unpivoted from their staged rows (as
-- int_event_identifiers does): cheaper than finding their rows there by event_id
event_identifiers as (

    {{ event_node_keys('scoped_events') | indent(4) }}

),
{% else %}
event_identifiers as (

    select * from {{ ref('int_event_identifiers') }}

),
{% endif %}

identity_components as (

    select * from {{ ref('int_identity_components') }}

),

event_persons as (

    select
        event_identifiers.event_id,
        {{ arg_min_by('identity_components.person_id', ['identity_components.identifier_priority']) }} as person_id,
        {{ arg_min_by('identity_components.identifier_type', ['identity_components.identifier_priority']) }} as attributed_by,
        count(*) as n_usable_identifiers

    from event_identifiers
    inner join identity_components
        on event_identifiers.node_key = identity_components.node_key
    group by event_identifiers.event_id

),

final as (

    select
        events.event_id,
        event_persons.person_id,
        event_persons.attributed_by,
        events.event_type,
        events.channel,
        events.occurred_at,
        events.source,
        events.schema_version,
        {% for identifier in identifier_columns() -%}
        events.{{ identifier }},
        {% endfor -%}
        coalesce(event_persons.n_usable_identifiers, 0) as n_usable_identifiers,
        events.kafka_topic,
        events.kafka_partition,
        events.kafka_offset,
        events.received_at,
        events.last_received_at,
        events.n_deliveries,
        -- the person's hashed key: the models that look up the events of some persons read it
        -- instead of the person_id strings (macros/cross_db/key_hash.sql)
        {{ key_hash('event_persons.person_id') }} as person_key

    from {{ 'scoped_events' if is_incremental() else 'events' }} as events
    left join event_persons
        on events.event_id = event_persons.event_id

)

-- written in landing order: DuckDB skips the row groups older than a watermark by their min/max
select * from final
order by last_received_at
