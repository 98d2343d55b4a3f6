{#- Render a Python list as a comma-separated list of quoted SQL string literals. -#}
{% macro sql_literal_list(values) -%}
    {%- for value in values -%}
        {{ dbt.string_literal(value | replace("'", "''")) }}{% if not loop.last %}, {% endif %}
    {%- endfor -%}
{%- endmacro %}
