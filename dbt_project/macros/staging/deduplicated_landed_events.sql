{#-
    The landed events of one Kafka topic, one row per event_id.

    - renames the Kafka coordinates (partition / offset are SQL keywords)
      to kafka_topic / kafka_partition / kafka_offset / kafka_key;
    - keeps the first landed copy of a redelivered event: lowest partition,
      then lowest offset (a total, deterministic order within a topic);
    - counts the deliveries (n_deliveries) and keeps when the last copy
      landed (last_received_at: the watermark of every incremental model);
    - never relies on arrival order for anything else: occurred_at (event
      time) is the truth downstream;
    - an event_id landed on more than one topic (a producer bug) is staged
      by the topic whose copy landed first only (ties: topic name), so the
      five staging models hold each event_id once between them.

    Incremental: an event_id is recomputed (delete+insert) from all its
    copies when any copy of it landed after the model's max(last_received_at)
    less var incremental_lookback_hours, so a late duplicate updates
    n_deliveries and a first copy landed out of order still wins. All its
    copies landed at or after its first_received_at (the earliest copy, kept
    in the staged row), and the copies of an event not staged yet after the
    watermark: copies are looked up from the least of those instants, a
    literal, so the older row groups of landed_events are skipped by their
    min/max instead of reading the topic's whole event_id column.

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
        first_received_at,
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
            min(received_at) over (partition by event_id) as first_received_at,
            row_number() over (
                partition by event_id
                order by {{ partition_col }}, {{ offset_col }}
            ) as delivery_rank,
            count(*) over (partition by event_id) as n_deliveries
        from {{ source('landing', 'landed_events') }}
        where topic = {{ dbt.string_literal(topic) }}
        {%- if is_incremental() %}
            {%- set landed_after_watermark -%}
                select event_id
                from {{ source('landing', 'landed_events') }}
                where topic = {{ dbt.string_literal(topic) }}
                    and received_at > {{ own_received_watermark() }}
            {%- endset %}
            and received_at >= {{ earliest_copy(landed_after_watermark) }}
            and event_id in (
                {{ landed_after_watermark | indent(12) }}
            )
        {%- endif %}
    ) as landed
    where delivery_rank = 1
        -- event_id is the key of one event across all topics: when a producer sent the same
        -- event_id on two topics (a request id reused for a consent and an email), the copy
        -- landed first wins (same instant: the topic first in name order) and the other topics'
        -- staging drop theirs, so the union of the five staging models stays one row per event_id
        and not exists (
            select 1
            from {{ source('landing', 'landed_events') }} as other_topic
            where other_topic.event_id = landed.event_id
                and other_topic.topic <> {{ dbt.string_literal(topic) }}
                and (other_topic.received_at < landed.first_received_at
                    or (other_topic.received_at = landed.first_received_at
                        and other_topic.topic < {{ dbt.string_literal(topic) }}))
        )
{%- endmacro %}


{#-
    The earliest landing time of a copy of the events selected by
    `event_ids_sql` (their staged first_received_at), or the watermark if
    earlier, as a literal: every copy of those events landed at or after it.
    '-infinity' (every copy is read) when a staged row lacks
    first_received_at (staged before the column existed).
-#}
{% macro earliest_copy(event_ids_sql) -%}
    {%- set minus_infinity = "cast('-infinity' as timestamp with time zone)" -%}
    {%- if not execute -%}
        {{ return(minus_infinity) }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
    {%- if 'first_received_at' not in columns -%}
        {{ return(minus_infinity) }}
    {%- endif -%}
    {%- set watermark = own_received_watermark() -%}
    {%- if 'infinity' in watermark -%}
        {{ return(minus_infinity) }}
    {%- endif -%}
    {%- set sql -%}
        select
            count(*) filter (where first_received_at is null) as n_unknown,
            strftime(least(
                {{ watermark }},
                coalesce(min(first_received_at), {{ watermark }})
            ) at time zone 'UTC', '%Y-%m-%d %H:%M:%S.%f') as earliest
        from {{ this }}
        where event_id in ({{ event_ids_sql }})
    {%- endset -%}
    {%- set row = run_query(sql).rows[0] -%}
    {%- if row[0] > 0 -%}
        {{ return(minus_infinity) }}
    {%- endif -%}
    {{ return("cast(" ~ dbt.string_literal(row[1] ~ '+00') ~ " as timestamp with time zone)") }}
{%- endmacro %}
