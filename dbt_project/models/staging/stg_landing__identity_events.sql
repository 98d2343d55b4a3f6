with

source as (

    {{ deduplicated_landed_events('identity') }}

),

final as (

    select * from source

)

-- written in landing order: DuckDB skips the row groups older than a watermark by their min/max
select * from final
order by last_received_at
