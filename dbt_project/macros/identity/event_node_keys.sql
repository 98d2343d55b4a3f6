{#-
    SQL of the (event_id, identifier_type, node_key) pairs of the rows of
    `relation` (a CTE or relation with event_id and the six identity
    columns): the identity columns unpivoted, NULLs removed. The same pairs
    int_event_identifiers holds for those events, found from the events'
    own rows: cheaper than finding them there by event_id.
-#}
{% macro event_node_keys(relation) -%}
    select event_id, identifier_type, node_key
    from (
        select
            events.event_id,
            identifier_types.identifier_type,
            case identifier_types.identifier_type
                {% for identifier in identifier_columns() -%}
                when {{ dbt.string_literal(identifier) }} then {{ node_key('identifier_types.identifier_type', 'events.' ~ identifier) }}
                {% endfor -%}
            end as node_key
        from {{ relation }} as events
        cross join (
            {{ literal_rows('identifier_type', identifier_columns()) }}
        ) as identifier_types
    ) as unpivoted
    where node_key is not null
{%- endmacro %}
