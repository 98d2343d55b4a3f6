{#-
    The landed events of one Kafka topic, one row per event_id.

    - renames the Kafka coordinates (partition / offset are SQL keywords)
      to kafka_topic / kafka_partition / kafka_offset / kafka_key;
    - keeps the first landed copy of a redelivered event: lowest partition,
      then lowest offset (a total, deterministic order within a topic);
    - counts the deliveries (n_deliveries) and keeps when the last copy
      landed (last_received_at: the watermark of every incremental model);
    - never relies on arrival order for anything else: occurred_at (event
      time) is the truth downstream.

    Incremental: an event_id is recomputed (delete+insert) when any copy of
    it landed after the model's max(last_received_at) less var
    incremental_lookback_hours, so a late duplicate updates n_deliveries and
    a first copy landed out of order still wins.

    Used by every stg_landing__* model; the topic-specific columns are
    added by the model itself.
-#}
{% macro deduplicated_landed_events(topic) -%}
    {%- set partition_col = adapter.quote('partition') -%}
    {%- set offset_col = adapter.quote('offset') -%}
    select
        event_id,
        event_type,
        channel,
        occurred_at,
        source,
        schema_version,
        {% for identifier in identifier_columns() -%}
        {{ identifier }},
        {% endfor -%}
        properties,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        kafka_key,
        kafka_timestamp,
        received_at,
        last_received_at,
        n_deliveries
    from (
        select
            event_id,
            event_type,
            channel,
            occurred_at,
            source,
            schema_version,
            {% for identifier in identifier_columns() -%}
            {{ identifier }},
            {% endfor -%}
            properties,
            topic as kafka_topic,
            {{ partition_col }} as kafka_partition,
            {{ offset_col }} as kafka_offset,
            record_key as kafka_key,
            kafka_timestamp,
            received_at,
            max(received_at) over (partition by event_id) as last_received_at,
            row_number() over (
                partition by event_id
                order by {{ partition_col }}, {{ offset_col }}
            ) as delivery_rank,
            count(*) over (partition by event_id) as n_deliveries
        from {{ source('landing', 'landed_events') }}
        where topic = {{ dbt.string_literal(topic) }}
        {%- if is_incremental() %}
            and event_id in (
                select event_id
                from {{ source('landing', 'landed_events') }}
                where topic = {{ dbt.string_literal(topic) }}
                    and received_at > {{ own_received_watermark() }}
            )
        {%- endif %}
    ) as landed
    where delivery_rank = 1
{%- endmacro %}
