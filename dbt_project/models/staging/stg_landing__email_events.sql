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

select * from final
