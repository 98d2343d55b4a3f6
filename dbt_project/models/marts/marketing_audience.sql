-- Who may receive marketing now: one row per person x scope whose marketing
-- consent in force at the evaluation instant (var consent_as_of, default:
-- build time) is a grant that is also the latest event for that scope (a
-- future-dated withdrawal, e.g. from clock skew, already excludes the
-- person: conservative). The list campaign tools activate: nobody without
-- consent in force may be in it.

with

current_marketing_consent as (

    select * from {{ ref('int_consent_history') }}
    where purpose = 'marketing'
        and is_current
        and is_latest

),

final as (

    select
        person_id,
        scope,
        purpose,
        consent_event_id,
        valid_from as consent_granted_at

    from current_marketing_consent
    where status = 'granted'
        -- nobody erased or suppressed (their identifiers came back after an erasure)
        and person_id not in (select person_id from {{ ref('int_suppressed_persons') }})

)

select * from final
