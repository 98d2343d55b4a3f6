"""X (Twitter) API v2 tweets response: ``data`` (tweets), ``includes.users``, ``meta``.

https://docs.x.com/x-api/fundamentals/data-dictionary
A tweet carries only ``author_id``; the author's username comes from
``includes.users`` (request ``expansions=author_id``), so the identity is the
handle ``x:<username>``. Replies become ``social.comment``, reposts
``social.reaction``, everything else (mentions of the brand, quotes, posts
found by a search on the brand) ``social.mention``.
"""

from __future__ import annotations

from typing import Any

from . import Adapter, AdapterError, Draft, ItemError, clean, from_iso, obj, optional, require

PLATFORM = "x"


class XAdapter(Adapter):
    name = "x"
    source = "x"
    description = "X API v2 tweets response (data + includes.users)"

    def split(self, payload: Any):
        if not isinstance(payload, dict):
            raise AdapterError(f"wrong_shape: an X API v2 response is a JSON object with 'data', "
                               f"got {type(payload).__name__}")
        data = payload.get("data")
        if data is None:
            meta = payload.get("meta")
            if isinstance(meta, dict) and meta.get("result_count") == 0:
                return [], {}  # an empty search page
            raise AdapterError("wrong_shape: an X API v2 response has 'data' (a tweet or an array of tweets)")
        if isinstance(data, dict):
            data = [data]  # single-tweet lookup
        if not isinstance(data, list):
            raise AdapterError(f"wrong_shape: X 'data' must be an array of tweets, got {type(data).__name__}")
        includes = payload.get("includes") or {}
        if not isinstance(includes, dict):
            raise AdapterError("wrong_shape: X 'includes' must be an object")
        users = includes.get("users") or []
        if not isinstance(users, list):
            raise AdapterError("wrong_shape: X 'includes.users' must be an array")
        by_id = {str(u["id"]): u for u in users if isinstance(u, dict) and u.get("id") is not None}
        return data, by_id

    def id_basis(self, item: Any) -> Any:
        # a post id is unique and its content immutable (an edit is a new post id); a post read again
        # (overlapping searches, a re-run) comes back with other public_metrics / context_annotations
        if isinstance(item, dict) and isinstance(item.get("id"), (str, int)) and not isinstance(item.get("id"), bool):
            return {"x_post_id": str(item["id"])}
        return item

    def convert_item(self, item: Any, users: dict[str, dict[str, Any]]) -> list[Draft]:
        if not isinstance(item, dict):
            raise ItemError(f"bad_type: a tweet is an object, got {type(item).__name__}")
        post_id = str(require(item, "id", (str, int)))
        text = require(item, "text")
        author_id = str(require(item, "author_id", (str, int)))
        if "created_at" not in item:
            raise ItemError("missing_field: created_at (request tweet.fields=created_at)")
        at = from_iso(item["created_at"], "created_at")
        author = users.get(author_id)
        username = author.get("username") if author else None
        if not isinstance(username, str) or not username.strip():
            raise ItemError(f"no_identity: author_id {author_id} is not in includes.users with a username "
                            "(request expansions=author_id)")
        refs = item.get("referenced_tweets") or []
        if not isinstance(refs, list):
            raise ItemError("bad_type: referenced_tweets must be an array")
        ref_by_type = {r.get("type"): r.get("id") for r in refs if isinstance(r, dict)}
        mentions = obj(item, "entities").get("mentions") or []
        mentioned = [m["username"] for m in mentions if isinstance(m, dict) and isinstance(m.get("username"), str)]
        props = clean({
            "text": text,
            "platform": PLATFORM,
            "post_id": post_id,
            "lang": optional(item, "lang"),
            "author_id": author_id,
            "conversation_id": optional(item, "conversation_id"),
            "mentioned": mentioned,
        })
        if "replied_to" in ref_by_type or item.get("in_reply_to_user_id"):
            etype = "social.comment"
            props.update(clean({"in_reply_to_post_id": ref_by_type.get("replied_to"),
                                "in_reply_to_user_id": item.get("in_reply_to_user_id")}))
        elif "retweeted" in ref_by_type:
            etype = "social.reaction"
            props.update(clean({"reaction": "repost", "reposted_post_id": ref_by_type["retweeted"]}))
            props.pop("text", None)  # a repost's text is the original author's, not this person's
        else:
            etype = "social.mention"
            props.update(clean({"quoted_post_id": ref_by_type.get("quoted")}))
        return [Draft(etype, at, {"social_handle": f"{PLATFORM}:{username.strip()}"}, props)]


ADAPTER = XAdapter()
