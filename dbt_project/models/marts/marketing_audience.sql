-- Who may receive marketing now: one row per person x scope whose marketing
-- consent in force at the evaluation instant (var as_of / consent_as_of,
-- default: the start of the build) is a grant that is also the latest event
-- for that scope (a future-dated withdrawal, e.g. from clock skew, already
-- excludes the person: conservative). The list campaign tools activate:
-- nobody without consent in force may be in it.
-- Incremental (strategy replace_partitions, one partition per person), and
-- still exact when the evaluation instant moves: the persons recomputed are
--   - those with a newly landed consent event or an identity change;
--   - those with a marketing consent interval that starts or ends between
--     the instant of the previous build (dbt_incremental_state.evaluated_at)
--     and this one (either way: a replay at an earlier as_of works too):
--     nobody else's consent in force can differ between the two instants;
--   - the suppressed persons (int_suppressed_persons, a handful).
-- Without a previous instant every person is recomputed.

{%- set instant = build_instant() %}

{#- on_schema_change ignore: the batch's _tombstone column is not one of the table -#}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_partitions',
    unique_key='person_id',
    on_schema_change='ignore',
    post_hook="{{ save_incremental_state('int_events', evaluated_at=build_instant()) }}"
) }}

-- depends_on: {{ ref('int_identity_history') }}
-- depends_on: {{ ref('int_events') }}

with

{% if is_incremental() %}
{%- set previous_instant = _state_value('evaluated_at') %}
changed_persons as (

    {{ changed_persons(channels=['consent']) }}

    union

    select person_id from {{ ref('int_suppressed_persons') }}

    union

    select person_id
    from {{ ref('int_consent_intervals') }}
    where purpose = 'marketing'
    {%- if previous_instant %}
        and (
            valid_from between least({{ previous_instant }}, {{ instant }}) and greatest({{ previous_instant }}, {{ instant }})
            or valid_to between least({{ previous_instant }}, {{ instant }}) and greatest({{ previous_instant }}, {{ instant }})
        )
    {%- else %}

    union

    select person_id from {{ this }}
    {%- endif %}

),
{% endif %}

current_marketing_consent as (

    select * from {{ ref('int_consent_intervals') }}
    where purpose = 'marketing'
        and is_latest
        and {{ in_interval(instant, 'valid_from', 'valid_to') }}
    {%- if is_incremental() %}
        and person_id in (select person_id from changed_persons)
    {%- endif %}

),

final as (

    select
        person_id,
        scope,
        purpose,
        consent_event_id,
        valid_from as consent_granted_at
        {%- if is_incremental() %},
        false as _tombstone
        {%- endif %}

    from current_marketing_consent
    where status = 'granted'
        -- nobody erased or suppressed (their identifiers came back after an erasure)
        and person_id not in (select person_id from {{ ref('int_suppressed_persons') }})

    {%- if is_incremental() %}

    union all

    -- one tombstone per recomputed person: empties the persons that are out of the audience
    select person_id, null, null, null, null, true as _tombstone
    from changed_persons
    {%- endif %}

)

select * from final
