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

{#-
    The evaluation instant as a literal fixed for the whole dbt invocation:
    var consent_as_of / as_of, or else the time the invocation started
    (run_started_at). For incremental models that must know, at their next
    build, the instant their rows were evaluated at (marketing_audience):
    the model and its post-hook render the same value.
-#}
{% macro build_instant() -%}
    {%- set instant = var('consent_as_of', none) or var('as_of', none) -%}
    {%- if instant -%}
        cast({{ dbt.string_literal(instant) }} as timestamp with time zone)
    {%- else -%}
        cast({{ dbt.string_literal(run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f') ~ '+00') }} as timestamp with time zone)
    {%- endif -%}
{%- endmacro %}
