{#-
    Incremental strategy 'replace_all', for a small model rebuilt whole but
    only when one of its inputs changed (ereputation_daily): the model's batch
    is either empty (nothing changed: nothing is written) or all of its rows
    plus one tombstone row (column _tombstone = true), in which case every
    target row is deleted and the batch's other rows inserted (a result with
    no rows at all still empties the table). The model selects
    `false as _tombstone` on its real rows only in incremental runs (the
    column is not in the table); config on_schema_change='ignore'.
-#}
{% macro get_incremental_replace_all_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set dest_cols_csv = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }}
    where exists (select 1 from {{ source }} where _tombstone);

    insert into {{ target }} ({{ dest_cols_csv }})
    select {{ dest_cols_csv }}
    from {{ source }}
    where not _tombstone
{%- endmacro %}
