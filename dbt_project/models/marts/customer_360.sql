-- One row per person (connected component of the identity graph): activity
-- across channels, value, lifecycle stage and current marketing consent.
-- No identifier values, only counts and flags.

{%- set interaction_channels = ['social', 'email', 'mobile'] %}

with

identity_components as (

    select * from {{ ref('int_identity_components') }}

),

events as (

    select * from {{ ref('int_events') }}
    where person_id is not null

),

interactions as (

    select * from {{ ref('int_interactions_with_consent') }}
    where person_id is not null

),

current_marketing_consent as (

    select * from {{ ref('int_consent_history') }}
    where purpose = 'marketing'
        and is_current

),

persons as (

    select
        person_id,
        count(*) as n_identifiers,
        {{ dbt.bool_or("identifier_type = 'customer_id'") }} as has_customer_id

    from identity_components
    group by person_id

),

activity as (

    select
        person_id,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        count(*) as n_events

    from events
    group by person_id

),

interaction_counts as (

    select
        person_id,
        {% for channel in interaction_channels -%}
        count(case when channel = '{{ channel }}' then 1 end) as {{ channel }}_interactions,
        {% endfor -%}
        count(case when event_type = 'mobile.purchase' then 1 end) as purchases,
        coalesce(sum(case when event_type = 'mobile.purchase' then amount end), 0) as revenue,
        count(case when is_marketing_send then 1 end) as marketing_sends,
        count(case when is_marketing_send and not consent_in_force then 1 end) as marketing_sends_without_consent

    from interactions
    group by person_id

),

channels_used as (

    select
        person_id,
        {{ dbt.listagg('channel', "','", 'order by channel') }} as channels_used,
        count(*) as n_channels

    from (select distinct person_id, channel from interactions) as person_channels
    group by person_id

),

consent_pivoted as (

    select
        person_id,
        {% for scope in var('consent_scopes') -%}
        max(case when scope = '{{ scope }}' then status end) as consent_{{ scope }}
        {%- if not loop.last %},{% endif %}
        {% endfor %}

    from current_marketing_consent
    group by person_id

),

final as (

    select
        persons.person_id,
        activity.first_seen_at,
        activity.last_seen_at,
        {{ dbt.datediff('activity.first_seen_at', 'activity.last_seen_at', 'day') }} as tenure_days,
        activity.n_events,
        channels_used.channels_used,
        coalesce(channels_used.n_channels, 0) as n_channels,
        coalesce(channels_used.n_channels, 0) > 1 as is_multichannel,
        {% for channel in interaction_channels -%}
        coalesce(interaction_counts.{{ channel }}_interactions, 0) as {{ channel }}_interactions,
        {% endfor -%}
        persons.n_identifiers,
        persons.has_customer_id,
        coalesce(interaction_counts.purchases, 0) as purchases,
        coalesce(interaction_counts.revenue, 0) as revenue,
        case
            when persons.has_customer_id or coalesce(interaction_counts.purchases, 0) > 0 then 'customer'
            else 'prospect'
        end as lifecycle_stage,
        coalesce(interaction_counts.marketing_sends, 0) as marketing_sends,
        coalesce(interaction_counts.marketing_sends_without_consent, 0) as marketing_sends_without_consent,
        {% for scope in var('consent_scopes') -%}
        coalesce(consent_pivoted.consent_{{ scope }}, 'unknown') as consent_{{ scope }}
        {%- if not loop.last %},{% endif %}
        {% endfor %}

    from persons
    left join activity
        on persons.person_id = activity.person_id
    left join interaction_counts
        on persons.person_id = interaction_counts.person_id
    left join channels_used
        on persons.person_id = channels_used.person_id
    left join consent_pivoted
        on persons.person_id = consent_pivoted.person_id

)

select * from final
