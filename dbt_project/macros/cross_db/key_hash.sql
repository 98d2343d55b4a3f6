{#-
    Hashed keys: a 64-bit hash stored next to a string key (int_events and
    fct_interactions keep `person_key`, the hash of person_id), so that
    finding the rows of a few thousand persons reads one fixed-width column
    instead of decompressing the whole string column (docs/identity.md,
    "Keys that are cheap to scan").

    key_hash(expr): the hash of an expression, as the models store it.
-#}
{% macro key_hash(expr) -%}
    {{ return(adapter.dispatch('key_hash', 'omnivue')(expr)) }}
{%- endmacro %}

{% macro default__key_hash(expr) -%}
    {{ dbt.hash(expr) }}
{%- endmacro %}

{#- DuckDB's hash() is 64-bit and cheap (~10 ns a string); hash(NULL) is a value, never NULL -#}
{% macro duckdb__key_hash(expr) -%}
    hash({{ expr }})
{%- endmacro %}

{#-
    The value key_hash gives the string 'abc' on the database the stored keys
    were written with. A database upgrade that changed the hash function
    would leave stored keys that no longer match: keyed_in then compares the
    strings alone (correct, slower) until the key columns are rewritten (a
    --full-refresh of int_events and fct_interactions) and this constant is
    updated. The test is a constant expression: DuckDB folds it when it plans
    the query, no extra query is needed.
-#}
{% macro key_hash_canary() -%}
    {{ return({'duckdb': '1924864467101078684'}.get(target.type)) }}
{%- endmacro %}

{#-
    A filter keeping the rows of a relation whose `column` is one of the
    values of column `source_column` of the relation or CTE `source`, using
    the row's hashed key `key_column` first: DuckDB pushes the set of hashes
    down into the scan as a filter, reads the fixed-width key column for
    every row and the string column only for the rows whose hash matched.
    The string comparison is kept: a hash collision never adds a row, and a
    key that does not match (see key_hash_canary) never loses one.
    prefix: the table alias with its dot ('stored.'), if any.
-#}
{% macro keyed_in(column, key_column, source, source_column=none, prefix='') -%}
    {%- set source_column = source_column or column -%}
    {%- set canary = key_hash_canary() -%}
    (
        {%- if canary %}
        ({{ key_hash("'abc'") }} <> {{ canary }}
            or {{ prefix }}{{ key_column }} in (select {{ key_hash(source_column) }} from {{ source }}))
        and
        {%- endif %} {{ prefix }}{{ column }} in (select {{ source_column }} from {{ source }}))
{%- endmacro %}

{#- The type key_hash returns. -#}
{% macro key_hash_type() -%}
    {{ return(adapter.dispatch('key_hash_type', 'omnivue')()) }}
{%- endmacro %}

{% macro default__key_hash_type() -%}
    {{ return(dbt.type_string()) }}
{%- endmacro %}

{% macro duckdb__key_hash_type() -%}
    {{ return('ubigint') }}
{%- endmacro %}

{#-
    Pre-hook of a model storing a hashed key (key_column, the hash of
    column). A table written before the column existed gets it, filled on
    every row, before the model's SQL runs: the model and the ones after it
    can look rows up by it (keyed_in) in the same build. Afterwards no row
    group holds a NULL key and the update's filter skips them all by their
    statistics (~1 ms).
-#}
{% macro ensure_key_column(key_column, column) -%}
    {%- if is_incremental() -%}
    alter table {{ this }} add column if not exists {{ key_column }} {{ key_hash_type() }};
    update {{ this }}
    set {{ key_column }} = {{ key_hash(column) }}
    where {{ key_column }} is null
    {%- endif -%}
{%- endmacro %}

{#-
    Whether key_hash still gives key_hash_canary() on this database (asked
    when the model is compiled; true outside execution).
-#}
{% macro key_hash_is_stable() -%}
    {%- set canary = key_hash_canary() -%}
    {%- if canary is none -%}
        {{ return(false) }}
    {%- endif -%}
    {%- if not execute -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set result = run_query("select cast(" ~ key_hash("'abc'") ~ " as varchar)") -%}
    {{ return(result.rows[0][0] == canary) }}
{%- endmacro %}

{#-
    A filter keeping the rows whose hashed key `key_column` is the hash of
    one of the values of `source_column` of `source`, without comparing the
    strings: a superset of the rows keyed_in keeps (a collision adds rows).
    Only for choosing rows to recompute, where an extra row is recomputed to
    what it was (int_events' stitched events). If the hash function moved
    (key_hash_canary), the strings are compared instead: a stored key that
    no longer matches must never lose a row.
-#}
{% macro hashed_in(column, key_column, source, source_column=none, prefix='') -%}
    {%- set source_column = source_column or column -%}
    {%- if key_hash_is_stable() -%}
    {{ prefix }}{{ key_column }} in (select {{ key_hash(source_column) }} from {{ source }})
    {%- else -%}
    {{ prefix }}{{ column }} in (select {{ source_column }} from {{ source }})
    {%- endif -%}
{%- endmacro %}
