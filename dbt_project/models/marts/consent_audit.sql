-- Every marketing send judged against marketing consent at that instant:
-- email.sent (scope email), mobile.push_sent (scope push), a brand-sent
-- social.direct_message (scope social). consent_ok is false when no grant
-- was in force at occurred_at, including when there was no consent event
-- at all before the send, or the send cannot be attributed to a person.
-- A view over the incremental fct_interactions (a filter and one derived
-- column): always in step with it, and an incremental build writes nothing
-- here (a late consent event or a merge of persons re-judges the sends in
-- fct_interactions).

{{ config(materialized='view') }}

with

marketing_sends as (

    -- the interactions as judged by the incremental fct_interactions
    select * from {{ ref('fct_interactions') }}
    where is_marketing_send

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
        consent_scope as scope,
        consent_purpose as purpose,
        consent_in_force as consent_ok,
        consent_status,
        consent_event_id,
        consent_valid_from,
        consent_valid_to,
        case
            when consent_in_force then null
            when person_id is null then 'unattributed_send'
            when consent_status = 'withdrawn' then 'consent_withdrawn'
            else 'no_consent'
        end as violation_reason

    from marketing_sends

)

select * from final
