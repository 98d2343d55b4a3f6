{#- Fails when the model has any row (use with severity warn for reports). -#}
{% test is_empty(model) %}

select * from {{ model }}

{% endtest %}
