-- One row per person with everything customer_360 says about them that does
-- not depend on the evaluation instant or on other people: identifiers,
-- activity, first and last interaction and engagement per channel,
-- purchases, sends, and the sentiment of what they wrote on social
-- networks. Incremental (strategy replace_partitions, one partition per
-- person): the persons of int_person_channel_activity recomputed since the
-- watermark (a new event in int_event_log, a newly scored message; an event
-- the lookback reads again changes nothing here), and persons whose
-- identifiers changed; a person that no longer exists is removed.

{%- set interaction_channels = ['social', 'email', 'mobile'] %}
{%- set contactable = ['customer_id', 'email', 'phone', 'social_handle'] %}

{#- on_schema_change ignore: the batch's _tombstone column is not one of the table -#}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_partitions',
    unique_key='person_id',
    on_schema_change='ignore',
    post_hook="{{ save_incremental_state('int_events', sentiment=true, event_log=true) }}"
) }}

-- depends_on: {{ ref('int_identity_history') }}
-- depends_on: {{ ref('int_events') }}
-- depends_on: {{ ref('int_event_log') }}
-- depends_on: {{ source('sentiment', 'social_sentiment') }}

with

{% if is_incremental() %}
changed_persons as (

    {{ changed_persons(sentiment=true, new_events_only=true) }}

),
{% endif %}

identity_components as (

    select * from {{ ref('int_identity_components') }}
    {%- if is_incremental() %}
    where person_id in (select person_id from changed_persons)
    {%- endif %}

),

activity as (

    select * from {{ ref('int_person_channel_activity') }}
    {%- if is_incremental() %}
    where person_id in (select person_id from changed_persons)
    {%- endif %}

),

identifiers as (

    select
        person_id,
        count(*) as n_identifiers,
        {{ dbt.bool_or("identifier_type = 'customer_id'") }} as has_customer_id,
        {{ dbt.bool_or("identifier_type in (" ~ sql_literal_list(contactable) ~ ")") }} as has_contactable_identifier

    from identity_components
    group by person_id

),

per_person as (

    select
        person_id,
        min(first_event_at) as first_seen_at,
        max(last_event_at) as last_seen_at,
        sum(n_events) as n_events,
        {% for channel in interaction_channels -%}
        sum(case when channel = '{{ channel }}' then n_events else 0 end) as {{ channel }}_interactions,
        min(case when channel = '{{ channel }}' then first_event_at end) as first_{{ channel }}_interaction_at,
        max(case when channel = '{{ channel }}' then last_event_at end) as last_{{ channel }}_interaction_at,
        cast(sum(case when channel = '{{ channel }}' then cast(engagement_score as decimal(18, 3)) else 0 end) as double) as {{ channel }}_engagement_score,
        {% endfor -%}
        {{ dbt.listagg("case when channel in ('social', 'email', 'mobile') then channel end", "','", 'order by channel') }} as channels_used,
        count(case when channel in ('social', 'email', 'mobile') then 1 end) as n_channels,
        sum(purchases) as purchases,
        sum(revenue) as revenue,
        min(first_purchase_at) as first_purchase_at,
        max(last_purchase_at) as last_purchase_at,
        sum(marketing_sends) as marketing_sends,
        sum(marketing_sends_without_consent) as marketing_sends_without_consent,
        sum(social_messages) as social_mentions,
        sum(scored_social_messages) as scored_social_mentions,
        sum(sentiment_score_sum) as sentiment_score_sum,
        {{ arg_max_by('latest_sentiment_score', ['latest_sentiment_at']) }} as latest_sentiment_score,
        {{ arg_max_by('latest_sentiment_label', ['latest_sentiment_at']) }} as latest_sentiment_label,
        max(latest_sentiment_at) as latest_sentiment_at

    from activity
    group by person_id

),

final as (

    select
        identifiers.person_id,
        identifiers.n_identifiers,
        identifiers.has_customer_id,
        identifiers.has_contactable_identifier,
        per_person.first_seen_at,
        per_person.last_seen_at,
        coalesce(per_person.n_events, 0) as n_events,
        {% for channel in interaction_channels -%}
        coalesce(per_person.{{ channel }}_interactions, 0) as {{ channel }}_interactions,
        per_person.first_{{ channel }}_interaction_at,
        per_person.last_{{ channel }}_interaction_at,
        coalesce(per_person.{{ channel }}_engagement_score, 0) as {{ channel }}_engagement_score,
        {% endfor -%}
        per_person.channels_used,
        coalesce(per_person.n_channels, 0) as n_channels,
        coalesce(per_person.purchases, 0) as purchases,
        coalesce(per_person.revenue, 0) as revenue,
        per_person.first_purchase_at,
        per_person.last_purchase_at,
        coalesce(per_person.marketing_sends, 0) as marketing_sends,
        coalesce(per_person.marketing_sends_without_consent, 0) as marketing_sends_without_consent,
        coalesce(per_person.social_mentions, 0) as social_mentions,
        coalesce(per_person.scored_social_mentions, 0) as scored_social_mentions,
        case when per_person.scored_social_mentions > 0
            then cast(per_person.sentiment_score_sum as double) / per_person.scored_social_mentions end as avg_sentiment_score,
        per_person.latest_sentiment_score,
        per_person.latest_sentiment_label,
        per_person.latest_sentiment_at
        {%- if is_incremental() %},
        false as _tombstone
        {%- endif %}

    from identifiers
    left join per_person
        on identifiers.person_id = per_person.person_id

    {%- if is_incremental() %}

    union all

    select
        person_id,
        {% for i in range(4 + 3 + 4 * interaction_channels | length + 13) -%}
        null,
        {% endfor -%}
        true
    from changed_persons
    {%- endif %}

)

select * from final
