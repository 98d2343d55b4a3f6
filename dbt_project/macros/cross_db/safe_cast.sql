{#-
    DuckDB implementation of dbt.safe_cast (dbt's default is a plain cast,
    which would fail the whole build on one malformed value). Picked up
    through the `dispatch` search order in dbt_project.yml.
-#}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}
