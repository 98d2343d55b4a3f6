{#-
    Deterministic, pseudonymous person id of a connected component: 'p_'
    followed by the first 16 hex digits of the hash of the pseudonymisation
    key (env OMNIVUE_PSEUDONYM_KEY) and the component's smallest node key.
    Same data and key -> same id on every run and every engine with md5; the
    key keeps the id from being recomputed from a known email address.
-#}
{% macro person_id_from_key(component_key) -%}
    {%- set salt = "'" ~ env_var('OMNIVUE_PSEUDONYM_KEY', 'omnivue-local-dev-key') | replace("'", "''") ~ "|'" -%}
    {{ dbt.concat(["'p_'", "substr(" ~ dbt.hash(dbt.concat([salt, component_key])) ~ ", 1, 16)"]) }}
{%- endmacro %}
