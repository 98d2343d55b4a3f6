-- One row per (event, identifier): the identifiers of every staged event of
-- every topic, unpivoted, without NULLs. Placeholder and shared values are
-- kept here (int_identity_nodes flags the first, int_identity_shared_identifiers
-- the second): this is the evidence, the graph decides what it means.
-- Incremental: the events landed (last_received_at) after this model's
-- newest one, less var incremental_lookback_hours, are (re)written.

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='event_id',
    on_schema_change='append_new_columns',
    pre_hook="{{ ensure_key_column('node_hash', 'node_key') }}"
) }}

{%- set incremental_window = none %}
{%- if is_incremental() %}
{%- set incremental_window %}
last_received_at > {{ own_received_watermark() }}
{%- endset %}
{%- endif %}

with

event_identifiers as (

    {{ event_identifiers(where=incremental_window) }}

),

final as (

    select
        *,
        -- the identifier's hashed key: int_events finds the events of changed identifiers by it
        -- (macros/cross_db/key_hash.sql)
        {{ key_hash('node_key') }} as node_hash

    from event_identifiers

)

-- written in landing order: DuckDB skips the row groups older than a watermark by their min/max
select * from final
order by last_received_at
