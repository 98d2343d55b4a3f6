-- Every marketing send judged against marketing consent at that instant:
-- email.sent (scope email), mobile.push_sent (scope push), a brand-sent
-- social.direct_message (scope social). consent_ok is false when no grant
-- was in force at occurred_at, including when there was no consent event
-- at all before the send, or the send cannot be attributed to a person.
-- Incremental like fct_interactions (same scope rule, its own watermark).

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='event_id',
    on_schema_change='append_new_columns',
    post_hook="{{ save_incremental_state('int_events', sentiment=true) }}"
) }}

-- depends_on: {{ ref('int_identity_history') }}
-- depends_on: {{ ref('int_events') }}
-- depends_on: {{ source('sentiment', 'social_sentiment') }}

with

{% if is_incremental() %}
changed_persons as (

    {{ changed_persons(channels=['consent']) }}

),

scope as (

    {{ interaction_scope() }}

),
{% endif %}

marketing_sends as (

    -- the interactions as judged by fct_interactions (built just before, incrementally)
    select * from {{ ref('fct_interactions') }}
    where is_marketing_send
    {%- if is_incremental() %}
        and event_id in (select event_id from scope)
    {%- endif %}

),

final as (

    select
        event_id,
        person_id,
        event_type,
        channel,
        occurred_at,
        source,
        campaign_id,
        consent_scope as scope,
        consent_purpose as purpose,
        consent_in_force as consent_ok,
        consent_status,
        consent_event_id,
        consent_valid_from,
        consent_valid_to,
        case
            when consent_in_force then null
            when person_id is null then 'unattributed_send'
            when consent_status = 'withdrawn' then 'consent_withdrawn'
            else 'no_consent'
        end as violation_reason

    from marketing_sends

)

select * from final
