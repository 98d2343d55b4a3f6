{#-
    True when an identifier value is a placeholder: a value of var
    identity_blocklist (compared trimmed and lower-cased; for social handles
    also the handle after the "platform:" prefix) or a whole-value match of
    a regular expression of var identity_blocklist_patterns for its type (or
    '*'; the patterns of one type are combined into one expression, so each
    value is matched once). Evaluated once per distinct identifier
    (int_identity_nodes): such values neither form nodes of a person nor
    edges, and identity_merge_rejections reports them.
-#}
{% macro is_blocklisted_identifier(identifier_type, identifier_value) -%}
    {%- set blocklist = var('identity_blocklist', []) | map('lower') | list -%}
    {%- set patterns = var('identity_blocklist_patterns', {}) -%}
    {%- set star = patterns.get('*', []) | list -%}
    {%- set value = 'lower(trim(' ~ identifier_value ~ '))' -%}
    {%- set handle = 'lower(trim(' ~ dbt.split_part(identifier_value, "':'", 2) ~ '))' -%}
    (
        false
        {%- if blocklist | length > 0 %}
        or {{ value }} in ({{ sql_literal_list(blocklist) }})
        or ({{ identifier_type }} = 'social_handle' and {{ handle }} in ({{ sql_literal_list(blocklist) }}))
        {%- endif %}
        {%- if patterns | length > 0 %}
        or coalesce(case {{ identifier_type }}
            {%- for kind in var('identity_priority') %}
            {%- set kind_patterns = star + (patterns.get(kind, []) | list) %}
            {%- if kind_patterns | length > 0 %}
            {%- set combined = '(' ~ (kind_patterns | join(')|(')) ~ ')' %}
            when {{ dbt.string_literal(kind) }} then
                {%- if kind == 'social_handle' %}
                {{ regexp_full_match(handle, dbt.string_literal(combined | replace("'", "''"))) }}
                {%- else %}
                {{ regexp_full_match(value, dbt.string_literal(combined | replace("'", "''"))) }}
                {%- endif %}
            {%- endif %}
            {%- endfor %}
        end, false)
        {%- endif %}
    )
{%- endmacro %}
