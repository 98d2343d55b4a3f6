{#-
    The instant "current" consent is evaluated at: var consent_as_of (an
    RFC 3339 / ISO timestamp with offset), or the build's current timestamp.
-#}
{% macro consent_as_of() -%}
    {%- if var('consent_as_of', none) -%}
        cast({{ dbt.string_literal(var('consent_as_of')) }} as timestamp with time zone)
    {%- else -%}
        {{ dbt.current_timestamp() }}
    {%- endif -%}
{%- endmacro %}
