{#-
    Rank of an identifier type in var identity_priority (1 = strongest).
    An event belongs to the person of its strongest attributed identifier.
-#}
{% macro identifier_priority(identifier_type) -%}
    case {{ identifier_type }}
        {%- for kind in var('identity_priority') %}
        when {{ dbt.string_literal(kind) }} then {{ loop.index }}
        {%- endfor %}
        else {{ var('identity_priority') | length + 1 }}
    end
{%- endmacro %}

{#- Most distinct values of the type one person may hold (var identity_max_per_person). -#}
{% macro identifier_max_per_person(identifier_type) -%}
    {%- set limits = var('identity_max_per_person') -%}
    case {{ identifier_type }}
        {%- for kind, limit in limits.items() %}
        when {{ dbt.string_literal(kind) }} then {{ limit }}
        {%- endfor %}
    end
{%- endmacro %}
