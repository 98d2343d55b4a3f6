{#-
    How a dbt Python model's result is written: dbt-duckdb's py_write_table
    (dbt/include/duckdb/macros/adapters.sql in dbt-duckdb 1.11), overridden by
    this project for two things:
    - the batch of an incremental Python model (a temporary relation) is
      written as a TEMPORARY table, as the SQL models' batches are. dbt-duckdb
      writes it as a table of the target schema and, since it asked for a
      temporary one, never drops it: every incremental run left one
      `<model>__dbt_tmp<timestamp>` table per Python model behind
      (int_identity_raw_components, int_identity_history), and the warehouse's
      catalog grew with every run (drop_leftover_batches() removes those);
    - pyarrow is imported only when the model returned an Arrow table (the
      incremental identity models return DuckDB relations).
-#}
{% macro py_write_table(temporary, relation, compiled_code, partitioned_by=none, sorted_by=none) -%}
{{ compiled_code }}

def materialize(df, con):
    if type(df).__module__.split(".")[0] == "pyarrow":
        # https://github.com/duckdb/duckdb/issues/6584
        import pyarrow.dataset  # noqa: F401
    tmp_name = '__dbt_python_model_df_' + '{{ relation.identifier }}'
    con.register(tmp_name, df)
    {% set target = relation.include(database=(not temporary), schema=(not temporary)) -%}
    {% set create = 'create temporary table' if temporary else 'create table' -%}
    {% if partitioned_by or sorted_by %}
    con.execute('{{ create }} {{ target }} as select * from ' + tmp_name + ' limit 0')
    {% if partitioned_by %}
    con.execute('alter table {{ target }} set partitioned by ({{ partitioned_by }})')
    {% endif %}
    {% if sorted_by %}
    con.execute('alter table {{ target }} set sorted by ({{ sorted_by }})')
    {% endif %}
    con.execute('insert into {{ target }} select * from ' + tmp_name)
    {% else %}
    con.execute('{{ create }} {{ target }} as select * from ' + tmp_name)
    {% endif %}
    con.unregister(tmp_name)
{%- endmacro %}

{#-
    on-run-start: drop the batches of Python models that earlier runs left in
    the target schema (see py_write_table above). dbt's own batches are
    temporary tables and its intermediate tables are renamed or dropped by
    the run that made them, so a table of the schema whose name ends in
    `__dbt_tmp` and a timestamp is such a leftover (one writer at a time:
    no other run can be using it).
-#}
{% macro drop_leftover_batches() -%}
    {%- if execute -%}
        {%- set leftovers = run_query(
            "select table_name from duckdb_tables() where database_name = " ~ dbt.string_literal(target.database)
            ~ " and schema_name = " ~ dbt.string_literal(target.schema)
            ~ " and not temporary and regexp_matches(table_name, '__dbt_tmp[0-9]{14,}$')") -%}
        {%- for row in leftovers.rows %}
            drop table if exists {{ api.Relation.create(database=target.database, schema=target.schema, identifier=row[0]) }};
        {%- endfor %}
    {%- endif -%}
    select 1
{%- endmacro %}
