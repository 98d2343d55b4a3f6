{#-
    Half-open validity interval test: valid_from <= t < valid_to
    (valid_to null = open-ended). A tied grant has valid_from = valid_to,
    i.e. an empty interval that no instant falls into.
-#}
{% macro in_interval(instant, valid_from, valid_to) -%}
    ({{ valid_from }} <= {{ instant }} and ({{ valid_to }} is null or {{ instant }} < {{ valid_to }}))
{%- endmacro %}
