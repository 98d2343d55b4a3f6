{#- The five staging models, one per Kafka topic. -#}
{% macro staged_event_models() -%}
    {{ return([
        'stg_landing__social_events',
        'stg_landing__email_events',
        'stg_landing__mobile_events',
        'stg_landing__consent_events',
        'stg_landing__identity_events',
    ]) }}
{%- endmacro %}

{#-
    Columns every staging model has (the envelope and the Kafka coordinates).
-#}
{% macro staged_event_common_columns() -%}
    {{ return(
        ['event_id', 'event_type', 'channel', 'occurred_at', 'source', 'schema_version']
        + identifier_columns()
        + ['kafka_topic', 'kafka_partition', 'kafka_offset', 'received_at', 'last_received_at', 'n_deliveries']
    ) }}
{%- endmacro %}

{#-
    UNION ALL of the given common columns over the five staging models,
    each branch filtered by the optional SQL condition `where`.
-#}
{% macro union_staged_events(columns=none, where=none) -%}
    {%- set columns = columns or staged_event_common_columns() -%}
    {%- for model_name in staged_event_models() %}
    select
        {{ columns | join(',\n        ') }}
    from {{ ref(model_name) }}
    {%- if where %}
    where {{ where }}
    {%- endif %}
    {%- if not loop.last %}

    union all
    {% endif -%}
    {%- endfor %}
{%- endmacro %}
