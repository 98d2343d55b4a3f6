"""Facebook Page webhook (``object: page``, ``entry[].changes[]``, field ``feed``).

https://developers.facebook.com/docs/graph-api/webhooks/reference/page/#feed
One item per change, carried with its entry (page id and time) so that a
dead letter is self-contained. Identity: ``value.from.id`` (a page-scoped
user id) as the handle ``facebook:<id>``. The page's own activity (``from.id``
equal to the page id) is skipped: it is the brand, not a person.
"""

from __future__ import annotations

from typing import Any

from . import Adapter, AdapterError, Draft, ItemError, Skip, clean, from_epoch_seconds, from_iso, obj, require

PLATFORM = "facebook"

#: feed ``item`` -> canonical event type (verb ``add`` only).
ITEMS: dict[str, str] = {
    "comment": "social.comment",
    "post": "social.mention",
    "status": "social.mention",
    "photo": "social.mention",
    "video": "social.mention",
    "share": "social.mention",
    "reaction": "social.reaction",
    "like": "social.reaction",
}


def meta_changes(payload: Any, expected_object: str, provider: str) -> list[dict[str, Any]]:
    """``entry[].changes[]`` of a Meta webhook as self-contained items ``{"entry": {...}, "change": {...}}``."""
    if not isinstance(payload, dict) or payload.get("object") != expected_object or not isinstance(
            payload.get("entry"), list):
        raise AdapterError(f"wrong_shape: a {provider} webhook is {{\"object\": \"{expected_object}\", "
                           "\"entry\": [...]}")
    items: list[dict[str, Any]] = []
    for entry in payload["entry"]:
        if not isinstance(entry, dict):
            items.append({"entry": entry, "change": None})
            continue
        head = {k: v for k, v in entry.items() if k != "changes"}
        changes = entry.get("changes")
        if not isinstance(changes, list) or not changes:
            items.append({"entry": head, "change": None})
            continue
        items.extend({"entry": head, "change": c} for c in changes)
    return items


def entry_change(item: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    entry, change = item["entry"], item["change"]
    if not isinstance(entry, dict):
        raise ItemError("bad_type: an entry is an object")
    if change is None:
        raise Skip("no_changes: entry without changes (e.g. messaging), not handled by this adapter")
    if not isinstance(change, dict):
        raise ItemError("bad_type: a change is an object")
    return entry, change


def meta_time(value: Any, fallback: Any, name: str):
    """Meta sends epoch seconds (webhooks) or ISO 8601 (Graph API objects)."""
    if isinstance(value, str):
        return from_iso(value, name)
    return from_epoch_seconds(value if value is not None else fallback, name)


class FacebookPageAdapter(Adapter):
    name = "facebook"
    source = "facebook"
    description = "Facebook Page webhook, feed changes (comments, visitor posts, reactions)"

    def split(self, payload: Any):
        return meta_changes(payload, "page", "Facebook Page"), None

    def convert_item(self, item: Any, context: Any) -> list[Draft]:
        entry, change = entry_change(item)
        field = require(change, "field", where="change.")
        if field != "feed":
            raise Skip(f"unmapped_field: Facebook page field {field!r} is not handled")
        value = obj(change, "value", "change.")
        kind, verb = value.get("item"), value.get("verb")
        if kind not in ITEMS:
            raise Skip(f"unmapped_event: Facebook feed item {kind!r} has no canonical event type")
        if verb != "add":
            raise Skip(f"unmapped_verb: Facebook feed {kind} {verb!r} (only 'add' is an interaction)")
        sender = obj(value, "from", "value.")
        from_id = sender.get("id")
        if from_id in (None, ""):
            raise ItemError("no_identity: value.from.id is missing")
        if str(from_id) == str(entry.get("id")):
            raise Skip("own_activity: the page's own post or comment is the brand, not a person")
        at = meta_time(value.get("created_time"), entry.get("time"), "value.created_time")
        etype = ITEMS[kind]
        props = clean({"platform": PLATFORM, "post_id": value.get("post_id"), "page_id": entry.get("id"),
                       "comment_id": value.get("comment_id"), "parent_id": value.get("parent_id"),
                       "text": value.get("message") if etype != "social.reaction" else None,
                       "reaction": (value.get("reaction_type") or kind) if etype == "social.reaction" else None})
        return [Draft(etype, at, {"social_handle": f"{PLATFORM}:{from_id}"}, props)]


ADAPTER = FacebookPageAdapter()
