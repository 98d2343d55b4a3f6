-- Consent state per person, purpose and scope as validity intervals
-- (int_consent_intervals, maintained incrementally) with is_current: the
-- row in force at the evaluation instant (var as_of / consent_as_of,
-- default: query time). A view, so "current" is never stale.

{{ config(materialized='view') }}

with

intervals as (

    select * from {{ ref('int_consent_intervals') }}

),

final as (

    select
        consent_history_id,
        person_id,
        purpose,
        scope,
        status,
        valid_from,
        valid_to,
        is_latest,
        {{ in_interval(consent_as_of(), 'valid_from', 'valid_to') }} as is_current,
        sequence_number,
        consent_event_id,
        consent_event_type,
        requested_scope,
        source,
        source_identifier_types

    from intervals

)

select * from final
