{#-
    SQL selecting the person ids whose rows an incremental model must
    recompute (docs/identity.md, "Incremental"), from the model's watermarks
    (macros/incremental/incremental_state.sql):
    - the persons of events landed after the landing watermark, of the given
      channels (none = every channel); with new_events_only=true (the model
      saves logged_run, save_incremental_state(event_log=true)), only of the
      events int_event_log logged after the model's mark;
    - both sides of every person change logged by identity runs after the
      model's identity watermark (merges, splits, new and dropped
      identifiers): retroactive stitching reaches every earlier event of a
      merged person;
    - with sentiment=true, the persons of social events scored after the
      sentiment watermark.
-#}
{% macro changed_persons(channels=none, sentiment=false, new_events_only=false) -%}
    {%- set counted_run = logged_run_watermark() if new_events_only else 'null' %}
    select person_id
    from {{ ref('int_events') }}
    where last_received_at > {{ received_watermark() }}
        and person_id is not null
        {%- if channels %}
        and channel in ({{ sql_literal_list(channels) }})
        {%- endif %}
        {%- if counted_run != 'null' %}
        -- only the events the model has not seen yet (an event the lookback reads again
        -- changes nothing it depends on): those int_event_log logged after its mark
        and event_id in (select event_id from {{ ref('int_event_log') }} where logged_run > {{ counted_run }})
        {%- endif %}

    union

    {{ identity_changed_persons() }}
    {%- if sentiment %}

    union

    {{ scored_persons() }}
    {%- endif %}
{%- endmacro %}

{#-
    The persons of the social messages scored after the model's sentiment
    watermark (excluding the events in the relation or CTE `except_events`,
    if given). A lookup by event_id reads the whole event_id column of
    int_events, so the messages are looked up among the events landed after
    the landing watermark first (the old row groups are skipped by their
    min/max); only the others (scored long after they landed: none, usually)
    are looked up in all of int_events (a lookup of nothing reads nothing).
-#}
{% macro scored_persons(except_events=none) -%}
    select person_id from (
        select events.event_id, events.person_id
        from {{ source('sentiment', 'social_sentiment') }} as sentiment
        inner join {{ ref('int_events') }} as events
            on sentiment.event_id = events.event_id
        where sentiment.scored_at > {{ scored_watermark() }}
            and events.last_received_at > {{ received_watermark() }}
            -- only social texts are scored: the filter spares reading other events' ids
            and events.channel = 'social'

        union all

        select events.event_id, events.person_id
        from {{ ref('int_events') }} as events
        where events.channel = 'social'
            and events.event_id in (
                select sentiment.event_id
                from {{ source('sentiment', 'social_sentiment') }} as sentiment
                anti join (
                    select event_id from {{ ref('int_events') }}
                    where last_received_at > {{ received_watermark() }}
                        and channel = 'social'
                ) as recent
                    on sentiment.event_id = recent.event_id
                where sentiment.scored_at > {{ scored_watermark() }}
            )
    ) as scored
    where person_id is not null
    {%- if except_events %}
        and event_id not in (select event_id from {{ except_events }})
    {%- endif %}
{%- endmacro %}


{#-
    Both sides of every person change logged by identity runs after the
    model's identity watermark (merges, splits, new and dropped identifiers).
-#}
{% macro identity_changed_persons() -%}
    select person_id
    from {{ ref('int_identity_history') }}
    where identity_run > {{ identity_run_watermark() }}
        and person_id is not null

    union

    select previous_person_id as person_id
    from {{ ref('int_identity_history') }}
    where identity_run > {{ identity_run_watermark() }}
        and previous_person_id is not null
{%- endmacro %}
