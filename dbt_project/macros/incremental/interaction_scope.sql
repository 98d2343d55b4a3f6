{#-
    SQL selecting the event_ids of the interactions an incremental
    event-grain mart (fct_interactions, consent_audit) must rebuild:
    - interactions landed after the model's landing watermark (late events
      included: they are judged by when they happened);
    - every interaction of a person with a newly landed consent event (the
      consent in force may change for all of them) or whose identifiers
      changed in an identity run after the watermark, under its current
      person or the person the model stored (retroactive stitching: a merge
      moves all earlier interactions);
    - social events scored after the sentiment watermark.
-#}
{% macro interaction_scope() -%}
    -- two branches, not an OR: the first one skips the old row groups by their min/max
    select event_id
    from {{ ref('int_events') }}
    where channel in ('social', 'email', 'mobile')
        and last_received_at > {{ received_watermark() }}

    union

    select event_id
    from {{ ref('int_events') }}
    where channel in ('social', 'email', 'mobile')
        and person_id in (select person_id from changed_persons)

    union

    select event_id
    from {{ this }}
    where person_id in (select person_id from changed_persons)

    union

    select event_id
    from {{ source('sentiment', 'social_sentiment') }}
    where scored_at > {{ scored_watermark() }}
{%- endmacro %}
