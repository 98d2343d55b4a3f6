-- Every social / email / mobile interaction (not consent / identity
-- events), one row per event_id, with its person and whether marketing
-- consent for the channel's scope was in force at that instant.

with

interactions as (

    select * from {{ ref('int_interactions_with_consent') }}

),

final as (

    select
        event_id,
        person_id,
        event_type,
        channel,
        occurred_at,
        source,
        campaign_id,
        platform,
        lang,
        is_brand_sent,
        amount,
        currency,
        is_marketing_send,
        consent_scope,
        consent_purpose,
        consent_in_force,
        consent_status,
        consent_event_id

    from interactions

)

select * from final
