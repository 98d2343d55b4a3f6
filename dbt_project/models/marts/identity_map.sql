-- Which person each attributed identifier belongs to. Holds identifier
-- values in clear text: for identity resolution, erasure and access
-- requests (compliance), not for the analysts' published snapshot (publish
-- replaces them by keyed hashes). Placeholders and shared identifiers are
-- nobody's: they are in identity_merge_rejections, not here.
-- Incremental (strategy replace_partitions, one partition per identifier):
-- identifiers whose person changed or that newly landed events carry are
-- rewritten; those that became nobody's are removed.

{#- on_schema_change ignore: the batch's _tombstone column is not one of the table -#}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_partitions',
    unique_key='identifier_hash',
    on_schema_change='ignore',
    post_hook="{{ save_incremental_state('int_identity_nodes') }}"
) }}

-- depends_on: {{ ref('int_identity_history') }}

with

{% if is_incremental() %}
scope as (

    select node_key from {{ ref('int_identity_history') }}
    where identity_run > {{ identity_run_watermark() }}
    union
    select node_key from {{ ref('int_identity_nodes') }}
    where last_received_at > {{ received_watermark() }}

),
{% endif %}

identity_components as (

    select * from {{ ref('int_identity_components') }}
    {%- if is_incremental() %}
    where node_key in (select node_key from scope)
    {%- endif %}

),

identity_nodes as (

    select * from {{ ref('int_identity_nodes') }}

),

final as (

    select
        identity_components.identifier_type,
        identity_components.identifier_value,
        identity_components.person_id,
        identity_nodes.first_seen_at,
        identity_nodes.last_seen_at,
        identity_nodes.n_events,
        {{ dbt.hash('identity_components.node_key') }} as identifier_hash
        {%- if is_incremental() %},
        false as _tombstone
        {%- endif %}

    from identity_components
    inner join identity_nodes
        on identity_components.node_key = identity_nodes.node_key

    {%- if is_incremental() %}

    union all

    select null, null, null, null, null, null, {{ dbt.hash('node_key') }}, true
    from scope
    {%- endif %}

)

select * from final
