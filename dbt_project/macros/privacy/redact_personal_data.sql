{#-
    Free text as analysts may read it: the personal data people write into
    public posts ("call me on 06 12 34 56 78", "mail me at jane@x.com") is
    replaced by a placeholder, so a quoted post never puts an identifier into
    an analyst-facing mart (and never fails the snapshot's pseudonymised
    contract, contracts/published/pseudonymised.yml, which would stop every
    publish). In this order:
      - emails                                        -> [email]
      - platform:handle and bare @mentions             -> [handle]
      - phone numbers: '+' then 7 or more digits, or 9 or more digits,
        with spaces, dots, dashes, slashes or brackets between them -> [phone]
        (long card or order numbers are masked too; dates and amounts are not)
    It covers more than the contract's patterns, never less.
-#}
{% macro redact_personal_data(text) -%}
    {{ return(adapter.dispatch('redact_personal_data')(text)) }}
{%- endmacro %}

{% macro default__redact_personal_data(text) -%}
regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
    {{ text }},
    '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}', '[email]', 'g'),
    '[A-Za-z][A-Za-z0-9_.-]*:@?[A-Za-z0-9_][A-Za-z0-9_.]*', '[handle]', 'g'),
    '@[A-Za-z0-9_][A-Za-z0-9_.]*', '[handle]', 'g'),
    '\+[ (]*[0-9]([ .()/-]{0,2}[0-9]){6,}', '[phone]', 'g'),
    '[0-9]([ .()/-]{0,2}[0-9]){8,}', '[phone]', 'g')
{%- endmacro %}
