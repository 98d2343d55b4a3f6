-- Which person each normalised identifier belongs to. Holds identifier
-- values in clear text: for identity resolution, erasure and access
-- requests (compliance), not for the analysts' published snapshot.

with

identity_components as (

    select * from {{ ref('int_identity_components') }}

),

identity_nodes as (

    select * from {{ ref('int_identity_nodes') }}

),

final as (

    select
        identity_components.identifier_type,
        identity_components.identifier_value,
        identity_components.person_id,
        identity_nodes.first_seen_at,
        identity_nodes.last_seen_at,
        identity_nodes.n_events,
        {{ dbt.hash('identity_components.node_key') }} as identifier_hash

    from identity_components
    inner join identity_nodes
        on identity_components.node_key = identity_nodes.node_key

)

select * from final
