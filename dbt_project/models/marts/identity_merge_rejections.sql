-- Every identifier kept out of a person and every identity link not
-- applied, with the reason: the over-merge guards at work.
--   'blocklisted'     a placeholder value (var identity_blocklist /
--                     identity_blocklist_patterns): nobody's, links nothing;
--   'shared', 'hub'   an identifier several people use
--                     (int_identity_shared_identifiers): nobody's, links
--                     nothing; its events go to their other identifiers;
--   'limit_exceeded'  a link (two identifiers seen together) that would give
--                     one person more values of a type than var
--                     identity_max_per_person allows
--                     (int_identity_rejected_edges): both identifiers keep
--                     their persons, the link is not applied.
-- Holds identifier values (compliance).
-- The inputs are `not materialized`: each use reads only the rows it joins
-- with (a handful), instead of a copy of every node, person and edge.

with

nodes as not materialized (

    select * from {{ ref('int_identity_nodes') }}

),

shared as not materialized (

    select * from {{ ref('int_identity_shared_identifiers') }}

),

rejected as not materialized (

    select * from {{ ref('int_identity_rejected_edges') }}

),

components as not materialized (

    select * from {{ ref('int_identity_components') }}

),

edges as not materialized (

    select * from {{ ref('int_identity_edges') }}

),

-- persons a shared identifier was seen with (only the edges of shared identifiers are read)
involved as (

    select node_key, count(distinct person_id) as n_persons
    from (
        select edges.node_key_a as node_key, components.person_id
        from edges inner join components on components.node_key = edges.node_key_b
        where edges.node_key_a in (select node_key from shared)
        union all
        select edges.node_key_b as node_key, components.person_id
        from edges inner join components on components.node_key = edges.node_key_a
        where edges.node_key_b in (select node_key from shared)
    ) as seen_with
    group by node_key

),

blocklisted as (

    select
        'blocklisted' as rejection_kind,
        nodes.node_key,
        nodes.identifier_type,
        nodes.identifier_value,
        cast(null as {{ dbt.type_string() }}) as other_identifier_type,
        cast(null as {{ dbt.type_string() }}) as other_identifier_value,
        cast(null as {{ dbt.type_string() }}) as person_id,
        cast(null as {{ dbt.type_string() }}) as other_person_id,
        'placeholder value (identity_blocklist / identity_blocklist_patterns)' as reason,
        nodes.first_event_id as event_id,
        nodes.first_seen_at,
        nodes.last_seen_at,
        nodes.n_events

    from nodes
    where nodes.is_blocklisted

),

shared_identifiers as (

    select
        shared.reason as rejection_kind,
        shared.node_key,
        shared.identifier_type,
        shared.identifier_value,
        cast(null as {{ dbt.type_string() }}) as other_identifier_type,
        cast(null as {{ dbt.type_string() }}) as other_identifier_value,
        cast(null as {{ dbt.type_string() }}) as person_id,
        cast(null as {{ dbt.type_string() }}) as other_person_id,
        {{ dbt.concat(['shared.reason_detail', "'; seen with '", dbt.safe_cast('coalesce(involved.n_persons, 0)', dbt.type_string()), "' persons'"]) }} as reason,
        nodes.first_event_id as event_id,
        shared.first_seen_at,
        shared.last_seen_at,
        shared.n_events

    from shared
    inner join nodes
        on shared.node_key = nodes.node_key
    left join involved
        on shared.node_key = involved.node_key

),

rejected_links as (

    select
        'limit_exceeded' as rejection_kind,
        rejected.node_key_a as node_key,
        rejected.identifier_type_a as identifier_type,
        node_a.identifier_value,
        rejected.identifier_type_b as other_identifier_type,
        node_b.identifier_value as other_identifier_value,
        person_a.person_id,
        person_b.person_id as other_person_id,
        rejected.reason,
        rejected.first_event_id as event_id,
        rejected.first_linked_at as first_seen_at,
        rejected.latest_event_at as last_seen_at,
        rejected.n_events

    from rejected
    inner join nodes as node_a
        on rejected.node_key_a = node_a.node_key
    inner join nodes as node_b
        on rejected.node_key_b = node_b.node_key
    left join components as person_a
        on rejected.node_key_a = person_a.node_key
    left join components as person_b
        on rejected.node_key_b = person_b.node_key

),

unioned as (

    select * from blocklisted
    union all
    select * from shared_identifiers
    union all
    select * from rejected_links

),

final as (

    select
        {{ dbt.hash(dbt.concat(['rejection_kind', "'|'", 'node_key', "'|'", "coalesce(other_identifier_type, '')", "'|'", "coalesce(other_identifier_value, '')"])) }} as rejection_id,
        rejection_kind,
        identifier_type,
        identifier_value,
        other_identifier_type,
        other_identifier_value,
        person_id,
        other_person_id,
        reason,
        event_id,
        first_seen_at,
        last_seen_at,
        n_events

    from unioned

)

select * from final
