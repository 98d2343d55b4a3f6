with

source as (

    {{ deduplicated_landed_events('interactions.email') }}

),

renamed as (

    select
        *,
        {{ json_extract_text('properties', 'campaign_id') }} as campaign_id

    from source

),

final as (

    select * from renamed

)

-- written in landing order: DuckDB skips the row groups older than a watermark by their min/max
select * from final
order by last_received_at
