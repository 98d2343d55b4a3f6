{#-
    Deterministic person id of a connected component: 'p_' followed by the
    first 16 hex digits of the hash of the component's smallest node key.
    Same data -> same id on every run and every engine with md5.
-#}
{% macro person_id_from_key(component_key) -%}
    {{ dbt.concat(["'p_'", "substr(" ~ dbt.hash(component_key) ~ ", 1, 16)"]) }}
{%- endmacro %}
