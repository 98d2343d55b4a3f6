-- The suppression list (keyed identifier hashes of erased persons), or an
-- empty relation of the same shape while the table does not exist yet.

{{ config(materialized='view') }}

{%- set src = source('compliance', 'suppressed_identifiers') -%}
{%- set existing = adapter.get_relation(database=src.database, schema=src.schema, identifier=src.identifier)
    if execute else none -%}

with

{% if existing is not none -%}
suppressed as (

    select
        identifier_type,
        identifier_hash,
        request_id,
        reason,
        suppressed_at

    from {{ src }}

),
{%- else -%}
suppressed as (

    select
        cast(null as {{ dbt.type_string() }}) as identifier_type,
        cast(null as {{ dbt.type_string() }}) as identifier_hash,
        cast(null as {{ dbt.type_string() }}) as request_id,
        cast(null as {{ dbt.type_string() }}) as reason,
        cast(null as {{ dbt.type_timestamp() }}) as suppressed_at
    where 1 = 0

),
{%- endif %}

final as (

    select * from suppressed

)

select * from final
