{#- A one-column relation holding the given string values (portable VALUES). -#}
{% macro literal_rows(column_name, values) -%}
    {%- for value in values %}
    select {{ dbt.string_literal(value | replace("'", "''")) }} as {{ column_name }}
    {%- if not loop.last %} union all{% endif %}
    {%- endfor %}
{%- endmacro %}
