{#- The identity-graph node key: '<identifier_type>:<identifier_value>'. -#}
{% macro node_key(identifier_type, identifier_value) -%}
    {{ dbt.concat([identifier_type, "':'", identifier_value]) }}
{%- endmacro %}
