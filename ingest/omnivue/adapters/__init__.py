"""Provider adapters: real provider payloads -> canonical envelopes (DESIGN.md).

Each adapter turns one provider payload (a webhook body or an API response)
into canonical events built with :func:`omnivue.envelope.make_event`; every
event it returns has passed :func:`omnivue.validation.validate_event`.

    from omnivue.adapters import ADAPTERS
    result = ADAPTERS["sendgrid"].convert(json.loads(body))
    result.events    # canonical envelopes, ready for Kafka
    result.skipped   # (item, reason): understood, but no canonical event (e.g. SendGrid "deferred")
    result.errors    # (item, reason): malformed items (missing fields, bad types or times, no identity)

A payload of the wrong shape as a whole raises :class:`AdapterError`.

Event ids are deterministic (uuid5 over the provider name and the canonical
JSON of the whole provider item): an identical redelivery gets the same id,
so downstream deduplication on ``event_id`` drops it, while distinct items
that share a provider id (SendGrid's placeholder ``sg_event_id``, Segment's
shared ``messageId``) keep distinct ids. The mapping tables and judgment
calls are in docs/adapters.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from ..envelope import make_event
from ..validation import Rejected, lone_surrogate, validate_event

log = logging.getLogger(__name__)

#: Namespace of adapter event ids: uuid5(NAMESPACE_URL, "https://omnivue.dev/adapters/event-id"). Never change it:
#: redeliveries must keep their ids across versions.
EVENT_ID_NAMESPACE = uuid.UUID("d29c2835-beb1-5a50-b369-b85558b016a6")


class AdapterError(ValueError):
    """The payload as a whole does not have the provider's shape."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Skip(Exception):
    """An item that is understood but has no canonical event (counted, not an error)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ItemError(Exception):
    """A malformed item; ``reason`` is ``code: detail``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class AdapterResult:
    events: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[Any, str]] = field(default_factory=list)
    errors: list[tuple[Any, str]] = field(default_factory=list)
    #: items that produced at least one event
    accepted: int = 0

    def counts(self) -> dict[str, int]:
        return {"accepted": self.accepted, "events": len(self.events), "skipped": len(self.skipped),
                "rejected": len(self.errors)}


@dataclass(frozen=True)
class Draft:
    """One canonical event an item maps to, before its id is assigned."""

    event_type: str
    occurred_at: datetime
    identities: Mapping[str, Any]
    properties: Mapping[str, Any]
    source: str | None = None


# --- ids ------------------------------------------------------------------------------------

def canonical_json(item: Any) -> str:
    return json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_id_for(provider: str, item: Any, n: int = 0) -> str:
    """uuid5 over the provider and the canonical JSON of the whole item; the
    n-th further event of one item (e.g. the consent event of an unsubscribe)
    adds ``#n`` so that it stays distinct and just as deterministic."""
    name = f"{provider}\n{canonical_json(item)}" + (f"\n#{n}" if n else "")
    try:
        return str(uuid.uuid5(EVENT_ID_NAMESPACE, name))
    except UnicodeEncodeError:  # a lone surrogate in the item: uuid5's own algorithm over its surrogatepass bytes
        digest = hashlib.sha1(EVENT_ID_NAMESPACE.bytes + name.encode("utf-8", "surrogatepass")).digest()
        return str(uuid.UUID(bytes=digest[:16], version=5))


# --- field helpers (raise ItemError with a code) ------------------------------------------

def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def require(item: Mapping[str, Any], key: str, kind: type | tuple[type, ...] = str, where: str = "") -> Any:
    """``item[key]``, present, non-empty and of ``kind``."""
    name = f"{where}{key}"
    if key not in item or item[key] is None or item[key] == "":
        raise ItemError(f"missing_field: {name}")
    value = item[key]
    if not isinstance(value, kind) or isinstance(value, bool) and bool not in _as_tuple(kind):
        raise ItemError(f"bad_type: {name} must be {_kind_name(kind)}, got {type(value).__name__}")
    return value


