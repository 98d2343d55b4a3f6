-- Consent conflicts between the identifiers of one person, made visible:
-- for every person x purpose x scope whose consent events came from
-- different identifiers (e.g. a grant through the email, a withdrawal
-- through the app's device id) and disagree, one row per consent event of
-- that history, with the identifiers it came from (keyed hashes), the event
-- before it, and the event that won (the latest in event time; a withdrawal
-- wins a tie). The identifiers appear as '<type>=<keyed hash>' where the
-- hash is the one of the published identity_map.identifier_hash:
-- sha256(OMNIVUE_PSEUDONYM_KEY || ':' || type || ':' || value) (DuckDB's
-- sha256(): no cross-database macro exists).
-- Incremental (strategy replace_partitions, one partition per person): the
-- persons with a newly landed consent event or an identity change (the same
-- persons int_consent_intervals recomputes) are recomputed; a person that
-- no longer exists is emptied.

{#- on_schema_change ignore: the batch's _tombstone column is not one of the table -#}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_partitions',
    unique_key='person_id',
    on_schema_change='ignore',
    post_hook="{{ save_incremental_state('int_events') }}"
) }}

-- depends_on: {{ ref('int_identity_history') }}
-- depends_on: {{ ref('int_events') }}

{%- set pseudonym_key = env_var('OMNIVUE_PSEUDONYM_KEY', 'omnivue-local-dev-key') | replace("'", "''") %}

with

{% if is_incremental() %}
changed_persons as (

    {{ changed_persons(channels=['consent']) }}

),
{% endif %}

consent_history as (

    select * from {{ ref('int_consent_history') }}
    {%- if is_incremental() %}
    where person_id in (select person_id from changed_persons)
    {%- endif %}

),

consent_identifiers as (

    select distinct
        event_id,
        identifier_type,
        sha256('{{ pseudonym_key }}' || ':' || identifier_type || ':' || identifier_value) as identifier_hash

    from {{ ref('int_event_identifiers') }}
    where channel = 'consent'
    {%- if is_incremental() %}
        and event_id in (select consent_event_id from consent_history)
    {%- endif %}

),

event_sources as (

    select
        event_id,
        {{ dbt.listagg("identifier_type || '=' || identifier_hash", "','", "order by identifier_type, identifier_hash") }}
            as source_identifiers

    from consent_identifiers
    group by event_id

),

with_sources as (

    select
        consent_history.*,
        coalesce(event_sources.source_identifiers, '') as source_identifiers

    from consent_history
    left join event_sources
        on consent_history.consent_event_id = event_sources.event_id

),

conflicted as (

    select
        person_id,
        purpose,
        scope

    from with_sources
    group by person_id, purpose, scope
    having count(distinct status) > 1
        and count(distinct source_identifiers) > 1

),

winners as (

    select
        person_id,
        purpose,
        scope,
        consent_event_id as winning_event_id,
        status as winning_status,
        source_identifiers as winning_source_identifiers,
        valid_from as winning_occurred_at

    from with_sources
    where is_latest

),

sequenced as (

    select
        with_sources.*,
        lag(with_sources.status) over (
            partition by with_sources.person_id, with_sources.purpose, with_sources.scope
            order by with_sources.sequence_number
        ) as previous_status,
        lag(with_sources.source_identifiers) over (
            partition by with_sources.person_id, with_sources.purpose, with_sources.scope
            order by with_sources.sequence_number
        ) as previous_source_identifiers

    from with_sources
    inner join conflicted
        on with_sources.person_id = conflicted.person_id
        and with_sources.purpose = conflicted.purpose
        and with_sources.scope = conflicted.scope

),

final as (

    select
        sequenced.consent_history_id,
        sequenced.person_id,
        sequenced.purpose,
        sequenced.scope,
        sequenced.sequence_number,
        sequenced.consent_event_id,
        sequenced.consent_event_type,
        sequenced.status,
        sequenced.valid_from as occurred_at,
        sequenced.valid_to,
        sequenced.source,
        sequenced.source_identifier_types,
        sequenced.source_identifiers,
        sequenced.previous_status,
        sequenced.previous_source_identifiers,
        coalesce(
            sequenced.previous_status <> sequenced.status
            and sequenced.previous_source_identifiers <> sequenced.source_identifiers,
            false
        ) as overrides_other_identifier,
        winners.winning_event_id,
        winners.winning_status,
        winners.winning_source_identifiers,
        winners.winning_occurred_at,
        sequenced.consent_event_id = winners.winning_event_id as is_winner,
        sequenced.status <> winners.winning_status as lost_to_winner
        {%- if is_incremental() %},
        false as _tombstone
        {%- endif %}

    from sequenced
    inner join winners
        on sequenced.person_id = winners.person_id
        and sequenced.purpose = winners.purpose
        and sequenced.scope = winners.scope

    {%- if is_incremental() %}

    union all

    -- one tombstone per recomputed person: empties the persons that no longer exist
    select
        null, person_id, {% for i in range(20) %}null, {% endfor %}true as _tombstone
    from changed_persons
    {%- endif %}

)

select * from final
