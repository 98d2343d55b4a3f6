-- Engagement per person and interaction channel (social, email, mobile),
-- from the incrementally maintained int_person_channel_activity.

with

activity as (

    select * from {{ ref('int_person_channel_activity') }}
    where channel in ('social', 'email', 'mobile')

),

final as (

    select
        person_id,
        channel,
        n_events as interactions,
        first_event_at as first_interaction_at,
        last_event_at as last_interaction_at,
        marketing_sends,
        marketing_sends_without_consent,
        email_opens,
        email_clicks,
        push_opens,
        purchases,
        revenue,
        engagement_score,
        social_messages,
        scored_social_messages,
        case when scored_social_messages > 0 then cast(sentiment_score_sum as double) / scored_social_messages end as avg_sentiment_score,
        latest_sentiment_score,
        latest_sentiment_label

    from activity

)

select * from final
