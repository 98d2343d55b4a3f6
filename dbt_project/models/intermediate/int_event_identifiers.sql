-- One row per (event, usable identifier): the identifiers of every staged
-- event of every topic, unpivoted, without NULLs, blocklisted placeholder
-- values (var identity_blocklist) and hub values (int_identity_hubs).

with

event_identifiers as (

    {{ usable_event_identifiers() }}

),

identity_hubs as (

    select node_key from {{ ref('int_identity_hubs') }}

),

final as (

    select
        event_identifiers.event_id,
        event_identifiers.kafka_topic,
        event_identifiers.channel,
        event_identifiers.occurred_at,
        event_identifiers.identifier_type,
        event_identifiers.identifier_value,
        event_identifiers.node_key

    from event_identifiers
    left join identity_hubs
        on event_identifiers.node_key = identity_hubs.node_key
    where identity_hubs.node_key is null

)

select * from final
