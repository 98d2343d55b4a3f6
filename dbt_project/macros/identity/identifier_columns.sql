{#- The identity keys of the canonical envelope (DESIGN.md), in a fixed order. -#}
{% macro identifier_columns() -%}
    {{ return(['customer_id', 'email', 'phone', 'device_id', 'anonymous_id', 'social_handle']) }}
{%- endmacro %}
