{#-
    The consent rules of DESIGN.md, written once.
-#}

{#- The consent scope an interaction channel is checked against. -#}
{% macro consent_scope_for_channel(channel) -%}
    case {{ channel }}
        when 'email' then 'email'
        when 'mobile' then 'push'
        when 'social' then 'social'
    end
{%- endmacro %}

{#-
    Marketing sends (purpose marketing): email.sent, mobile.push_sent and a
    social.direct_message sent by the brand.
-#}
{% macro is_marketing_send(event_type, is_brand_sent) -%}
    (
        {{ event_type }} in ('email.sent', 'mobile.push_sent')
        or ({{ event_type }} = 'social.direct_message' and coalesce({{ is_brand_sent }}, false))
    )
{%- endmacro %}

{#- 'granted' / 'withdrawn' from a consent event type. -#}
{% macro consent_status_from_event_type(event_type) -%}
    case {{ event_type }}
        when 'consent.granted' then 'granted'
        when 'consent.withdrawn' then 'withdrawn'
    end
{%- endmacro %}

{#-
    Order of events sharing the same instant: a grant sorts before a
    withdrawal, so the withdrawal is the later one and wins (conservative).
-#}
{% macro consent_status_rank(status) -%}
    case {{ status }} when 'withdrawn' then 1 else 0 end
{%- endmacro %}
