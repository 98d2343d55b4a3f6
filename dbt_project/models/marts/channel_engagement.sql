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
        count(case when is_marketing_send then 1 end) as marketing_sends,
        count(case when is_marketing_send and not consent_in_force then 1 end) as marketing_sends_without_consent,
        count(case when event_type = 'email.opened' then 1 end) as email_opens,
        count(case when event_type = 'email.clicked' then 1 end) as email_clicks,
        count(case when event_type = 'mobile.push_opened' then 1 end) as push_opens

    from interactions
    group by person_id, channel

)

select * from final
