{#- Fails on every value of the column that has more than max_rows rows. -#}
{% test max_rows_per_value(model, column_name, max_rows) %}

select
    {{ column_name }},
    count(*) as n_rows

from {{ model }}
group by {{ column_name }}
having count(*) > {{ max_rows }}

{% endtest %}
