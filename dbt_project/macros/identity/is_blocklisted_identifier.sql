{#-
    True when an identifier value is a placeholder from var identity_blocklist
    (compared trimmed and lower-cased; for social handles also the handle
    after the "platform:" prefix). Such values neither form nodes nor edges.
-#}
{% macro is_blocklisted_identifier(identifier_type, identifier_value) -%}
    {%- set blocklist = var('identity_blocklist', []) | map('lower') | list -%}
    {%- if blocklist | length == 0 -%}
    (1 = 0)
    {%- else -%}
    (
        lower(trim({{ identifier_value }})) in ({{ sql_literal_list(blocklist) }})
        or (
            {{ identifier_type }} = 'social_handle'
            and lower(trim({{ dbt.split_part(identifier_value, "':'", 2) }})) in ({{ sql_literal_list(blocklist) }})
        )
    )
    {%- endif -%}
{%- endmacro %}
