with

source as (

    {{ deduplicated_landed_events('interactions.social') }}

),

renamed as (

    select
        *,
        {{ json_extract_text('properties', 'direction') }} as direction,
        {{ json_extract_text('properties', 'platform') }} as platform,
        {{ json_extract_text('properties', 'post_id') }} as post_id,
        {{ json_extract_text('properties', 'lang') }} as lang,
        {{ json_extract_text('properties', 'text') }} as text

    from source

),

final as (

    select
        *,
        -- conservative: any spelling of 'outbound' counts as a brand send
        coalesce(lower(trim(direction)) = 'outbound', false) as is_brand_sent

    from renamed

)

-- written in landing order: DuckDB skips the row groups older than a watermark by their min/max
select * from final
order by last_received_at
