{#-
    on-run-start: when the latest dbt invocation that writes models began
    (dbt_build_started, one row). `omnivue publish` publishes only marts
    whose contract verification started after it: a run killed between its
    dbt build and the end of its verification leaves rebuilt marts that no
    contract has checked, and the previous run's verification must not
    vouch for them (write, audit, then publish).
-#}
{% macro record_build_start() -%}
    {%- if execute and flags.WHICH in ('run', 'build', 'seed', 'snapshot') -%}
    {%- set log = api.Relation.create(database=target.database, schema=target.schema, identifier='dbt_build_started') -%}
    create table if not exists {{ log }} (started_at timestamp with time zone not null, invocation_id varchar);
    delete from {{ log }};
    insert into {{ log }} values ({{ dbt.current_timestamp() }}, {{ dbt.string_literal(invocation_id) }})
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
