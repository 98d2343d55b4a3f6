{#-
    The value of `value` on the row with the smallest (or largest) tuple of
    `order_by` expressions: a deterministic first/last value per group
    (ties broken by the later expressions).
-#}
{% macro arg_min_by(value, order_by) -%}
    {{ return(adapter.dispatch('arg_min_by', 'omnivue')(value, order_by, 'asc')) }}
{%- endmacro %}

{% macro arg_max_by(value, order_by) -%}
    {{ return(adapter.dispatch('arg_min_by', 'omnivue')(value, order_by, 'desc')) }}
{%- endmacro %}

{% macro default__arg_min_by(value, order_by, direction) -%}
    (array_agg({{ value }} order by {% for expr in order_by %}{{ expr }} {{ direction }}{% if not loop.last %}, {% endif %}{% endfor %}))[1]
{%- endmacro %}

{% macro duckdb__arg_min_by(value, order_by, direction) -%}
    {{ 'arg_min' if direction == 'asc' else 'arg_max' }}({{ value }}, ({{ order_by | join(', ') }}))
{%- endmacro %}

{#-
    Like arg_max_by, but a NULL value on the last row is returned as NULL
    (arg_max skips NULL values): "the latest value, whatever it is".
-#}
{% macro latest_value_by(value, order_by) -%}
    {{ return(adapter.dispatch('latest_value_by', 'omnivue')(value, order_by)) }}
{%- endmacro %}

{% macro default__latest_value_by(value, order_by) -%}
    (array_agg({{ value }} order by {% for expr in order_by %}{{ expr }} desc{% if not loop.last %}, {% endif %}{% endfor %}))[1]
{%- endmacro %}

{% macro duckdb__latest_value_by(value, order_by) -%}
    arg_max_null({{ value }}, ({{ order_by | join(', ') }}))
{%- endmacro %}
