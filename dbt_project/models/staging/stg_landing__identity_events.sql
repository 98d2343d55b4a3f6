with

source as (

    {{ deduplicated_landed_events('identity') }}

),

final as (

    select * from source

)

select * from final
