{#-
    Text value of a top-level key of a JSON column (NULL when absent).
    The only place the project touches JSON functions.
-#}
{% macro json_extract_text(json_column, key) -%}
    {{ return(adapter.dispatch('json_extract_text', 'omnivue')(json_column, key)) }}
{%- endmacro %}

{% macro default__json_extract_text(json_column, key) -%}
    json_value({{ json_column }}, '$.{{ key }}')
{%- endmacro %}

{% macro duckdb__json_extract_text(json_column, key) -%}
    json_extract_string({{ json_column }}, '$.{{ key }}')
{%- endmacro %}
