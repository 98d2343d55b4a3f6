-- Engagement per person and interaction channel (social, email, mobile),
-- from the incrementally maintained int_person_channel_activity.
-- Incremental like it (strategy replace_partitions, one partition per
-- person): the persons it recomputed are copied again (those with a new
-- event in int_event_log, a newly scored message or an identity change: an
-- event the lookback reads again changes nothing here); a person that no
-- longer exists is emptied.

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

activity as (

    select * from {{ ref('int_person_channel_activity') }}
    where channel in ('social', 'email', 'mobile')
    {%- if is_incremental() %}
        and person_id in (select person_id from changed_persons)
    {%- endif %}

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
        {%- if is_incremental() %},
        false as _tombstone
        {%- endif %}

    from activity

    {%- if is_incremental() %}

    union all

    -- one tombstone per recomputed person: empties the persons that no longer exist
    select
        person_id, {% for i in range(17) %}null, {% endfor %}true as _tombstone
    from changed_persons
    {%- endif %}

)

select * from final
