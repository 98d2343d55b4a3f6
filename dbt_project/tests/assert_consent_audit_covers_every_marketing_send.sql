-- consent_audit must hold exactly the marketing sends of fct_interactions.

with

sends as (

    select event_id from {{ ref('fct_interactions') }}
    where is_marketing_send

),

audited as (

    select event_id from {{ ref('consent_audit') }}

)

select sends.event_id, audited.event_id as audited_event_id
from sends
full outer join audited
    on sends.event_id = audited.event_id
where sends.event_id is null or audited.event_id is null
