-- One row per (event, usable identifier): the identifiers of every staged
-- event of every topic, unpivoted, with blocklisted placeholder values removed.

with

events as (

    {{ union_staged_events(['event_id', 'kafka_topic', 'channel', 'occurred_at'] + identifier_columns()) }}

),

unpivoted as (

    {% for identifier in identifier_columns() %}
    select
        event_id,
        kafka_topic,
        channel,
        occurred_at,
        {{ dbt.string_literal(identifier) }} as identifier_type,
        {{ identifier }} as identifier_value
    from events
    where {{ identifier }} is not null
    {% if not loop.last %}
    union all
    {% endif %}
    {%- endfor %}

),

usable as (

    select * from unpivoted
    where not {{ is_blocklisted_identifier('identifier_type', 'identifier_value') }}

),

final as (

    select
        event_id,
        kafka_topic,
        channel,
        occurred_at,
        identifier_type,
        identifier_value,
        {{ node_key('identifier_type', 'identifier_value') }} as node_key

    from usable

)

select * from final
