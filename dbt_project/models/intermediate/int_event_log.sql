-- The build in which each event of int_events first appeared (logged_run:
-- 1 for the first build, then one more for each build that added events).
-- It says exactly which events a model keeping per-person totals
-- (int_person_channel_activity) has not counted yet: neither landing times
-- nor int_events' own batch can, since the lookback re-reads events and a
-- late duplicate rewrites one. Append-only state like int_identity_history:
-- never rebuilt by --full-refresh (the run numbers stored next to the
-- totals must keep their meaning). Incremental: the events of int_events
-- landed after the log's newest last_received_at (less the lookback) that
-- it does not hold yet.

{{ config(
    materialized='incremental',
    incremental_strategy='append',
    full_refresh=false,
    on_schema_change='append_new_columns'
) }}

with

events as (

    select event_id, last_received_at
    from {{ ref('int_events') }}
    {%- if is_incremental() %}
    where last_received_at > {{ own_received_watermark() }}
    {%- endif %}

),

{% if is_incremental() %}
new_events as (

    select events.event_id, events.last_received_at
    from events
    anti join {{ this }} as logged
        on events.event_id = logged.event_id

),
{% endif %}

final as (

    select
        event_id,
        {% if is_incremental() -%}
        cast((select coalesce(max(logged_run), 0) + 1 from {{ this }}) as bigint) as logged_run,
        {%- else -%}
        cast(1 as bigint) as logged_run,
        {%- endif %}
        last_received_at

    from {{ 'new_events' if is_incremental() else 'events' }}

)

-- in landing order: DuckDB skips the row groups older than the watermark by their min/max
select * from final
order by last_received_at
