"""Segment Spec calls (track, identify, screen, alias, page, group), as a
Segment webhook/destination function receives them.

https://segment.com/docs/connections/spec/
Payload: one call object, an array of calls, or ``{"batch": [...]}`` (the
HTTP Tracking API batch). Identities: ``userId`` -> customer_id,
``anonymousId`` -> anonymous_id, ``context.device.id`` -> device_id,
``traits.email`` / ``traits.phone`` (``context.traits`` on track/screen).
Time: ``timestamp`` (ISO 8601 with milliseconds), else ``originalTimestamp``,
else ``receivedAt``. ``version`` is not checked (2 and "1.1" are both real).
"""

from __future__ import annotations

from typing import Any, Mapping

from . import Adapter, AdapterError, Draft, ItemError, Skip, clean, consent_event, from_iso, identities, number, \
    obj, optional, require

#: Segment e-commerce / mobile / email spec event names (compared lower-cased, ``_`` as a space)
#: -> canonical event type. Every other track name is skipped and counted.
TRACK_EVENTS: dict[str, str] = {
    "order completed": "mobile.purchase",
    "application installed": "mobile.app_installed",
    "application opened": "mobile.app_opened",
    "push notification received": "mobile.push_sent",
    "push notification tapped": "mobile.push_opened",
    "email delivered": "email.delivered",
    "email opened": "email.opened",
    "email link clicked": "email.clicked",
    "email bounced": "email.bounced",
    "email marked as spam": "email.spam_reported",
    "unsubscribed": "email.unsubscribed",
}

#: Track names that also withdraw marketing consent for email.
WITHDRAWS_EMAIL = {"email marked as spam", "unsubscribed"}


def track_key(name: str) -> str:
    return " ".join(name.replace("_", " ").split()).lower()


def track_properties(etype: str, props: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical properties of a mapped spec event (shared with Amplitude)."""
    app = context.get("app") if isinstance(context.get("app"), dict) else {}
    if etype == "mobile.purchase":
        revenue = number(props.get("revenue"), "properties.revenue")
        total = number(props.get("total"), "properties.total")
        value = number(props.get("value"), "properties.value")
        amount = next((v for v in (revenue, total, value) if v is not None), None)
        currency = optional(props, "currency", where="properties.")
        return clean({"order_id": _str(props.get("order_id") or props.get("checkout_id")), "amount": amount,
                      "currency": currency.upper() if currency else None, "revenue": revenue, "total": total})
    if etype in ("mobile.app_installed", "mobile.app_opened"):
        device = context.get("device") if isinstance(context.get("device"), dict) else {}
        os_ = context.get("os") if isinstance(context.get("os"), dict) else {}
        platform = device.get("type") or os_.get("name")
        return clean({"app_version": _str(props.get("version") or app.get("version")),
                      "build": _str(props.get("build") or app.get("build")),
                      "platform": platform.lower() if isinstance(platform, str) else None,
                      "from_background": props.get("from_background") if etype == "mobile.app_opened" else None})
    if etype in ("mobile.push_sent", "mobile.push_opened"):
        campaign = props.get("campaign") if isinstance(props.get("campaign"), dict) else {}
        return clean({"campaign_id": _str(props.get("campaign_id") or campaign.get("id") or campaign.get("name")),
                      "campaign_source": campaign.get("source")})
    if etype.startswith("email."):
        return clean({"campaign_id": _str(props.get("campaign_id") or props.get("campaign_name")),
                      "email_id": _str(props.get("email_id")),
                      "subject": props.get("email_subject"),
                      "url": props.get("link_url") if etype == "email.clicked" else None})
    return {}


def _str(value: Any) -> str | None:
    if value is None or value == "" or isinstance(value, (dict, list, bool)):
        return None
    return str(value)


class SegmentAdapter(Adapter):
    name = "segment"
    source = "segment"
    description = "Segment Spec calls: one call, an array, or {\"batch\": [...]}"

    def split(self, payload: Any):
        if isinstance(payload, dict) and isinstance(payload.get("batch"), list):
            return payload["batch"], None
        if isinstance(payload, dict) and "type" in payload:
            return [payload], None
        if isinstance(payload, list):
            return payload, None
        raise AdapterError("wrong_shape: a Segment payload is a call object with 'type', an array of calls "
                           f"or {{\"batch\": [...]}}, got {type(payload).__name__}")

    def convert_item(self, item: Any, context: Any) -> list[Draft]:
        if not isinstance(item, dict):
            raise ItemError(f"bad_type: a Segment call is an object, got {type(item).__name__}")
        call = require(item, "type")
        if call in ("page", "group"):
            what = ("page views are web traffic: envelope v1 has no web channel" if call == "page"
                    else "group calls describe an account, not a person")
            raise Skip(f"unmapped_call: Segment {call}: {what}")
        if call not in ("track", "identify", "screen", "alias"):
            raise ItemError(f"bad_type: unknown Segment call type {call!r}")
        ctx = obj(item, "context")
        when = next((k for k in ("timestamp", "originalTimestamp", "receivedAt") if item.get(k)), "timestamp")
        at = from_iso(item.get(when), when)
        traits = obj(item, "traits") if call == "identify" else obj(ctx, "traits", "context.")
        device = obj(ctx, "device", "context.")
        user_id = optional(item, "userId", (str, int))
        anonymous_id = optional(item, "anonymousId", (str, int))
        ids = identities("userId, anonymousId, context.device.id, traits.email, traits.phone",
                         customer_id=user_id, anonymous_id=anonymous_id, device_id=device.get("id"),
                         email=optional(traits, "email", where="traits."),
                         phone=optional(traits, "phone", (str, int), where="traits."))
        base = clean({"segment_message_id": optional(item, "messageId")})

        if call in ("identify", "alias"):
            drafts = []
            previous = optional(item, "previousId", (str, int)) if call == "alias" else None
            if call == "alias":
                if user_id is None:
                    raise ItemError("missing_field: userId (an alias names the new id)")
                if previous is not None and anonymous_id is None:
                    ids["anonymous_id"] = str(previous)
                    previous = None
            if len(ids) < 2 and previous is None:
                raise Skip(f"nothing_to_link: Segment {call} carries a single identifier")
            drafts.append(Draft("identity.linked", at, ids, {**base, "call": call}))
            if previous is not None and str(previous) != str(anonymous_id):
                drafts.append(Draft("identity.linked", at, {"customer_id": str(user_id), "anonymous_id": str(previous)},
                                    {**base, "call": call, "previous_id": True}))
            return drafts

        props = obj(item, "properties")
        if call == "screen":
            screen = optional(item, "name") or optional(props, "name", where="properties.")
            return [Draft("mobile.screen_viewed", at, ids,
                          {**base, **clean({"screen": screen, "category": _str(item.get("category"))})})]

        name = require(item, "event")
        key = track_key(name)
        etype = TRACK_EVENTS.get(key)
        if etype is None:
            raise Skip(f"unmapped_event: Segment track {name!r} has no canonical event type")
        drafts = [Draft(etype, at, ids, {**base, "event": name, **track_properties(etype, props, ctx)})]
        if key in WITHDRAWS_EMAIL:
            drafts.append(consent_event(at, ids, granted=False, scope="email", via=f"segment:{name}"))
        return drafts


ADAPTER = SegmentAdapter()
