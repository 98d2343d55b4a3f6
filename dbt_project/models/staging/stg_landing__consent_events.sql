with

source as (

    {{ deduplicated_landed_events('consent') }}

),

renamed as (

    select
        *,
        lower({{ json_extract_text('properties', 'purpose') }}) as purpose,
        lower({{ json_extract_text('properties', 'scope') }}) as scope

    from source

),

final as (

    select
        *,
        {{ consent_status_from_event_type('event_type') }} as consent_status

    from renamed

)

-- written in landing order: DuckDB skips the row groups older than a watermark by their min/max
select * from final
order by last_received_at
