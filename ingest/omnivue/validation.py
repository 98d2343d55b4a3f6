"""Validate one Kafka record against its event contract (contracts/events/).

The JSON Schemas are compiled once (fastjsonschema generates Python code for
them); ``validate_record`` returns the parsed event with normalised identities
or raises :class:`Rejected` with a reason that is grouped by its code
(``not_json``, ``schema``, ``wrong_topic``, ``identity``...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse
from urllib.request import url2pathname

import fastjsonschema

from .config import contracts_dir
from .envelope import ALL_EVENT_TYPES, channel_of, topic_for
from .identifiers import normalize_identities

#: Records larger than this are dead-lettered without being parsed.
MAX_RECORD_BYTES = 1_048_576


class Rejected(Exception):
    """A record that breaks its contract; ``reason`` is ``code: detail``."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.detail}"


@dataclass(frozen=True)
class ValidEvent:
    """A record that passed its contract."""

    event: dict[str, Any]
    identities: dict[str, str]  # normalised
    occurred_at: datetime


_PATTERN_MESSAGES = {
    "event_id": "must be a UUID",
    "occurred_at": "must be an RFC 3339 timestamp with an offset (e.g. 2026-03-01T12:00:00+01:00)",
    "identities.social_handle": "must be 'platform:handle'",
}


def _load_file_uri(uri: str) -> dict[str, Any]:
    return json.loads(Path(url2pathname(urlparse(uri).path)).read_text(encoding="utf-8"))


def _compile(path: Path) -> Callable[[Any], Any]:
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["$id"] = path.resolve().as_uri()  # relative $refs resolve beside the file, offline
    return fastjsonschema.compile(schema, handlers={"file": _load_file_uri})


@lru_cache(maxsize=4)
def _validators(directory: str) -> tuple[Callable[[Any], Any], dict[str, Callable[[Any], Any]]]:
    base = Path(directory) / "events"
    envelope = _compile(base / "envelope.json")
    by_type = {et: _compile(base / f"{et}.json") for et in ALL_EVENT_TYPES}
    return envelope, by_type


_CONTRACTS = str(contracts_dir())


def compile_contracts() -> None:
    """Compile the event contracts now rather than at the first event judged in Python (~70 ms)."""
    _validators(_CONTRACTS)


def validate_event(event: Any) -> ValidEvent:
    """Validate a decoded event (a dict) against the envelope and its type."""
    envelope, by_type = _validators(_CONTRACTS)
    if not isinstance(event, dict):
        raise Rejected("not_object", f"an event is a JSON object, got {type(event).__name__}")
    event_type, channel = event.get("event_type"), event.get("channel")
    validator = by_type.get(event_type) if isinstance(event_type, str) else None
    if validator and isinstance(channel, str) and channel != channel_of(event_type):
        raise Rejected("schema", f"channel {channel!r} does not match event_type {event_type!r}")
    try:
        (validator or envelope)(event)
    except fastjsonschema.JsonSchemaValueException as exc:
        field = exc.name.removeprefix("data.").removeprefix("data")
        if exc.rule == "pattern" and field in _PATTERN_MESSAGES:
            raise Rejected("schema", f"{field} {_PATTERN_MESSAGES[field]}, got {exc.value!r}") from None
        raise Rejected("schema", exc.message.replace("data.", "", 1).replace("data ", "event ", 1)) from None
    try:
        occurred_at = datetime.fromisoformat(event["occurred_at"].replace("z", "Z"))
    except ValueError as exc:
        raise Rejected("schema", f"occurred_at is not a valid RFC 3339 time: {exc}") from None
    try:
        identities = normalize_identities(event["identities"])
    except ValueError as exc:
        raise Rejected("identity", str(exc)) from None
    return ValidEvent(event=event, identities=identities, occurred_at=occurred_at)


def _not_a_json_constant(name: str) -> Any:
    """json.loads accepts NaN, Infinity and -Infinity, which are not JSON (RFC 8259): a strict
    consumer of landed_events.properties would fail on them."""
    raise ValueError(f"{name} is not a JSON value (RFC 8259)")


def lone_surrogate(event: Any) -> str | None:
    """The first lone surrogate in a decoded event, as an escape (``\\ud83d``), or None: such a str
    cannot be written as UTF-8 (Kafka, Arrow, DuckDB)."""
    try:
        json.dumps(event, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.object[exc.start:exc.end].encode("unicode_escape").decode("ascii")
    return None


def validate_record(topic: str, value: bytes | None) -> ValidEvent:
    """Validate one Kafka record value read from ``topic``."""
    if value is None:
        raise Rejected("empty", "record has no value")
    if len(value) > MAX_RECORD_BYTES:
        raise Rejected("too_large", f"record is {len(value)} bytes, the limit is {MAX_RECORD_BYTES}")
    try:
        event = json.loads(value, parse_constant=_not_a_json_constant)
    except UnicodeDecodeError as exc:
        raise Rejected("not_utf8", str(exc)) from None
    except ValueError as exc:
        raise Rejected("not_json", str(exc)) from None
    # JSON lets a string escape half of a UTF-16 pair ("\ud83d", a cut emoji); Python decodes it to a str
    # that cannot be written as UTF-8 (Arrow, DuckDB): landing it would fail the whole batch, every time
    surrogate = lone_surrogate(event) if b"\\ud" in value or b"\\uD" in value else None
    if surrogate:
        raise Rejected("not_utf8", f"a string holds a lone UTF-16 surrogate escape ({surrogate}), which is not Unicode text")
    valid = validate_event(event)
    expected = topic_for(valid.event["event_type"])
    if expected != topic:
        raise Rejected(
            "wrong_topic",
            f"{channel_of(valid.event['event_type'])} event belongs on topic {expected!r}, not {topic!r}",
        )
    return valid
