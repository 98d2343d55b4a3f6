"""Amplitude HTTP V2 / Batch API request body: ``{"api_key": ..., "events": [...]}``.

https://amplitude.com/docs/apis/analytics/http-v2
Identities: ``user_id`` -> customer_id, ``device_id`` -> device_id. Time:
``time`` in epoch milliseconds. ``insert_id`` (Amplitude's own dedup key) is
kept in the properties. Event names are mapped like Segment's spec names
(``Order Completed``, ``Application Opened``...) plus Amplitude's own
``[Amplitude] ...`` names and ``revenue_amount``; the rest is skipped.
"""

from __future__ import annotations

from typing import Any

from . import Adapter, AdapterError, Draft, ItemError, Skip, clean, from_epoch_millis, identities, number, obj, \
    optional, require
from .segment import TRACK_EVENTS, track_key, track_properties

AMPLITUDE_EVENTS: dict[str, str] = {
    "application installed": "mobile.app_installed",
    "application opened": "mobile.app_opened",
    "screen viewed": "mobile.screen_viewed",
    "revenue": "mobile.purchase",
    "revenue amount": "mobile.purchase",
}


class AmplitudeAdapter(Adapter):
    name = "amplitude"
    source = "amplitude"
    description = "Amplitude HTTP V2 / Batch API body ({api_key, events: [...]})"

    def split(self, payload: Any):
        if isinstance(payload, dict) and isinstance(payload.get("events"), list):
            return payload["events"], None
        raise AdapterError("wrong_shape: an Amplitude payload is {\"api_key\": ..., \"events\": [...]}")

    def convert_item(self, item: Any, context: Any) -> list[Draft]:
        if not isinstance(item, dict):
            raise ItemError(f"bad_type: an Amplitude event is an object, got {type(item).__name__}")
        name = require(item, "event_type")
        key = track_key(name.removeprefix("[Amplitude]"))
        etype = AMPLITUDE_EVENTS.get(key) or TRACK_EVENTS.get(key)
        if etype is None:
            raise Skip(f"unmapped_event: Amplitude event_type {name!r} has no canonical event type")
        at = from_epoch_millis(item.get("time"), "time")
        ids = identities("user_id, device_id", customer_id=optional(item, "user_id", (str, int)),
                         device_id=optional(item, "device_id", (str, int)))
        props = obj(item, "event_properties")
        base = clean({"event": name, "insert_id": optional(item, "insert_id"),
                      "app_version": optional(item, "app_version"),
                      "platform": item["platform"].lower() if isinstance(item.get("platform"), str) else None})
        if etype == "mobile.purchase":
            # HTTP V2 has top-level revenue fields; the SDKs (Revenue API) send them as event_properties
            # $revenue, $price, $quantity, $productId, $revenueType, $currency; a spec "Order Completed"
            # carries revenue / total in event_properties like Segment's
            def field(top: str, prop: str) -> Any:
                return item.get(top) if item.get(top) not in (None, "") else props.get(prop)

            if str(field("revenueType", "$revenueType") or "").lower() == "refund":
                raise Skip("refund: a refund has no canonical event type")
            revenue = number(field("revenue", "$revenue"), "revenue")
            price, quantity = number(field("price", "$price"), "price"), number(field("quantity", "$quantity"), "quantity")
            amount = revenue if revenue is not None else (
                price * (quantity if quantity is not None else 1) if price is not None else None)
            if amount is None:
                amount = track_properties(etype, props, {}).get("amount")
            product_id = field("productId", "$productId")
            extra = clean({"amount": amount, "product_id": str(product_id) if product_id not in (None, "") else None,
                           "currency": props.get("currency") or props.get("$currency")})
        elif etype == "mobile.screen_viewed":
            extra = clean({"screen": props.get("[Amplitude] Screen Name") or props.get("screen_name")
                           or props.get("name")})
        else:
            extra = track_properties(etype, props, {"app": {"version": item.get("app_version")},
                                                    "os": {"name": item.get("os_name")}})
        return [Draft(etype, at, ids, {**base, **extra})]


ADAPTER = AmplitudeAdapter()
