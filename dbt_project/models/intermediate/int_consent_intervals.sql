-- Consent state as validity intervals: one row per consent event x scope
-- (scope 'all' expanded to every scope of var consent_scopes), attributed
-- to the person of the event. Ordered by event time only, so late or
-- out-of-order arrival does not matter. Within one person/purpose/scope a
-- row is valid from its occurred_at to the occurred_at of the next event
-- (null = still the latest). Events at the same instant: the withdrawal
-- sorts last and wins; the tied grant gets an empty interval
-- (valid_from = valid_to). Interval test: valid_from <= t and
-- (valid_to is null or t < valid_to). int_consent_history adds is_current.
-- Incremental (strategy replace_partitions, one partition per person): the
-- whole history of every person with a newly landed consent event or an
-- identity change is recomputed; a person that no longer exists is emptied.

{#- on_schema_change ignore: the batch's _tombstone column is not one of the table -#}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_partitions',
    unique_key='person_id',
    on_schema_change='ignore',
    post_hook="{{ save_incremental_state('int_events') }}"
) }}

-- depends_on: {{ ref('int_identity_history') }}

with

{% if is_incremental() %}
changed_persons as (

    {{ changed_persons(channels=['consent']) }}

),
{% endif %}

consent_events as (

    select * from {{ ref('stg_landing__consent_events') }}

),

events as (

    select * from {{ ref('int_events') }}
    where channel = 'consent'
        -- a consent event none of whose identifiers is attributed cannot be
        -- attributed to anybody: it grants nothing and withdraws nothing
        and person_id is not null
    {%- if is_incremental() %}
        and {{ keyed_in('person_id', 'person_key', 'changed_persons') }}
    {%- endif %}

),

{% if is_incremental() %}
-- the attributed identifiers of the recomputed events, unpivoted from their rows in int_events
-- (the rows int_event_identifiers holds for them): finding those by event_id would read the
-- whole of int_event_identifiers
event_identifiers as (

    select event_node_keys.event_id, event_node_keys.identifier_type
    from (
        {{ event_node_keys('events') | indent(8) }}
    ) as event_node_keys
    inner join {{ ref('int_identity_components') }} as identity_components
        on event_node_keys.node_key = identity_components.node_key

),
{% else %}
event_identifiers as (

    select event_identifiers.event_id, event_identifiers.identifier_type
    from {{ ref('int_event_identifiers') }} as event_identifiers
    inner join {{ ref('int_identity_components') }} as identity_components
        on event_identifiers.node_key = identity_components.node_key
    where event_identifiers.channel = 'consent'

),
{% endif %}

source_identifiers as (

    select
        event_id,
        {{ dbt.listagg('identifier_type', "','", 'order by identifier_type') }} as source_identifier_types

    from (
        select distinct event_identifiers.event_id, event_identifiers.identifier_type
        from event_identifiers
        inner join events
            on event_identifiers.event_id = events.event_id
    ) as distinct_types
    group by event_id

),

scopes as (

    {{ literal_rows('scope', var('consent_scopes')) }}

),

attributed as (

    select
        consent_events.event_id as consent_event_id,
        events.person_id,
        consent_events.event_type,
        consent_events.consent_status as status,
        consent_events.purpose,
        consent_events.scope as requested_scope,
        consent_events.occurred_at,
        consent_events.source,
        events.last_received_at,
        source_identifiers.source_identifier_types

    from consent_events
    inner join events
        on consent_events.event_id = events.event_id
    left join source_identifiers
        on consent_events.event_id = source_identifiers.event_id

),

expanded as (

    select
        attributed.*,
        scopes.scope

    from attributed
    inner join scopes
        on attributed.requested_scope = scopes.scope
        or attributed.requested_scope = 'all'

),

sequenced as (

    select
        expanded.*,
        row_number() over (
            partition by person_id, purpose, scope
            order by occurred_at, {{ consent_status_rank('status') }}, consent_event_id
        ) as sequence_number,
        lead(occurred_at) over (
            partition by person_id, purpose, scope
            order by occurred_at, {{ consent_status_rank('status') }}, consent_event_id
        ) as valid_to

    from expanded

),

final as (

    select
        {{ dbt.hash(dbt.concat(['consent_event_id', "'|'", 'scope'])) }} as consent_history_id,
        person_id,
        purpose,
        scope,
        status,
        occurred_at as valid_from,
        valid_to,
        valid_to is null as is_latest,
        sequence_number,
        consent_event_id,
        event_type as consent_event_type,
        requested_scope,
        source,
        source_identifier_types,
        last_received_at
        {%- if is_incremental() %},
        false as _tombstone
        {%- endif %}

    from sequenced

    {%- if is_incremental() %}

    union all

    -- one tombstone per recomputed person: empties the persons that no longer exist
    select
        null, person_id, null, null, null, null, null, null, null, null, null, null, null, null, null,
        true as _tombstone
    from changed_persons
    {%- endif %}

)

select * from final
