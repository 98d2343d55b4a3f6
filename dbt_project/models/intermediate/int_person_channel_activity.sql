-- Activity of every person on every channel (the three interaction
-- channels and the consent and identity topics): counts, first and last
-- event, marketing sends, engagement, purchases and the sentiment of what
-- the person wrote on social networks. The per-person input of
-- channel_engagement and customer_360, maintained incrementally (strategy
-- replace_partitions, one partition per person): the rows of every person
-- with a newly landed event, a newly scored social message or an identity
-- change are recomputed from all of the person's events; a person that no
-- longer exists (merged into another) is emptied.

{#- on_schema_change ignore: the batch's _tombstone column is not one of the table -#}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_partitions',
    unique_key='person_id',
    on_schema_change='ignore',
    post_hook="{{ save_incremental_state('int_events', sentiment=true) }}"
) }}

-- depends_on: {{ ref('int_identity_history') }}
-- depends_on: {{ ref('int_events') }}
-- depends_on: {{ source('sentiment', 'social_sentiment') }}

{%- set weights = var('engagement_weights', {}) %}
{%- set authored = "(interactions.event_type in ('social.mention', 'social.comment') or (interactions.event_type = 'social.direct_message' and not interactions.is_brand_sent))" %}

with

{% if is_incremental() %}
changed_persons as (

    {{ changed_persons(sentiment=true) }}

),
{% endif %}

events as (

    select event_id, person_id, channel, event_type, occurred_at, last_received_at
    from {{ ref('int_events') }}
    where person_id is not null
    {%- if is_incremental() %}
        and person_id in (select person_id from changed_persons)
    {%- endif %}

),

-- the interactions as judged by fct_interactions (built just before, incrementally)
interactions as (

    select * from {{ ref('fct_interactions') }}
    where person_id is not null
    {%- if is_incremental() %}
        and person_id in (select person_id from changed_persons)
    {%- endif %}

),

joined as (

    select
        events.person_id,
        events.channel,
        events.event_type,
        events.occurred_at,
        events.event_id,
        events.last_received_at,
        coalesce(interactions.is_marketing_send, false) as is_marketing_send,
        coalesce(interactions.consent_in_force, false) as consent_in_force,
        coalesce(interactions.is_brand_sent, false) as is_brand_sent,
        interactions.amount,
        interactions.sentiment_score,
        interactions.sentiment_label,
        {{ authored }} as is_authored_social_message,
        case
            when interactions.is_brand_sent then 0
            {%- for event_type, weight in weights.items() %}
            when events.event_type = {{ dbt.string_literal(event_type) }} then {{ weight }}
            {%- endfor %}
            else 0
        end as engagement_weight

    from events
    left join interactions
        on events.event_id = interactions.event_id

),

final as (

    select
        person_id,
        channel,
        count(*) as n_events,
        min(occurred_at) as first_event_at,
        max(occurred_at) as last_event_at,
        count(case when is_marketing_send then 1 end) as marketing_sends,
        count(case when is_marketing_send and not consent_in_force then 1 end) as marketing_sends_without_consent,
        count(case when event_type = 'email.opened' then 1 end) as email_opens,
        count(case when event_type = 'email.clicked' then 1 end) as email_clicks,
        count(case when event_type = 'mobile.push_opened' then 1 end) as push_opens,
        count(case when event_type = 'mobile.purchase' then 1 end) as purchases,
        coalesce(sum(case when event_type = 'mobile.purchase' then amount end), 0) as revenue,
        min(case when event_type = 'mobile.purchase' then occurred_at end) as first_purchase_at,
        max(case when event_type = 'mobile.purchase' then occurred_at end) as last_purchase_at,
        cast(sum(cast(engagement_weight as decimal(18, 3))) as double) as engagement_score,
        count(case when is_authored_social_message then 1 end) as social_messages,
        count(case when is_authored_social_message and sentiment_score is not null then 1 end) as scored_social_messages,
        -- exact decimal sums: a float sum depends on the order rows are added in, so an
        -- incremental build could differ from a full refresh in the last digit
        sum(case when is_authored_social_message then cast(sentiment_score as decimal(18, 9)) end) as sentiment_score_sum,
        {{ arg_max_by("case when is_authored_social_message and sentiment_score is not null then sentiment_score end",
                      ["is_authored_social_message and sentiment_score is not null", "occurred_at", "event_id"]) }} as latest_sentiment_score,
        {{ arg_max_by("case when is_authored_social_message and sentiment_score is not null then sentiment_label end",
                      ["is_authored_social_message and sentiment_score is not null", "occurred_at", "event_id"]) }} as latest_sentiment_label,
        max(case when is_authored_social_message and sentiment_score is not null then occurred_at end) as latest_sentiment_at,
        max(last_received_at) as last_received_at
        {%- if is_incremental() %},
        false as _tombstone
        {%- endif %}

    from joined
    group by person_id, channel

    {%- if is_incremental() %}

    union all

    -- one tombstone per recomputed person: empties the persons that no longer exist
    select
        person_id, null, null, null, null, null, null, null, null, null, null, null, null, null,
        null, null, null, null, null, null, null, null,
        true as _tombstone
    from changed_persons
    {%- endif %}

)

select * from final
