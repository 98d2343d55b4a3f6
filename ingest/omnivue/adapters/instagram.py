"""Instagram webhook (``object: instagram``, ``entry[].changes[]``).

https://developers.facebook.com/docs/instagram-platform/webhooks
- ``comments`` (someone commented on the brand's media): ``value.from.username``
  -> ``social.comment`` with the handle ``instagram:<username>``.
- ``mentions`` (the brand was @mentioned in a caption or comment): the
  webhook names only the media and comment, not who mentioned, so there is
  no identity: the item is rejected with ``no_identity`` (kept in the dead
  letters, from where an enricher can look the author up in the Graph API).
Time: the entry's ``time`` (epoch seconds).
"""

from __future__ import annotations

from typing import Any

from . import Adapter, Draft, ItemError, Skip, clean, obj, require
from .facebook import entry_change, meta_changes, meta_time

PLATFORM = "instagram"


class InstagramAdapter(Adapter):
    name = "instagram"
    source = "instagram"
    description = "Instagram webhook: comments and mentions"

    def split(self, payload: Any):
        return meta_changes(payload, "instagram", "Instagram"), None

    def convert_item(self, item: Any, context: Any) -> list[Draft]:
        entry, change = entry_change(item)
        field = require(change, "field", where="change.")
        value = obj(change, "value", "change.")
        if field == "mentions":
            raise ItemError("no_identity: an Instagram mention webhook names the media "
                            f"{value.get('media_id')} and comment {value.get('comment_id')}, not who mentioned "
                            "(look the comment up in the Graph API)")
        if field != "comments":
            raise Skip(f"unmapped_field: Instagram field {field!r} is not handled")
        sender = obj(value, "from", "value.")
        username = sender.get("username")
        if not isinstance(username, str) or not username.strip():
            raise ItemError("no_identity: value.from.username is missing")
        if str(sender.get("id")) == str(entry.get("id")):
            raise Skip("own_activity: the account's own comment is the brand, not a person")
        media = obj(value, "media", "value.")
        at = meta_time(value.get("created_time"), entry.get("time"), "entry.time")
        props = clean({"platform": PLATFORM, "text": value.get("text"), "post_id": media.get("id"),
                       "comment_id": value.get("id"), "parent_id": value.get("parent_id")})
        return [Draft("social.comment", at, {"social_handle": f"{PLATFORM}:{username.strip()}"}, props)]


ADAPTER = InstagramAdapter()
