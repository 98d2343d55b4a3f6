{#- Per identifier of `relation` (rows of int_event_identifiers), optionally filtered by `where`: its evidence. -#}
{% macro node_aggregates(relation, where=none) -%}
select
    node_key,
    identifier_type,
    identifier_value,
    min(identifier_priority) as identifier_priority,
    min(occurred_at) as first_seen_at,
    max(occurred_at) as last_seen_at,
    {{ arg_min_by('event_id', ['occurred_at', 'event_id']) }} as first_event_id,
    count(*) as n_events,
    max(last_received_at) as last_received_at
from {{ relation }}
{%- if where %}
where {{ where }}
{%- endif %}
group by node_key, identifier_type, identifier_value
{%- endmacro %}
