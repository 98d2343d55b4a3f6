{#-
    The body of int_interactions_with_consent: every social / email / mobile
    interaction with its person, its channel attributes, whether it is a
    marketing send, the marketing consent row in force at its occurred_at and
    its sentiment. scope: the name of a relation or CTE with an event_id
    column; when given, every input (int_events, the three staging models,
    the sentiment scores, the consent intervals of the events' persons) is
    restricted to those events before the joins, so an incremental model
    (fct_interactions) pays for what it rebuilds, not for the warehouse.
-#}
{% macro interactions_with_consent(scope=none) -%}

with

events as (

    select * from {{ ref('int_events') }}
    where channel in ('social', 'email', 'mobile')
    {%- if scope %}
        and event_id in (select event_id from {{ scope }})
    {%- endif %}

),

social_events as (

    select * from {{ ref('stg_landing__social_events') }}
    {%- if scope %}
    where event_id in (select event_id from {{ scope }})
    {%- endif %}

),

email_events as (

    select * from {{ ref('stg_landing__email_events') }}
    {%- if scope %}
    where event_id in (select event_id from {{ scope }})
    {%- endif %}

),

mobile_events as (

    select * from {{ ref('stg_landing__mobile_events') }}
    {%- if scope %}
    where event_id in (select event_id from {{ scope }})
    {%- endif %}

),

sentiment as (

    select * from {{ source('sentiment', 'social_sentiment') }}
    {%- if scope %}
    where event_id in (select event_id from {{ scope }})
    {%- endif %}

),

marketing_consent as (

    select * from {{ ref('int_consent_intervals') }}
    where purpose = 'marketing'
    {%- if scope %}
        and person_id in (select person_id from events)
    {%- endif %}

),

enriched as (

    select
        events.event_id,
        events.person_id,
        events.event_type,
        events.channel,
        events.occurred_at,
        events.source,
        events.kafka_topic,
        events.n_usable_identifiers,
        events.last_received_at,
        email_events.campaign_id,
        coalesce(social_events.is_brand_sent, false) as is_brand_sent,
        social_events.platform,
        social_events.post_id,
        social_events.lang,
        mobile_events.amount,
        mobile_events.currency,
        sentiment.score as sentiment_score,
        sentiment.label as sentiment_label,
        sentiment.scored_at as sentiment_scored_at,
        {{ is_marketing_send('events.event_type', 'social_events.is_brand_sent') }} as is_marketing_send,
        {{ consent_scope_for_channel('events.channel') }} as consent_scope

    from events
    left join social_events
        on events.event_id = social_events.event_id
    left join email_events
        on events.event_id = email_events.event_id
    left join mobile_events
        on events.event_id = mobile_events.event_id
    left join sentiment
        on events.event_id = sentiment.event_id

),

checked as (

    select
        enriched.*,
        'marketing' as consent_purpose,
        marketing_consent.consent_event_id,
        marketing_consent.status as consent_event_status,
        marketing_consent.valid_from as consent_valid_from,
        marketing_consent.valid_to as consent_valid_to

    from enriched
    left join marketing_consent
        on enriched.person_id = marketing_consent.person_id
        and enriched.consent_scope = marketing_consent.scope
        and {{ in_interval('enriched.occurred_at', 'marketing_consent.valid_from', 'marketing_consent.valid_to') }}

),

final as (

    select
        event_id,
        person_id,
        event_type,
        channel,
        occurred_at,
        source,
        kafka_topic,
        n_usable_identifiers,
        last_received_at,
        campaign_id,
        is_brand_sent,
        platform,
        post_id,
        lang,
        amount,
        currency,
        sentiment_score,
        sentiment_label,
        sentiment_scored_at,
        is_marketing_send,
        consent_scope,
        consent_purpose,
        coalesce(consent_event_status, 'none') as consent_status,
        coalesce(consent_event_status = 'granted', false) as consent_in_force,
        consent_event_id,
        consent_valid_from,
        consent_valid_to

    from checked

)

select * from final
{%- endmacro %}
