"""Mailgun events: the webhook body (``signature`` + ``event-data``), an array
of events, or an Events API page (``{"items": [...]}``).

https://documentation.mailgun.com/docs/mailgun/user-manual/events/
Identity: ``recipient``. Time: ``timestamp`` in float epoch seconds. Mailgun
ids are unique only within a day, which is one more reason event ids hash
the whole item. The webhook signature is not verified here (see docs/adapters.md).
"""

from __future__ import annotations

from typing import Any

from . import Adapter, AdapterError, Draft, ItemError, Skip, clean, consent_event, from_epoch_seconds, identities, \
    obj, optional, require

EVENT_TYPES: dict[str, str] = {
    "accepted": "email.sent",
    "delivered": "email.delivered",
    "opened": "email.opened",
    "clicked": "email.clicked",
    "failed": "email.bounced",  # permanent only; temporary failures are retried by Mailgun
    "rejected": "email.bounced",
    "unsubscribed": "email.unsubscribed",
    "complained": "email.spam_reported",
}


class MailgunAdapter(Adapter):
    name = "mailgun"
    source = "mailgun"
    description = "Mailgun webhook (signature + event-data), array of events, or Events API page"

    def split(self, payload: Any):
        if isinstance(payload, dict) and "event-data" in payload:
            return [payload["event-data"]], None
        if isinstance(payload, dict) and isinstance(payload.get("items"), list):
            return payload["items"], None
        if isinstance(payload, list):
            return payload, None
        raise AdapterError("wrong_shape: a Mailgun payload is a webhook body with 'event-data', an array of events "
                           f"or an Events API page with 'items', got {type(payload).__name__}")

    def convert_item(self, item: Any, context: Any) -> list[Draft]:
        if not isinstance(item, dict):
            raise ItemError(f"bad_type: a Mailgun event is an object, got {type(item).__name__}")
        kind = require(item, "event")
        etype = EVENT_TYPES.get(kind)
        if etype is None:
            raise Skip(f"unmapped_event: Mailgun event {kind!r} has no canonical event type")
        if kind == "failed" and item.get("severity") == "temporary":
            raise Skip("deferred: a temporary failure (Mailgun retries); no canonical event")
        at = from_epoch_seconds(item.get("timestamp"), "timestamp")
        ids = identities("recipient", email=optional(item, "recipient"))
        headers = obj(obj(item, "message"), "headers", "message.")
        user_vars = obj(item, "user-variables")
        campaigns = item.get("campaigns") or []
        campaign_id = user_vars.get("campaign_id") or next(
            (c.get("id") for c in campaigns if isinstance(c, dict) and c.get("id")), None)
        props = clean({"campaign_id": str(campaign_id) if campaign_id else None,
                       "message_id": headers.get("message-id"), "mailgun_event_id": optional(item, "id"),
                       "tags": item.get("tags")})
        if etype == "email.sent":
            props.update(clean({"subject": headers.get("subject")}))
        elif etype == "email.clicked":
            props.update(clean({"url": optional(item, "url")}))
        elif etype == "email.bounced":
            status = obj(item, "delivery-status")
            reason = optional(item, "reason")
            dropped = kind == "rejected" or (isinstance(reason, str) and reason.startswith("suppress-"))
            props.update(clean({"bounce_type": "dropped" if dropped else "hard", "reason": reason,
                                "status": status.get("code"), "description": status.get("description") or None}))
        drafts = [Draft(etype, at, ids, props)]
        if kind in ("unsubscribed", "complained"):
            drafts.append(consent_event(at, ids, granted=False, scope="email", via=f"mailgun:{kind}",
                                        campaign_id=props.get("campaign_id")))
        return drafts


ADAPTER = MailgunAdapter()
