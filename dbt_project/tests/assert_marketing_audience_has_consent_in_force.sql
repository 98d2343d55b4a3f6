-- Nobody may be in marketing_audience without a marketing grant in force
-- right now for that scope (re-derived independently from the history).

with

audience as (

    select * from {{ ref('marketing_audience') }}

),

in_force as (

    select person_id, scope, consent_event_id
    from {{ ref('int_consent_history') }}
    where purpose = 'marketing'
        and status = 'granted'
        and {{ in_interval(consent_as_of(), 'valid_from', 'valid_to') }}

)

select audience.*
from audience
left join in_force
    on audience.person_id = in_force.person_id
    and audience.scope = in_force.scope
    and audience.consent_event_id = in_force.consent_event_id
where in_force.person_id is null
