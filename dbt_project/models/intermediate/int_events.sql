-- Every staged event of the five topics with its person. All usable
-- identifiers of an event are in one component (they are connected by the
-- event itself), so any of them gives the person; min() just picks one.

with

events as (

    {{ union_staged_events() }}

),

event_identifiers as (

    select * from {{ ref('int_event_identifiers') }}

),

identity_components as (

    select * from {{ ref('int_identity_components') }}

),

event_persons as (

    select
        event_identifiers.event_id,
        event_identifiers.kafka_topic,
        min(identity_components.person_id) as person_id,
        count(distinct event_identifiers.node_key) as n_usable_identifiers

    from event_identifiers
    inner join identity_components
        on event_identifiers.node_key = identity_components.node_key
    group by event_identifiers.event_id, event_identifiers.kafka_topic

),

final as (

    select
        events.event_id,
        event_persons.person_id,
        events.event_type,
        events.channel,
        events.occurred_at,
        events.source,
        events.schema_version,
        {% for identifier in identifier_columns() -%}
        events.{{ identifier }},
        {% endfor -%}
        coalesce(event_persons.n_usable_identifiers, 0) as n_usable_identifiers,
        events.kafka_topic,
        events.kafka_partition,
        events.kafka_offset,
        events.received_at,
        events.n_deliveries

    from events
    left join event_persons
        on events.event_id = event_persons.event_id
        and events.kafka_topic = event_persons.kafka_topic

)

select * from final
