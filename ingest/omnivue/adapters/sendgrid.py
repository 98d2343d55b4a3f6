"""SendGrid Event Webhook: a JSON array of events, one per recipient action.

https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event
Identity: ``email``. Time: ``timestamp`` in epoch seconds.
"""

from __future__ import annotations

from typing import Any

from . import Adapter, Draft, ItemError, Skip, clean, consent_event, from_epoch_seconds, identities, items_of, \
    optional, require

#: SendGrid ``event`` -> canonical event type (None: understood, no canonical event).
EVENT_TYPES: dict[str, str | None] = {
    "processed": "email.sent",
    "delivered": "email.delivered",
    "open": "email.opened",
    "click": "email.clicked",
    "bounce": "email.bounced",
    "blocked": "email.bounced",
    "dropped": "email.bounced",
    "spamreport": "email.spam_reported",
    "unsubscribe": "email.unsubscribed",
    "group_unsubscribe": "email.unsubscribed",
    "group_resubscribe": None,  # consent.granted only
    "deferred": None,
}

#: Events that withdraw (False) or grant (True) marketing consent for email.
CONSENT: dict[str, bool] = {"unsubscribe": False, "group_unsubscribe": False, "spamreport": False,
                            "group_resubscribe": True}

#: bounce_type by SendGrid event and bounce ``type``: a bounce is permanent (hard), a block
#: is the receiving server refusing for now (soft), a drop was never sent by SendGrid.
_BOUNCE_TYPE = {"bounce": "hard", "blocked": "soft", "dropped": "dropped"}


class SendGridAdapter(Adapter):
    name = "sendgrid"
    source = "sendgrid"
    description = "SendGrid Event Webhook (JSON array of events)"

    def split(self, payload: Any):
        return items_of(payload, "SendGrid Event Webhook", "events"), None

    def convert_item(self, item: Any, context: Any) -> list[Draft]:
        if not isinstance(item, dict):
            raise ItemError(f"bad_type: a SendGrid event is an object, got {type(item).__name__}")
        kind = require(item, "event")
        if kind not in EVENT_TYPES:
            raise Skip(f"unmapped_event: SendGrid event {kind!r} has no canonical event type")
        if kind == "deferred":
            raise Skip("deferred: a temporary delivery delay (SendGrid retries); no canonical event")
        at = from_epoch_seconds(item.get("timestamp"), "timestamp")
        ids = identities("email", email=require(item, "email"))
        asm_group_id = optional(item, "asm_group_id", (int, str))
        common = clean({
            "campaign_id": _campaign_id(item),
            "message_id": optional(item, "sg_message_id"),
            "sg_event_id": optional(item, "sg_event_id"),
            "category": item.get("category"),
            "asm_group_id": asm_group_id,
        })
        drafts: list[Draft] = []
        etype = EVENT_TYPES[kind]
        if etype is not None:
            props = dict(common)
            if etype == "email.clicked":
                props.update(clean({"url": optional(item, "url")}))
            elif etype == "email.opened":
                props.update(clean({"machine_open": item.get("sg_machine_open")}))
            elif etype == "email.bounced":
                bounce_kind = "blocked" if kind == "bounce" and item.get("type") == "blocked" else kind
                props.update(clean({
                    "bounce_type": _BOUNCE_TYPE[bounce_kind],
                    "sendgrid_type": bounce_kind,
                    "reason": optional(item, "reason"),
                    "status": optional(item, "status"),
                    "classification": optional(item, "bounce_classification"),
                }))
            drafts.append(Draft(etype, at, ids, props))
        if kind in CONSENT:
            drafts.append(consent_event(at, ids, granted=CONSENT[kind], scope="email", via=f"sendgrid:{kind}",
                                        asm_group_id=asm_group_id, campaign_id=common.get("campaign_id")))
        return drafts


def _campaign_id(item: dict[str, Any]) -> str | None:
    """Marketing Campaigns id, else Single Send id, else a one-word category."""
    for key in ("marketing_campaign_id", "singlesend_id"):
        value = item.get(key)
        if value not in (None, ""):
            return str(value)
    category = item.get("category")
    if isinstance(category, str) and category:
        return category
    if isinstance(category, list) and len(category) == 1 and isinstance(category[0], str):
        return category[0]
    return None


ADAPTER = SendGridAdapter()
