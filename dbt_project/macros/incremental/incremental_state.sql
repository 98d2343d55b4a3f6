{#-
    Watermarks of the incremental models (docs/identity.md, "Incremental").

    Each incremental model below staging keeps one row in
    dbt_incremental_state, written by its post-hook in the same transaction
    as its data: up to which landing time (received_at) it has read its
    upstream events, up to which identity run (int_identity_history) it has
    applied person changes, and up to which sentiment score (scored_at).
    The next incremental build reprocesses what came after those marks (the
    landing mark less var incremental_lookback_hours), so a model that failed
    or was skipped catches up by itself. A full refresh rewrites the row.
    The staging models need none: their own max(last_received_at) is theirs.
-#}

{% macro incremental_state_relation() -%}
    {{ return(api.Relation.create(database=target.database, schema=target.schema, identifier='dbt_incremental_state')) }}
{%- endmacro %}

{% macro create_incremental_state_table() -%}
    create table if not exists {{ incremental_state_relation() }} (
        model varchar primary key,
        received_at timestamp with time zone,
        identity_run bigint,
        scored_at timestamp with time zone,
        updated_at timestamp with time zone
    )
{%- endmacro %}

{#-
    The model's landing watermark less the lookback: events whose
    last_received_at is after it are (re)processed. '-infinity' when the
    model has no state row yet (everything is reprocessed).
-#}
{% macro received_watermark() -%}
    coalesce(
        (select received_at from {{ incremental_state_relation() }} where model = {{ dbt.string_literal(this.identifier) }})
            - interval '{{ var("incremental_lookback_hours") | int }} hours',
        cast('-infinity' as timestamp with time zone)
    )
{%- endmacro %}

{#- The last identity run whose person changes the model has applied (-1: none). -#}
{% macro identity_run_watermark() -%}
    coalesce(
        (select identity_run from {{ incremental_state_relation() }} where model = {{ dbt.string_literal(this.identifier) }}),
        -1
    )
{%- endmacro %}

{#- The last sentiment score (scored_at) the model has read. -#}
{% macro scored_watermark() -%}
    coalesce(
        (select scored_at from {{ incremental_state_relation() }} where model = {{ dbt.string_literal(this.identifier) }})
            - interval '{{ var("incremental_lookback_hours") | int }} hours',
        cast('-infinity' as timestamp with time zone)
    )
{%- endmacro %}

{#-
    Post-hook SQL: record what this build has read. received_from: the
    relation(s) whose last_received_at bounds what the model read (its
    upstream events); identity_run: from int_identity_history (identity=false
    for the models upstream of it); scored_at from the sentiment source.
-#}
{% macro save_incremental_state(received_from, sentiment=false, identity=true) -%}
    {%- set sources = [received_from] if received_from is string else received_from -%}
    delete from {{ incremental_state_relation() }} where model = {{ dbt.string_literal(this.identifier) }};
    insert into {{ incremental_state_relation() }} (model, received_at, identity_run, scored_at, updated_at)
    select
        {{ dbt.string_literal(this.identifier) }},
        (select max(last_received_at) from (
            {%- for relation in sources %}
            select max(last_received_at) as last_received_at from {{ ref(relation) }}
            {%- if not loop.last %} union all{% endif %}
            {%- endfor %}
        ) as upstream),
        {%- if identity %}
        (select coalesce(max(identity_run), 0) from {{ ref('int_identity_history') }}),
        {%- else %}
        null,
        {%- endif %}
        {%- if sentiment %}
        (select max(scored_at) from {{ source('sentiment', 'social_sentiment') }}),
        {%- else %}
        null,
        {%- endif %}
        {{ dbt.current_timestamp() }}
{%- endmacro %}
