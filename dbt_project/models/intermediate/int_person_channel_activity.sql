-- Activity of every person on every channel (the three interaction
-- channels and the consent and identity topics): counts, first and last
-- event, marketing sends, engagement, purchases and the sentiment of what
-- the person wrote on social networks. The per-person input of
-- channel_engagement and customer_360, maintained incrementally (strategy
-- replace_partitions, one partition per person):
-- - persons whose stored totals may be wrong are recomputed from all their
--   events: an identity change (either side: events moved), a new consent
--   event (the consent in force at every send may change), a new
--   score for a message already counted, or a new message with the same
--   event time as the stored latest scored one (the tie is broken by
--   event_id, which is not stored); a person that no longer exists (merged
--   into another) is emptied;
-- - every other person with newly landed events gets the events it has not
--   counted yet (int_event_log: built after the build this model last
--   counted) added to its stored totals, and the newest last_received_at of
--   its re-read events (a late duplicate moves it).
-- Counts and decimal sums add up, first / last times are the least /
-- greatest: the result is the same as a full refresh.

{#- on_schema_change ignore: the batch's _tombstone column is not one of the table -#}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_partitions',
    unique_key='person_id',
    on_schema_change='ignore',
    post_hook="{{ save_incremental_state('int_events', sentiment=true, event_log=true) }}"
) }}

-- depends_on: {{ ref('int_identity_history') }}
-- depends_on: {{ ref('int_events') }}
-- depends_on: {{ ref('int_event_log') }}
-- depends_on: {{ source('sentiment', 'social_sentiment') }}

