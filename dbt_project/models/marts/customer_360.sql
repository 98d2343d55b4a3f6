-- One row per person (identifiers resolved by the identity graph): activity
-- across channels, engagement, value (purchases, revenue, RFM), social
-- sentiment, lifecycle stage and current consent per purpose and scope.
-- No identifier values, only counts, flags and scores. A view over the
-- incrementally maintained int_person_profile (one row per person) and the
-- consent intervals: what depends on the evaluation instant (recency,
-- lapsed, current consent) or on everybody (RFM scores) is computed when
-- the view is read, so it is never stale and an incremental build does not
-- rewrite every person. Evaluation instant: var as_of (default: the time
-- of the query).

{{ config(materialized='view') }}

{%- set interaction_channels = ['social', 'email', 'mobile'] %}
{%- set consent_columns = [] %}
{%- for purpose in var('consent_purposes') %}{% for scope in var('consent_scopes') %}{% do consent_columns.append((purpose, scope)) %}{% endfor %}{% endfor %}

with

profiles as (

    select * from {{ ref('int_person_profile') }}

),

current_consent as (

    select * from {{ ref('int_consent_history') }}
    where is_current

),

consent_pivoted as (

    select
        person_id,
        {% for purpose, scope in consent_columns -%}
        max(case when purpose = '{{ purpose }}' and scope = '{{ scope }}' then status end) as consent_{{ purpose }}_{{ scope }}
        {%- if not loop.last %},{% endif %}
        {% endfor %}

    from current_consent
    group by person_id

),

-- RFM scores 1-5 among people with a purchase (ties share a score): recent, frequent, big spenders score 5
rfm as (

    select
        person_id,
        cast(ceil(5 * cume_dist() over (order by last_purchase_at)) as integer) as rfm_recency_score,
        cast(ceil(5 * cume_dist() over (order by purchases)) as integer) as rfm_frequency_score,
        cast(ceil(5 * cume_dist() over (order by revenue)) as integer) as rfm_monetary_score

    from profiles
    where purchases > 0

),

valued as (

    select
        profiles.*,
        {{ evaluation_instant() }} as evaluated_at,
        profiles.purchases > 0 or profiles.has_customer_id as is_customer,
        rfm.rfm_recency_score,
        rfm.rfm_frequency_score,
        rfm.rfm_monetary_score

    from profiles
    left join rfm
        on profiles.person_id = rfm.person_id

),

final as (

    select
        valued.person_id,
        valued.first_seen_at,
        valued.last_seen_at,
        {{ dbt.datediff('valued.first_seen_at', 'valued.last_seen_at', 'day') }} as tenure_days,
        valued.n_events,
        valued.channels_used,
        valued.n_channels,
        valued.n_channels > 1 as is_multichannel,
        {% for channel in interaction_channels -%}
        valued.{{ channel }}_interactions,
        valued.first_{{ channel }}_interaction_at,
        valued.last_{{ channel }}_interaction_at,
        valued.{{ channel }}_engagement_score,
        {% endfor -%}
        valued.n_identifiers,
        valued.has_customer_id,
        valued.purchases,
        valued.revenue,
        valued.first_purchase_at,
        valued.last_purchase_at,
        {{ dbt.datediff('valued.last_purchase_at', 'valued.evaluated_at', 'day') }} as days_since_last_purchase,
        valued.rfm_recency_score,
        valued.rfm_frequency_score,
        valued.rfm_monetary_score,
        case
            when valued.rfm_recency_score is null then 'no_purchase'
            when valued.rfm_recency_score >= 4 and valued.rfm_frequency_score >= 4 then 'champion'
            when valued.rfm_recency_score >= 3 and valued.rfm_frequency_score >= 3 then 'loyal'
            when valued.rfm_recency_score >= 4 then 'new'
            when valued.rfm_recency_score <= 2 and valued.rfm_frequency_score >= 3 then 'at_risk'
            when valued.rfm_recency_score <= 2 then 'hibernating'
            else 'potential'
        end as rfm_segment,
        case
            when valued.is_customer
                and coalesce(valued.last_purchase_at, valued.last_seen_at)
                    < valued.evaluated_at - interval '{{ var("lapsed_after_days") | int }} days'
                then 'lapsed'
            when valued.is_customer then 'customer'
            when valued.has_contactable_identifier then 'prospect'
            else 'anonymous'
        end as lifecycle_stage,
        valued.marketing_sends,
        valued.marketing_sends_without_consent,
        valued.social_mentions,
        valued.scored_social_mentions,
        valued.avg_sentiment_score,
        valued.latest_sentiment_score,
        valued.latest_sentiment_label,
        valued.latest_sentiment_at,
        {% for scope in var('consent_scopes') -%}
        coalesce(consent_pivoted.consent_marketing_{{ scope }}, 'unknown') as consent_{{ scope }},
        {% endfor -%}
        {% for purpose, scope in consent_columns -%}
        coalesce(consent_pivoted.consent_{{ purpose }}_{{ scope }}, 'unknown') as consent_{{ purpose }}_{{ scope }}
        {%- if not loop.last %},{% endif %}
        {% endfor %}

    from valued
    left join consent_pivoted
        on valued.person_id = consent_pivoted.person_id

)

select * from final
