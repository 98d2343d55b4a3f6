{#-
    True when the whole string matches the regular expression (RE2 / POSIX
    subset: no back-references). dbt has no cross-database macro for it.
-#}
{% macro regexp_full_match(value, pattern) -%}
    {{ return(adapter.dispatch('regexp_full_match', 'omnivue')(value, pattern)) }}
{%- endmacro %}

{% macro default__regexp_full_match(value, pattern) -%}
    ({{ value }} ~ ('^(' || {{ pattern }} || ')$'))
{%- endmacro %}

{% macro duckdb__regexp_full_match(value, pattern) -%}
    regexp_full_match({{ value }}, {{ pattern }})
{%- endmacro %}