{%- set weights = var('engagement_weights', {}) %}
{%- set authored = "(interactions.event_type in ('social.mention', 'social.comment') or (interactions.event_type = 'social.direct_message' and not interactions.is_brand_sent))" %}
{%- set counted_run = logged_run_watermark() if is_incremental() else 'null' %}
{#- additive: the stored totals can be added to (a state row that says which events they count) -#}
{%- set additive = is_incremental() and counted_run != 'null' %}

{#- per (person, channel) over the rows of `joined`; sums of decimals: exact, and they add up -#}
{%- set aggregates %}
        count(*) as n_events,
        min(occurred_at) as first_event_at,
        max(occurred_at) as last_event_at,
        count(case when is_marketing_send then 1 end) as marketing_sends,
        count(case when is_marketing_send and not consent_in_force then 1 end) as marketing_sends_without_consent,
        count(case when event_type = 'email.opened' then 1 end) as email_opens,
        count(case when event_type = 'email.clicked' then 1 end) as email_clicks,
        count(case when event_type = 'mobile.push_opened' then 1 end) as push_opens,
        count(case when event_type = 'mobile.purchase' then 1 end) as purchases,
        coalesce(sum(case when event_type = 'mobile.purchase' then amount end), 0) as revenue,
        min(case when event_type = 'mobile.purchase' then occurred_at end) as first_purchase_at,
        max(case when event_type = 'mobile.purchase' then occurred_at end) as last_purchase_at,
        sum(cast(engagement_weight as decimal(18, 3))) as engagement_score_sum,
        count(case when is_authored_social_message then 1 end) as social_messages,
        count(case when is_authored_social_message and sentiment_score is not null then 1 end) as scored_social_messages,
        -- exact decimal sums: a float sum depends on the order rows are added in, so an
        -- incremental build could differ from a full refresh in the last digit
        sum(case when is_authored_social_message then cast(sentiment_score as decimal(18, 9)) end) as sentiment_score_sum,
        {{ arg_max_by("case when is_authored_social_message and sentiment_score is not null then sentiment_score end",
                      ["is_authored_social_message and sentiment_score is not null", "occurred_at", "event_id"]) }} as latest_sentiment_score,
        {{ arg_max_by("case when is_authored_social_message and sentiment_score is not null then sentiment_label end",
                      ["is_authored_social_message and sentiment_score is not null", "occurred_at", "event_id"]) }} as latest_sentiment_label,
        max(case when is_authored_social_message and sentiment_score is not null then occurred_at end) as latest_sentiment_at,
        max(last_received_at) as last_received_at
{%- endset %}

{#- the events of `events` with their judgement in fct_interactions (`interactions`) -#}
{%- set joined_columns %}
        events.person_id,
        events.channel,
        events.event_type,
        events.occurred_at,
        events.event_id,
        events.last_received_at,
        coalesce(interactions.is_marketing_send, false) as is_marketing_send,
        coalesce(interactions.consent_in_force, false) as consent_in_force,
        coalesce(interactions.is_brand_sent, false) as is_brand_sent,
        interactions.amount,
        interactions.sentiment_score,
        interactions.sentiment_label,
        {{ authored }} as is_authored_social_message,
        case
            when interactions.is_brand_sent then 0
            {%- for event_type, weight in weights.items() %}
            when events.event_type = {{ dbt.string_literal(event_type) }} then {{ weight }}
            {%- endfor %}
            else 0
        end as engagement_weight
{%- endset %}

{%- set columns = ['n_events', 'first_event_at', 'last_event_at', 'marketing_sends', 'marketing_sends_without_consent',
                   'email_opens', 'email_clicks', 'push_opens', 'purchases', 'revenue', 'first_purchase_at',
                   'last_purchase_at', 'engagement_score', 'social_messages', 'scored_social_messages',
                   'sentiment_score_sum', 'latest_sentiment_score', 'latest_sentiment_label', 'latest_sentiment_at',
                   'last_received_at'] %}

with

{% if additive %}
-- the events int_events added since the build this model last counted (the log is
-- appended build after build: the old row groups are skipped by their min/max)
new_events as (

    select event_id
    from {{ ref('int_event_log') }}
    where logged_run > {{ counted_run }}

),

-- the events landed after the watermark (new ones and re-read ones), with their person
landed as (

    select event_id, person_id, channel, event_type, occurred_at, last_received_at
    from {{ ref('int_events') }}
    where last_received_at > {{ received_watermark() }}
        and person_id is not null

),

new_joined as (

    select
        {{ joined_columns }}

    from landed as events
    left join {{ ref('fct_interactions') }} as interactions
        on events.event_id = interactions.event_id
    where events.event_id in (select event_id from new_events)

),

new_totals as (

    select
        person_id,
        channel,
        {{ aggregates }}

    from new_joined
    group by person_id, channel

),

-- persons whose stored totals cannot be added to (see the header)
changed_persons as (

    {{ identity_changed_persons() }}

    union

    select person_id
    from landed
    where channel = 'consent'
        and event_id in (select event_id from new_events)

    union

    -- a new score for a message already counted
    {{ scored_persons(except_events='new_events') }}

),

stored as (

    select * from {{ this }}
    where person_id in (select person_id from landed union select person_id from new_totals)

),

recomputed_persons as (

    select person_id from changed_persons

    union

    select new_totals.person_id
    from new_totals
    inner join stored
        on new_totals.person_id = stored.person_id
        and new_totals.channel = stored.channel
    where new_totals.latest_sentiment_at = stored.latest_sentiment_at

),

-- the other persons with re-read events: their newest last_received_at per channel
added_persons as (

    select person_id, channel, max(last_received_at) as last_received_at
    from landed
    where person_id not in (select person_id from recomputed_persons)
    group by person_id, channel

),

added as (

    select
        coalesce(stored.person_id, new_totals.person_id, added_persons.person_id) as person_id,
        coalesce(stored.channel, new_totals.channel, added_persons.channel) as channel,
        coalesce(stored.n_events, 0) + coalesce(new_totals.n_events, 0) as n_events,
        least(stored.first_event_at, new_totals.first_event_at) as first_event_at,
        greatest(stored.last_event_at, new_totals.last_event_at) as last_event_at,
        {% for column in ['marketing_sends', 'marketing_sends_without_consent', 'email_opens', 'email_clicks',
                          'push_opens', 'purchases', 'revenue', 'social_messages', 'scored_social_messages'] -%}
        coalesce(stored.{{ column }}, 0) + coalesce(new_totals.{{ column }}, 0) as {{ column }},
        {% endfor -%}
        least(stored.first_purchase_at, new_totals.first_purchase_at) as first_purchase_at,
        greatest(stored.last_purchase_at, new_totals.last_purchase_at) as last_purchase_at,
        -- a decimal(18, 3) sum stored as a double comes back exactly
        cast(coalesce(cast(stored.engagement_score as decimal(38, 3)), 0)
             + coalesce(new_totals.engagement_score_sum, 0) as double) as engagement_score,
        case when stored.sentiment_score_sum is not null or new_totals.sentiment_score_sum is not null
            then coalesce(stored.sentiment_score_sum, 0) + coalesce(new_totals.sentiment_score_sum, 0)
        end as sentiment_score_sum,
        -- ties were recomputed: the later one wins
        case when new_totals.latest_sentiment_at > stored.latest_sentiment_at or stored.latest_sentiment_at is null
            then new_totals.latest_sentiment_score else stored.latest_sentiment_score end as latest_sentiment_score,
        case when new_totals.latest_sentiment_at > stored.latest_sentiment_at or stored.latest_sentiment_at is null
            then new_totals.latest_sentiment_label else stored.latest_sentiment_label end as latest_sentiment_label,
        greatest(stored.latest_sentiment_at, new_totals.latest_sentiment_at) as latest_sentiment_at,
        greatest(stored.last_received_at, new_totals.last_received_at, added_persons.last_received_at) as last_received_at

    from (select * from stored where person_id not in (select person_id from recomputed_persons)) as stored
    full outer join (select * from new_totals where person_id not in (select person_id from recomputed_persons)) as new_totals
        on stored.person_id = new_totals.person_id
        and stored.channel = new_totals.channel
    full outer join added_persons
        on coalesce(stored.person_id, new_totals.person_id) = added_persons.person_id
        and coalesce(stored.channel, new_totals.channel) = added_persons.channel
    -- a channel with neither stored totals nor new events: nothing to write
    where stored.person_id is not null or new_totals.person_id is not null

),
{% elif is_incremental() %}
-- no record of the events counted (first incremental build after an upgrade): recompute
recomputed_persons as (

    {{ changed_persons(sentiment=true) }}

),
{% endif %}

events as (

    select event_id, person_id, channel, event_type, occurred_at, last_received_at
    from {{ ref('int_events') }}
    where person_id is not null
    {%- if is_incremental() %}
        and {{ keyed_in('person_id', 'person_key', 'recomputed_persons') }}
    {%- endif %}

),

-- the interactions as judged by fct_interactions (built just before, incrementally)
interactions as (

    select * from {{ ref('fct_interactions') }}
    where person_id is not null
    {%- if is_incremental() %}
        and {{ keyed_in('person_id', 'person_key', 'recomputed_persons') }}
    {%- endif %}

),

joined as (

    select
        {{ joined_columns }}

    from events
    left join interactions
        on events.event_id = interactions.event_id

),

totals as (

    select
        person_id,
        channel,
        {{ aggregates }}

    from joined
    group by person_id, channel

),

final as (

    select
        person_id,
        channel,
        {% for column in columns -%}
        {% if column == 'engagement_score' -%}
        cast(engagement_score_sum as double) as engagement_score
        {%- else -%}
        {{ column }}
        {%- endif %}{% if not loop.last or is_incremental() %},{% endif %}
        {% endfor -%}
        {%- if is_incremental() %}
        false as _tombstone
        {%- endif %}

    from totals

    {%- if additive %}

    union all

    select
        person_id,
        channel,
        {% for column in columns -%}
        {{ column }},
        {% endfor -%}
        false as _tombstone

    from added
    {%- endif %}

    {%- if is_incremental() %}

    union all

    -- one tombstone per recomputed or added-to person: empties the persons that no longer exist
    select
        person_id, null, {% for column in columns %}null, {% endfor %}true as _tombstone
    from (
        select person_id from recomputed_persons
        {%- if additive %}
        union
        select person_id from added
        {%- endif %}
    ) as rewritten
    {%- endif %}

)

select * from final
