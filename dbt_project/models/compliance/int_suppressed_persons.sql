-- Persons (identity-graph components) holding at least one identifier on
-- the suppression list, i.e. identifiers of an erased person that came back
-- (ingest drops such records; this is the second line of defence).
-- marketing_audience must exclude them. The keyed hash is the one used
-- everywhere: sha256(key || ':' || identifier_type || ':' || value), with
-- key = env OMNIVUE_PSEUDONYM_KEY (no cross-database sha256 macro exists:
-- sha256() is DuckDB's).

{{ config(materialized='table') }}

{%- set pseudonym_key = env_var('OMNIVUE_PSEUDONYM_KEY', 'omnivue-local-dev-key') | replace("'", "''") %}

with

identity_components as (

    select * from {{ ref('int_identity_components') }}

),

suppressed as (

    select * from {{ ref('stg_compliance__suppressed_identifiers') }}

),

hashed as (

    select
        person_id,
        identifier_type,
        sha256('{{ pseudonym_key }}' || ':' || identifier_type || ':' || identifier_value) as identifier_hash

    from identity_components

),

final as (

    select
        hashed.person_id,
        count(*) as n_suppressed_identifiers,
        min(suppressed.suppressed_at) as first_suppressed_at

    from hashed
    inner join suppressed
        on hashed.identifier_type = suppressed.identifier_type
        and hashed.identifier_hash = suppressed.identifier_hash
    group by hashed.person_id

)

select * from final
