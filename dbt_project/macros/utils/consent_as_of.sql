{#-
    The instant "current" consent, recency and lifecycle are evaluated at:
    var consent_as_of or var as_of (an RFC 3339 / ISO timestamp with offset),
    or else the current timestamp (of the build for tables, of the query for
    views).
-#}
{% macro consent_as_of() -%}
    {%- set instant = var('consent_as_of', none) or var('as_of', none) -%}
    {%- if instant -%}
        cast({{ dbt.string_literal(instant) }} as timestamp with time zone)
    {%- else -%}
        {{ dbt.current_timestamp() }}
    {%- endif -%}
{%- endmacro %}

{#- Alias used outside consent (recency, lifecycle): the same instant. -#}
{% macro evaluation_instant() -%}
    {{ consent_as_of() }}
{%- endmacro %}
