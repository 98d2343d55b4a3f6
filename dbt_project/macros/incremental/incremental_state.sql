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

{#-
    evaluated_at: the evaluation instant (var as_of) of the model's last build (marketing_audience).
    logged_run: the last build of int_events whose new events (int_event_log) the model has counted
    (int_person_channel_activity).
    inputs_fingerprint: what the model's inputs looked like when it was last built
    (inputs_fingerprint(), ereputation_daily).
-#}
{% macro create_incremental_state_table() -%}
    create table if not exists {{ incremental_state_relation() }} (
        model varchar primary key,
        received_at timestamp with time zone,
        identity_run bigint,
        scored_at timestamp with time zone,
        updated_at timestamp with time zone,
        evaluated_at timestamp with time zone,
        logged_run bigint
    );
    alter table {{ incremental_state_relation() }} add column if not exists evaluated_at timestamp with time zone;
    alter table {{ incremental_state_relation() }} add column if not exists logged_run bigint;
    alter table {{ incremental_state_relation() }} add column if not exists inputs_fingerprint varchar
{%- endmacro %}

{#-
    The watermarks below are read when the model is compiled, just before it
    runs, and written into its SQL as literals: a constant filter such as
    `last_received_at > timestamp '...'` lets DuckDB skip, by their min/max
    (zone maps), the row groups of tables written in landing order, where a
    scalar subquery would make it read the whole column. Outside execution
    (parsing, docs) they render the scalar subquery they stand for.
-#}
{% macro _state_value(column) -%}
    {%- set sql -%}
        select {{ column }} from {{ incremental_state_relation() }} where model = {{ dbt.string_literal(this.identifier) }}
    {%- endset -%}
    {{ return(_scalar_literal(sql)) }}
{%- endmacro %}

{#- The value of a one-row, one-column query as a SQL literal (none: no row or NULL). -#}
{% macro _scalar_literal(sql) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set result = run_query(sql) -%}
    {%- if result.rows | length == 0 or result.rows[0][0] is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set value = result.rows[0][0] -%}
    {%- if value is number -%}
        {{ return(value | string) }}
    {%- endif -%}
    {{ return("cast(" ~ dbt.string_literal(value.isoformat()) ~ " as timestamp with time zone)") }}
{%- endmacro %}

{#-
    The model's landing watermark less the lookback: events whose
    last_received_at is after it are (re)processed. '-infinity' when the
    model has no state row yet (everything is reprocessed).
-#}
{% macro received_watermark() -%}
    {%- set mark = _state_value('received_at') -%}
    {%- if mark -%}
    ({{ mark }} - interval '{{ var("incremental_lookback_hours") | int }} hours')
    {%- else -%}
    cast('-infinity' as timestamp with time zone)
    {%- endif -%}
{%- endmacro %}

{#- The last identity run whose person changes the model has applied (-1: none). -#}
{% macro identity_run_watermark() -%}
    {{- _state_value('identity_run') or -1 -}}
{%- endmacro %}

{#- The last build of int_events whose new events (int_event_log) the model has counted (none: NULL). -#}
{% macro logged_run_watermark() -%}
    {{- _state_value('logged_run') or 'null' -}}
{%- endmacro %}

{#- The model's stored inputs_fingerprint (none: no state row, or none stored). -#}
{% macro stored_inputs_fingerprint() -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set result = run_query("select inputs_fingerprint from " ~ incremental_state_relation()
                               ~ " where model = " ~ dbt.string_literal(this.identifier)) -%}
    {%- if result.rows | length == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(result.rows[0][0]) }}
{%- endmacro %}

{#-
    A fingerprint of a model's inputs, for a model that is rebuilt whole but only when one of
    them changed (ereputation_daily): the state rows of the incremental models it reads (what
    they have applied: landing, identity run, sentiment and event-log marks; a new event, score
    or identity change moves one of them), the row counts of its inputs (an erasure deletes
    rows without moving a mark), the maxima of the given columns of inputs without a state row
    (staging, a source), and the model's own code. none outside execution.
-#}
{% macro inputs_fingerprint(state_of, counted, maxima) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set sql -%}
        select
            (select {{ dbt.listagg("concat_ws(',', model, received_at, identity_run, scored_at, logged_run, evaluated_at)",
                                   "';'", "order by model") }}
             from {{ incremental_state_relation() }}
             where model in ({{ sql_literal_list(state_of | map(attribute='identifier') | list) }}))
            {%- for relation in counted %},
            (select count(*) from {{ relation }})
            {%- endfor %}
            {%- for relation, column in maxima %},
            (select max({{ column }}) from {{ relation }})
            {%- endfor %}
    {%- endset -%}
    {%- set values = run_query(sql).rows[0] | list -%}
    {{ return(local_md5((values | join('|')) ~ '|' ~ model.raw_code)) }}
{%- endmacro %}

{#- The last sentiment score (scored_at) the model has read, less the lookback. -#}
{% macro scored_watermark() -%}
    {%- set mark = _state_value('scored_at') -%}
    {%- if mark -%}
    ({{ mark }} - interval '{{ var("incremental_lookback_hours") | int }} hours')
    {%- else -%}
    cast('-infinity' as timestamp with time zone)
    {%- endif -%}
{%- endmacro %}

{#-
    For the models without a state row (staging, event identifiers, nodes,
    edges): the newest last_received_at of the model itself less the
    lookback, as a literal.
-#}
{% macro own_received_watermark() -%}
    {%- set mark = _scalar_literal("select max(last_received_at) from " ~ this) -%}
    {%- if mark -%}
    ({{ mark }} - interval '{{ var("incremental_lookback_hours") | int }} hours')
    {%- else -%}
    cast('-infinity' as timestamp with time zone)
    {%- endif -%}
{%- endmacro %}

{#-
    Post-hook SQL: record what this build has read. received_from: the
    relation(s) whose last_received_at bounds what the model read (its
    upstream events; none: no landing mark); identity_run: from
    int_identity_history (identity=false for the models upstream of it);
    scored_at from the sentiment source; evaluated_at: the evaluation instant
    the model used (SQL), if any; event_log=true: logged_run from
    int_event_log; fingerprint: an inputs_fingerprint() to store.
-#}
{% macro save_incremental_state(received_from, sentiment=false, identity=true, evaluated_at=none, event_log=false,
                                fingerprint=none) -%}
    {%- set sources = [received_from] if received_from is string else (received_from or []) -%}
    delete from {{ incremental_state_relation() }} where model = {{ dbt.string_literal(this.identifier) }};
    insert into {{ incremental_state_relation() }} (model, received_at, identity_run, scored_at, updated_at, evaluated_at, logged_run,
                                                    inputs_fingerprint)
    select
        {{ dbt.string_literal(this.identifier) }},
        {%- if sources %}
        (select max(last_received_at) from (
            {%- for relation in sources %}
            select max(last_received_at) as last_received_at from {{ ref(relation) }}
            {%- if not loop.last %} union all{% endif %}
            {%- endfor %}
        ) as upstream),
        {%- else %}
        null,
        {%- endif %}
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
        {{ dbt.current_timestamp() }},
        {{ evaluated_at if evaluated_at else 'null' }},
        {%- if event_log %}
        (select max(logged_run) from {{ ref('int_event_log') }}),
        {%- else %}
        null,
        {%- endif %}
        {{ dbt.string_literal(fingerprint) if fingerprint else 'null' }}
{%- endmacro %}

{#- The inputs of ereputation_daily, as inputs_fingerprint() sees them. -#}
{% macro ereputation_inputs_fingerprint() -%}
    {{ return(inputs_fingerprint(
        state_of=[ref('fct_interactions'), ref('int_person_profile'), ref('identity_map')],
        counted=[ref('fct_interactions'), ref('int_person_profile'), ref('identity_map'),
                 ref('stg_landing__social_events'), source('sentiment', 'social_sentiment')],
        maxima=[(ref('stg_landing__social_events'), 'last_received_at'),
                (source('sentiment', 'social_sentiment'), 'scored_at')])) }}
{%- endmacro %}
