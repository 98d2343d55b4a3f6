{#-
    SQL selecting the event_ids of the interactions an incremental
    event-grain mart (fct_interactions) must rebuild. It expects two CTEs:
    `identity_changed` (person_id: both sides of every person change logged
    after the model's identity watermark, macro identity_changed_persons)
    and `consent_changes` (person_id, scope, changed_from: per person and
    consent scope, the earliest event time of the marketing consent events
    new to the model, macro marketing_consent_changes).
    - interactions landed after the model's landing watermark (late events
      included: they are judged by when they happened);
    - every interaction of a person whose identifiers changed, under its
      current person or the person the model stored (retroactive stitching:
      a merge moves all earlier interactions);
    - of a person with a new marketing consent event for a scope, only the
      stored interactions of that scope whose consent row can change: those
      at or after the event (changed_from), and those before it whose row in
      force is still open (consent_valid_to null) or ends at or after it (its
      end moves to the new event). A consent row in force before that
      instant starts before it, so it stays the same row; an interaction
      with no row in force before it still has none. Interactions without a
      consent scope never have one;
    - social events scored after the sentiment watermark.
-#}
{% macro interaction_scope() -%}
    -- separate branches, not an OR: the first one skips the old row groups by their min/max
    select event_id
    from {{ ref('int_events') }}
    where channel in ('social', 'email', 'mobile')
        and last_received_at > {{ received_watermark() }}

    union

    -- by the persons' hashed keys first (person_key: a fixed-width column, not the strings)
    select event_id
    from {{ ref('int_events') }}
    where channel in ('social', 'email', 'mobile')
        and {{ keyed_in('person_id', 'person_key', 'identity_changed') }}

    union

    select event_id
    from {{ this }}
    where {{ keyed_in('person_id', 'person_key', 'identity_changed') }}

    union

    select stored.event_id
    from {{ this }} as stored
    inner join consent_changes
        on stored.person_id = consent_changes.person_id
        and stored.consent_scope = consent_changes.scope
    where {{ keyed_in('person_id', 'person_key', 'consent_changes', prefix='stored.') }}
        and (
            stored.occurred_at >= consent_changes.changed_from
            or stored.consent_valid_to >= consent_changes.changed_from
            or (stored.consent_valid_to is null and stored.consent_valid_from is not null)
        )

    union

    select event_id
    from {{ source('sentiment', 'social_sentiment') }}
    where scored_at > {{ scored_watermark() }}
{%- endmacro %}

{#-
    Per person and consent scope, the earliest event time of the marketing
    consent events the model has not seen yet (int_event_log after its
    logged_run mark; scope 'all' counts for every scope of var
    consent_scopes, as int_consent_intervals expands it), attributed to a
    person. Those events can only change the person's marketing consent rows
    of that scope from that instant on (int_consent_intervals orders them by
    event time). A model using it saves its marks with
    save_incremental_state(event_log=true).
-#}
{% macro marketing_consent_changes() -%}
    select
        new_events.person_id,
        scopes.scope,
        min(new_events.occurred_at) as changed_from
    from (
        select events.person_id, events.occurred_at, consent_events.scope as requested_scope
        from {{ ref('int_events') }} as events
        -- the staged row carries the same last_received_at: the same filter skips its old row groups
        inner join {{ ref('stg_landing__consent_events') }} as consent_events
            on events.event_id = consent_events.event_id
        where events.channel = 'consent'
            and events.last_received_at > {{ received_watermark() }}
            and consent_events.last_received_at > {{ received_watermark() }}
            and events.person_id is not null
            and consent_events.purpose = 'marketing'
            {%- set counted_run = logged_run_watermark() %}
            {%- if counted_run != 'null' %}
            and events.event_id in (select event_id from {{ ref('int_event_log') }} where logged_run > {{ counted_run }})
            {%- endif %}
    ) as new_events
    inner join (
        {{ literal_rows('scope', var('consent_scopes')) | indent(8) }}
    ) as scopes
        on new_events.requested_scope = scopes.scope
        or new_events.requested_scope = 'all'
    group by new_events.person_id, scopes.scope
{%- endmacro %}
