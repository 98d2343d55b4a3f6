-- Every social / email / mobile interaction (not consent / identity
-- events), one row per event_id, with its person, whether marketing consent
-- for the channel's scope was in force at that instant, and the sentiment of
-- its text. Incremental (delete+insert on event_id): new interactions, every
-- interaction of a person whose identity changed, and those of a person with
-- a new marketing consent event whose consent row can change (its scope, at
-- or after the event, or in a row still in force then) are rebuilt
-- (macros/incremental/interaction_scope.sql); the result is the same as a
-- full refresh.

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='event_id',
    on_schema_change='append_new_columns',
    pre_hook="{{ ensure_key_column('person_key', 'person_id') }}",
    post_hook="{{ save_incremental_state('int_events', sentiment=true, event_log=true) }}"
) }}

-- depends_on: {{ ref('int_identity_history') }}
-- depends_on: {{ ref('int_events') }}
-- depends_on: {{ ref('int_event_log') }}
-- depends_on: {{ ref('stg_landing__consent_events') }}
-- depends_on: {{ source('sentiment', 'social_sentiment') }}

with

{% if is_incremental() %}
identity_changed as (

    {{ identity_changed_persons() }}

),

consent_changes as (

    {{ marketing_consent_changes() }}

),

scope as (

    {{ interaction_scope() }}

),
{% endif %}

-- int_interactions_with_consent, its inputs restricted to the rebuilt events
interactions as (

    {{ interactions_with_consent('scope' if is_incremental() else none) | indent(4) }}

),

final as (

    select
        event_id,
        person_id,
        event_type,
        channel,
        occurred_at,
        -- producers' codes, but an email or a phone number in them is masked (macros/privacy/)
        {{ mask_contact_details('source') }} as source,
        {{ mask_contact_details('campaign_id') }} as campaign_id,
        platform,
        lang,
        is_brand_sent,
        amount,
        currency,
        sentiment_score,
        sentiment_label,
        is_marketing_send,
        consent_scope,
        consent_purpose,
        consent_in_force,
        consent_status,
        consent_event_id,
        consent_valid_from,
        consent_valid_to,
        -- the person's hashed key, for lookups by person (macros/cross_db/key_hash.sql)
        {{ key_hash('person_id') }} as person_key

    from interactions

)

select * from final
