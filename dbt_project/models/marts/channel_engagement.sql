-- Engagement per person and interaction channel.

with

interactions as (

    select * from {{ ref('int_interactions_with_consent') }}
    where person_id is not null

),

final as (

    select
        person_id,
        channel,
        count(*) as interactions,
        min(occurred_at) as first_interaction_at,
        max(occurred_at) as last_interaction_at,
        sum(case when is_marketing_send then 1 else 0 end) as marketing_sends,
        sum(case when is_marketing_send and not consent_in_force then 1 else 0 end) as marketing_sends_without_consent,
        sum(case when event_type = 'email.opened' then 1 else 0 end) as email_opens,
        sum(case when event_type = 'email.clicked' then 1 else 0 end) as email_clicks,
        sum(case when event_type = 'mobile.push_opened' then 1 else 0 end) as push_opens

    from interactions
    group by person_id, channel

)

select * from final
