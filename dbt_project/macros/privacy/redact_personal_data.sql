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
regexp_replace(regexp_replace(regexp_replace(
    {{ mask_contact_details(text) }},
    '[A-Za-z][A-Za-z0-9_.-]*:@?[A-Za-z0-9_][A-Za-z0-9_.]*', '[handle]', 'g'),
    '@[A-Za-z0-9_][A-Za-z0-9_.]*', '[handle]', 'g'),
    '[0-9]([ .()/-]{0,2}[0-9]){8,}', '[phone]', 'g')
{%- endmacro %}


{#-
    Codes producers set (fct_interactions.source, campaign_id) keep their
    value, except the emails and international phone numbers ('+' and 7 or
    more digits) in them: a source "newsletter@brand.example" would fail the
    snapshot's pseudonymised contract and stop every publish. Only values
    with an '@' or a '+' go through the regular expressions.
-#}
{% macro mask_contact_details(text) -%}
    {{ return(adapter.dispatch('mask_contact_details')(text)) }}
{%- endmacro %}

{% macro default__mask_contact_details(text) -%}
case when {{ text }} like '%@%' or {{ text }} like '%+%' then regexp_replace(regexp_replace(
    {{ text }},
    '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}', '[email]', 'g'),
    '\+[ (]*[0-9]([ .()/-]{0,2}[0-9]){6,}', '[phone]', 'g')
else {{ text }} end
{%- endmacro %}
