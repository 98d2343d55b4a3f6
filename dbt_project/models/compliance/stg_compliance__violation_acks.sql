-- Acknowledgements of consent violations, or an empty relation of the same
-- shape while the table does not exist yet.

{{ config(materialized='view') }}

{%- set src = source('compliance', 'violation_acks') -%}
{%- set existing = adapter.get_relation(database=src.database, schema=src.schema, identifier=src.identifier)
    if execute else none -%}

with

{% if existing is not none -%}
acks as (

    select
        ack_id,
        lower(event_id) as event_id,
        person_id,
        acknowledged_by,
        reason,
        acknowledged_at

    from {{ src }}

),
{%- else -%}
acks as (

    select
        cast(null as {{ dbt.type_string() }}) as ack_id,
        cast(null as {{ dbt.type_string() }}) as event_id,
        cast(null as {{ dbt.type_string() }}) as person_id,
        cast(null as {{ dbt.type_string() }}) as acknowledged_by,
        cast(null as {{ dbt.type_string() }}) as reason,
        cast(null as {{ dbt.type_timestamp() }}) as acknowledged_at
    where 1 = 0

),
{%- endif %}

final as (

    select * from acks

)

select * from final
