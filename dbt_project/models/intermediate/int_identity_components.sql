-- The current person of every attributed identifier: the latest row of each
-- identifier in int_identity_history, when it names a person. Placeholders
-- (int_identity_nodes.is_blocklisted) and shared identifiers
-- (int_identity_shared_identifiers) are nobody's and are not here.
-- Incremental (strategy replace_partitions, one partition per identifier):
-- the identifiers with a history row after the watermark are rewritten (or
-- removed when they became nobody's).

{#- on_schema_change ignore: the batch's _tombstone column is not one of the table -#}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_partitions',
    unique_key='node_key',
    on_schema_change='ignore',
    post_hook="{{ save_incremental_state('int_identity_nodes') }}"
) }}

with

history as (

    select * from {{ ref('int_identity_history') }}
    {%- if is_incremental() %}
    where node_key in (
        select node_key from {{ ref('int_identity_history') }}
        where identity_run > {{ identity_run_watermark() }}
    )
    {%- endif %}

),

latest as (

    select node_key, person_id
    from (
        select
            node_key,
            {{ latest_value_by('person_id', ['identity_run']) }} as person_id
        from history
        group by node_key
    ) as current_state
    where person_id is not null

),

nodes as (

    select * from {{ ref('int_identity_nodes') }}

),

final as (

    select
        latest.node_key,
        nodes.identifier_type,
        nodes.identifier_value,
        nodes.identifier_priority,
        latest.person_id
        {%- if is_incremental() %},
        false as _tombstone
        {%- endif %}

    from latest
    inner join nodes
        on latest.node_key = nodes.node_key

    {%- if is_incremental() %}

    union all

    select distinct node_key, null, null, null, null, true
    from history
    {%- endif %}

)

select * from final
