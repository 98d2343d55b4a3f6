{#-
    SQL of the (event, identifier) pairs of the staged events of the five
    topics: the six identity columns unpivoted (one pass: a cross join with
    the identifier types), NULLs removed. `where` filters the staged events
    (e.g. the incremental window). Placeholder values are flagged later,
    once per distinct identifier (int_identity_nodes).
-#}
{% macro event_identifiers(where=none) -%}
    select
        event_id,
        kafka_topic,
        channel,
        event_type,
        occurred_at,
        last_received_at,
        identifier_type,
        identifier_value,
        {{ node_key('identifier_type', 'identifier_value') }} as node_key,
        {{ identifier_priority('identifier_type') }} as identifier_priority
    from (
        select
            events.event_id,
            events.kafka_topic,
            events.channel,
            events.event_type,
            events.occurred_at,
            events.last_received_at,
            identifier_types.identifier_type,
            case identifier_types.identifier_type
                {% for identifier in identifier_columns() -%}
                when {{ dbt.string_literal(identifier) }} then events.{{ identifier }}
                {% endfor -%}
            end as identifier_value
        from (
            {{ union_staged_events(['event_id', 'kafka_topic', 'channel', 'event_type', 'occurred_at', 'last_received_at'] + identifier_columns(), where) }}
        ) as events
        cross join (
            {{ literal_rows('identifier_type', identifier_columns()) }}
        ) as identifier_types
    ) as unpivoted
    where identifier_value is not null
{%- endmacro %}
