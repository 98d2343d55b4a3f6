{#-
    Incremental strategy 'replace_partitions': the model's batch holds, for
    every partition (unique_key, e.g. person_id) it recomputed, all of the
    partition's new rows plus one tombstone row (column _tombstone = true).
    Every target row of those partitions is deleted, then the batch's rows
    that are not tombstones are inserted. A partition that has no row any
    more (a person merged into another) is emptied by its tombstone alone.
    Config: unique_key (the partition column), incremental_strategy =
    'replace_partitions'. The model selects `false as _tombstone` on its
    real rows only in incremental runs (the column is not in the table).
-#}
{% macro get_incremental_replace_partitions_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set key = arg_dict['unique_key'] -%}
    {%- set dest_cols_csv = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }}
    where {{ key }} in (select {{ key }} from {{ source }});

    insert into {{ target }} ({{ dest_cols_csv }})
    select {{ dest_cols_csv }}
    from {{ source }}
    where not _tombstone
{%- endmacro %}
