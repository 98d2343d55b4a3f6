{#-
    SQL of the (event, identifier) pairs of every staged event of the five
    topics: the six identity columns unpivoted (one pass: a cross join with
    the identifier types), NULLs and values of var identity_blocklist
    removed. Shared by int_identity_hubs and int_event_identifiers (which
    also removes the hubs).
-#}
{% macro usable_event_identifiers() -%}
    select
        event_id,
        kafka_topic,
        channel,
        occurred_at,
        identifier_type,
        identifier_value,
        {{ node_key('identifier_type', 'identifier_value') }} as node_key
    from (
        select
            events.event_id,
            events.kafka_topic,
            events.channel,
            events.occurred_at,
            identifier_types.identifier_type,
            case identifier_types.identifier_type
                {% for identifier in identifier_columns() -%}
                when {{ dbt.string_literal(identifier) }} then events.{{ identifier }}
                {% endfor -%}
            end as identifier_value
        from (
            {{ union_staged_events(['event_id', 'kafka_topic', 'channel', 'occurred_at'] + identifier_columns()) }}
        ) as events
        cross join (
            {{ literal_rows('identifier_type', identifier_columns()) }}
        ) as identifier_types
    ) as unpivoted
    where identifier_value is not null
        and not {{ is_blocklisted_identifier('identifier_type', 'identifier_value') }}
{%- endmacro %}
