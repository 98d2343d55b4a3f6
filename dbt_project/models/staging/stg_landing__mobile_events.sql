with

source as (

    {{ deduplicated_landed_events('interactions.mobile') }}

),

renamed as (

    select
        *,
        {{ dbt.safe_cast(json_extract_text('properties', 'amount'), dbt.type_numeric()) }} as amount,
        upper({{ json_extract_text('properties', 'currency') }}) as currency

    from source

),

final as (

    select * from renamed

)

-- written in landing order: DuckDB skips the row groups older than a watermark by their min/max
select * from final
order by last_received_at
