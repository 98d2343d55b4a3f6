"""The canonical event envelope (DESIGN.md, version 1): names, topics, builders.

This module is the only place that knows the envelope's vocabulary. The
simulator, the adapters, the ingester and the tests all build and inspect
events through it; the JSON Schemas under ``contracts/events/`` are the
contract they are validated against.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Mapping

SCHEMA_VERSION = 1

CHANNELS: tuple[str, ...] = ("social", "email", "mobile", "consent", "identity")

EVENT_TYPES: dict[str, tuple[str, ...]] = {
    "social": ("mention", "comment", "reaction", "follow", "direct_message"),
    "email": ("sent", "delivered", "opened", "clicked", "bounced", "unsubscribed", "spam_reported"),
    "mobile": ("app_installed", "app_opened", "screen_viewed", "push_sent", "push_opened", "purchase"),
    "consent": ("granted", "withdrawn"),
    "identity": ("linked",),
}

ALL_EVENT_TYPES: tuple[str, ...] = tuple(f"{c}.{a}" for c, actions in EVENT_TYPES.items() for a in actions)

#: Identity keys, best first: the partition key is the best one an event has.
IDENTITY_KEYS: tuple[str, ...] = ("customer_id", "email", "phone", "social_handle", "device_id", "anonymous_id")

TOPIC_BY_CHANNEL: dict[str, str] = {
    "social": "interactions.social",
    "email": "interactions.email",
    "mobile": "interactions.mobile",
    "consent": "consent",
    "identity": "identity",
}
INPUT_TOPICS: tuple[str, ...] = tuple(TOPIC_BY_CHANNEL.values())
ALERTS_TOPIC = "alerts"
ALL_TOPICS: tuple[str, ...] = INPUT_TOPICS + (ALERTS_TOPIC,)

CONSENT_PURPOSES: tuple[str, ...] = ("marketing", "profiling", "analytics")
CONSENT_SCOPES: tuple[str, ...] = ("email", "sms", "push", "social", "all")
#: Scopes that ``all`` expands to.
CHANNEL_SCOPES: tuple[str, ...] = ("email", "sms", "push", "social")

#: Marketing sends that need consent (purpose marketing) and the scope they need.
MARKETING_SEND_SCOPE: dict[str, str] = {
    "email.sent": "email",
    "mobile.push_sent": "push",
    "social.direct_message": "social",  # only when sent by the brand
}


def is_marketing_send(event: Mapping[str, Any]) -> bool:
    """True for a send that needs marketing consent (DESIGN.md)."""
    etype = event.get("event_type")
    if etype not in MARKETING_SEND_SCOPE:
        return False
    if etype == "social.direct_message":
        # as the dbt project reads it (stg_landing__social_events.is_brand_sent, conservative): any
        # spelling of 'outbound' (case, surrounding spaces) is a brand send
        direction = (event.get("properties") or {}).get("direction")
        return direction is not None and str(direction).strip(" ").lower() == "outbound"
    return True


def channel_of(event_type: str) -> str:
    return event_type.split(".", 1)[0]


def topic_for(event_type: str) -> str:
    return TOPIC_BY_CHANNEL[channel_of(event_type)]


def route(event: Mapping[str, Any]) -> tuple[str, bytes | None]:
    """Where a canonical event goes on Kafka, for every producer: (the topic of its event_type, its
    partition key = its best identity). ValueError when the event_type is not one of ALL_EVENT_TYPES.
    The event itself is not validated (ingest does that): identities that are not an object give no key."""
    event_type = event.get("event_type")
    if not isinstance(event_type, str) or event_type not in ALL_EVENT_TYPES:
        raise ValueError(f"unknown event_type {event_type!r}")
    identities = event.get("identities")
    return topic_for(event_type), partition_key(identities) if isinstance(identities, Mapping) else None


def format_time(ts: datetime) -> str:
    """RFC 3339 with an explicit offset, microsecond precision when needed."""
    if ts.tzinfo is None:
        raise ValueError("event times must be timezone-aware")
    return ts.isoformat()


def new_event_id() -> str:
    return str(uuid.uuid4())


def make_event(
    event_type: str,
    occurred_at: datetime,
    source: str,
    identities: Mapping[str, str],
    properties: Mapping[str, Any] | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """Build one canonical envelope (a plain dict, ready for JSON)."""
    if event_type not in ALL_EVENT_TYPES:
        raise ValueError(f"unknown event_type {event_type!r}")
    ids = {k: v for k, v in identities.items() if v is not None}
    if not ids:
        raise ValueError("an event needs at least one identity")
    return {
        "event_id": event_id or new_event_id(),
        "event_type": event_type,
        "channel": channel_of(event_type),
        "occurred_at": format_time(occurred_at),
        "source": source,
        "identities": ids,
        "properties": dict(properties or {}),
        "schema_version": SCHEMA_VERSION,
    }


def encode(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def partition_key(identities: Mapping[str, Any]) -> bytes | None:
    """Key a record by the best identity it has, normalised, so that one
    person's events stay ordered within a partition."""
    from .identifiers import normalize_identifier  # local: identifiers imports nothing from here

    for key in IDENTITY_KEYS:
        value = identities.get(key)
        if isinstance(value, str) and value.strip():
            try:
                norm = normalize_identifier(key, value)
            except ValueError:
                norm = value.strip()
            return f"{key}:{norm}".encode("utf-8")
    return None