def optional(item: Mapping[str, Any], key: str, kind: type | tuple[type, ...] = str, where: str = "") -> Any:
    """``item[key]`` if present and not empty, else None; a wrong type is an error."""
    value = item.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and bool not in _as_tuple(kind):
        raise ItemError(f"bad_type: {where}{key} must be {_kind_name(kind)}, got {type(value).__name__}")
    return value


def obj(item: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any]:
    """A nested object, {} when absent; a non-object is an error."""
    value = item.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ItemError(f"bad_type: {where}{key} must be an object, got {type(value).__name__}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", dict: "an object", list: "an array"}
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))


def ident(value: Any) -> str | None:
    """An identifier value as a string (ids may arrive as integers), None when empty."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value if value.strip() else None
    raise ItemError(f"bad_type: identifier must be a string, got {type(value).__name__}")


def identities(fields: str | None = None, **values: Any) -> dict[str, str]:
    """The identities that are present; an item with none is an error (``fields``
    names the provider fields they come from, for the reason)."""
    out = {k: v for k, v in ((k, ident(v)) for k, v in values.items()) if v is not None}
    if not out:
        raise ItemError(f"no_identity: none of {fields or ', '.join(values)} is present")
    return out


def number(value: Any, name: str) -> float | int | None:
    """A number, also from a numeric string (some SDKs stringify); None when absent."""
    if value is None or value == "":
        return None
    if is_number(value):
        return value
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(parsed):
                return parsed
    raise ItemError(f"bad_type: {name} must be a number, got {value!r}")


# --- times -----------------------------------------------------------------------------------

# 2000 .. 3000: an interaction before 2000 is a unit mix-up (epoch seconds read as milliseconds
# land in January 1970), not a real event time
_MIN_EPOCH_S, _MAX_EPOCH_S = 946_684_800, 32_503_680_000


def from_epoch_seconds(value: Any, name: str = "timestamp") -> datetime:
    """Epoch seconds (int or float, e.g. SendGrid, Mailgun, Meta) -> aware UTC datetime."""
    if value is None:
        raise ItemError(f"missing_field: {name}")
    if not is_number(value):
        raise ItemError(f"bad_time: {name} must be epoch seconds (a number), got {value!r}")
    if not _MIN_EPOCH_S < value < _MAX_EPOCH_S:
        raise ItemError(f"bad_time: {name} {value!r} is not a plausible epoch in seconds")
    return datetime.fromtimestamp(value, tz=timezone.utc)


def from_epoch_millis(value: Any, name: str = "time") -> datetime:
    """Epoch milliseconds (Amplitude) -> aware UTC datetime."""
    if value is None:
        raise ItemError(f"missing_field: {name}")
    if not is_number(value):
        raise ItemError(f"bad_time: {name} must be epoch milliseconds (a number), got {value!r}")
    if not _MIN_EPOCH_S * 1000 < value < _MAX_EPOCH_S * 1000:
        raise ItemError(f"bad_time: {name} {value!r} is not a plausible epoch in milliseconds")
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc)


def from_iso(value: Any, name: str = "timestamp") -> datetime:
    """ISO 8601 / RFC 3339 (``2015-12-10T04:08:31.905Z``) -> aware datetime; a time
    without an offset is read as UTC (what Segment and X send is UTC)."""
    if value is None or value == "":
        raise ItemError(f"missing_field: {name}")
    if not isinstance(value, str):
        raise ItemError(f"bad_time: {name} must be an ISO 8601 string, got {value!r}")
    text = value.strip()
    if text[-1:] == "z":  # RFC 3339 5.6 allows a lower-case Z (datetime.fromisoformat does not)
        text = text[:-1] + "Z"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise ItemError(f"bad_time: {name} is not an ISO 8601 time: {value!r}") from None
    if not any(sep in text for sep in "Tt "):  # a date alone (2026-11-20, 2026-W47-5) is not an instant
        raise ItemError(f"bad_time: {name} has no time of day: {value!r}")
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)


# --- the adapter base -----------------------------------------------------------------------

class Adapter:
    """Base of the provider adapters: subclasses define ``name``, ``source``,
    ``split`` (payload -> items and a shared context) and ``convert_item``."""

    name: str = ""
    source: str = ""
    description: str = ""

    def split(self, payload: Any) -> tuple[Iterable[Any], Any]:
        raise NotImplementedError

    def convert_item(self, item: Any, context: Any) -> list[Draft]:
        raise NotImplementedError

    def id_basis(self, item: Any) -> Any:
        """What the event ids hash: the whole item, unless the provider has an id that is unique and
        whose item may come back with changed counters (an X post re-read with new public_metrics)."""
        return item

    def convert(self, payload: Any) -> AdapterResult:
        try:
            items, context = self.split(payload)
            items = list(items)
        except AdapterError:
            raise
        except Exception as exc:  # an odd shape must never escape as a crash
            raise AdapterError(f"wrong_shape: {self.name} payload could not be read: {exc}") from None
        result = AdapterResult()
        for item in items:
            try:
                drafts = self.convert_item(item, context)
            except Skip as skip:
                result.skipped.append((item, skip.reason))
                continue
            except ItemError as err:
                result.errors.append((item, err.reason))
                continue
            except Exception as exc:  # a shape the adapter did not foresee: reject the item, keep going
                log.debug("%s item could not be converted", self.name, exc_info=True)
                result.errors.append((item, f"malformed: {type(exc).__name__}: {exc}"))
                continue
            try:
                events = [self._event(item, n, d) for n, d in enumerate(drafts)]
            except ItemError as err:
                result.errors.append((item, err.reason))
                continue
            if not events:
                result.skipped.append((item, "no_event: nothing to emit"))
                continue
            result.events.extend(events)
            result.accepted += 1
        return result

    def _event(self, item: Any, n: int, draft: Draft) -> dict[str, Any]:
        try:
            event = make_event(draft.event_type, draft.occurred_at, draft.source or self.source, draft.identities,
                               draft.properties, event_id=event_id_for(self.name, self.id_basis(item), n))
        except ValueError as exc:
            raise ItemError(f"schema: {exc}") from None
        try:
            validate_event(event)
        except Rejected as rej:
            raise ItemError(rej.reason) from None
        surrogate = lone_surrogate(event)  # copied from the item: the event could never be published
        if surrogate:
            raise ItemError(f"not_utf8: a string holds a lone UTF-16 surrogate ({surrogate}), which is not Unicode text")
        return event


def items_of(payload: Any, provider: str, what: str) -> list[Any]:
    if not isinstance(payload, list):
        raise AdapterError(f"wrong_shape: a {provider} payload is a JSON array of {what}, "
                           f"got {type(payload).__name__}")
    return payload


def consent_event(occurred_at: datetime, ids: Mapping[str, Any], granted: bool, scope: str,
                  purpose: str = "marketing", **extra: Any) -> Draft:
    props = {"purpose": purpose, "scope": scope, **{k: v for k, v in extra.items() if v is not None}}
    return Draft("consent.granted" if granted else "consent.withdrawn", occurred_at, ids, props)


def clean(props: Mapping[str, Any]) -> dict[str, Any]:
    """Properties without the absent ones."""
    return {k: v for k, v in props.items() if v is not None and v != "" and v != []}


# --- the registry (imported last: the modules use the helpers above) -------------------------

from . import amplitude, facebook, instagram, mailgun, segment, sendgrid, x  # noqa: E402

ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in (sendgrid.ADAPTER, x.ADAPTER, segment.ADAPTER, mailgun.ADAPTER, amplitude.ADAPTER,
              facebook.ADAPTER, instagram.ADAPTER)
}

__all__ = ["ADAPTERS", "Adapter", "AdapterError", "AdapterResult", "EVENT_ID_NAMESPACE", "event_id_for"]
