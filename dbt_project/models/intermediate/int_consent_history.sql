-- Consent state as a history of validity intervals: one row per consent
-- event x person x purpose x scope (scope 'all' expanded to every scope of
-- var consent_scopes). Ordered by event time only, so late or out-of-order
-- arrival does not matter. Within one person/purpose/scope a row is valid
-- from its occurred_at to the occurred_at of the next event (null = still
-- the latest). Events at the same instant: the withdrawal sorts last and
-- wins; the tied grant gets an empty interval (valid_from = valid_to).
-- Interval test: valid_from <= t and (valid_to is null or t < valid_to).

with

consent_events as (

    select * from {{ ref('stg_landing__consent_events') }}

),

events as (

    select * from {{ ref('int_events') }}
    where channel = 'consent'

),

event_identifiers as (

    select * from {{ ref('int_event_identifiers') }}
    where channel = 'consent'

),

source_identifiers as (

    select
        event_id,
        {{ dbt.listagg('identifier_type', "','", 'order by identifier_type') }} as source_identifier_types

    from (select distinct event_id, identifier_type from event_identifiers) as distinct_types
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
        source_identifiers.source_identifier_types

    from consent_events
    inner join events
        on consent_events.event_id = events.event_id
    left join source_identifiers
        on consent_events.event_id = source_identifiers.event_id
    -- a consent event none of whose identifiers is usable cannot be
    -- attributed to anybody: it grants nothing and withdraws nothing
    where events.person_id is not null

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
        {{ in_interval(consent_as_of(), 'occurred_at', 'valid_to') }} as is_current,
        sequence_number,
        consent_event_id,
        event_type as consent_event_type,
        requested_scope,
        source,
        source_identifier_types

    from sequenced

)

select * from final
