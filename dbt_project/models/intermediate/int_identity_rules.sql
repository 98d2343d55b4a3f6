-- The identity-resolution rules of vars identity_priority and
-- identity_max_per_person as a table, for the Python models of the identity
-- graph (which cannot read vars): one row per identifier type.

with

identifier_types as (

    {{ literal_rows('identifier_type', identifier_columns()) }}

),

final as (

    select
        identifier_type,
        {{ identifier_priority('identifier_type') }} as identifier_priority,
        {{ identifier_max_per_person('identifier_type') }} as max_per_person

    from identifier_types

)

select * from final
