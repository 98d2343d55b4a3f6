"""The event contracts (contracts/events/) as ingest applies them."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from omnivue.envelope import ALL_EVENT_TYPES, encode, make_event, topic_for
from omnivue.validation import Rejected, validate_record

T = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _event(**overrides):
    ev = make_event("consent.granted", T, "web", {"email": " Ana@Example.COM "},
                    {"purpose": "marketing", "scope": "email"})
    ev.update(overrides)
    return ev


def test_every_event_type_has_a_schema_that_accepts_a_canonical_event():
    for et in ALL_EVENT_TYPES:
        props = {"purpose": "analytics", "scope": "all"} if et.startswith("consent.") else {}
        ev = make_event(et, T, "test", {"customer_id": "c1", "device_id": "d1"}, props)
        valid = validate_record(topic_for(et), encode(ev))
        assert valid.event["event_type"] == et


def test_identities_are_normalised_and_time_parsed():
    valid = validate_record("consent", encode(_event(occurred_at="2026-03-01T13:00:00+01:00")))
    assert valid.identities == {"email": "ana@example.com"}
    assert valid.occurred_at == T


@pytest.mark.parametrize("mutate, code, words", [
    (lambda e: e.pop("event_id"), "schema", "event_id"),
    (lambda e: e.update(event_id="not-a-uuid"), "schema", "UUID"),
    (lambda e: e.update(channel="email"), "schema", "does not match"),
    (lambda e: e.update(event_type="consent.renewed"), "schema", "event_type"),
    (lambda e: e.update(occurred_at="2026-03-01T12:00:00"), "schema", "offset"),
    (lambda e: e.update(occurred_at="2026-02-30T12:00:00Z"), "schema", "RFC 3339"),
    (lambda e: e.update(occurred_at="2026-03-01T12:00:00+05:99"), "schema", "occurred_at"),
    (lambda e: e.update(identities={}), "schema", "identities"),
    (lambda e: e.update(identities={"passport": "x"}), "schema", "identities"),
    (lambda e: e.update(identities={"email": "nobody"}), "identity", "email"),
    (lambda e: e.update(identities={"phone": "12345"}), "identity", "phone"),
    (lambda e: e.update(properties={"scope": "email"}), "schema", "purpose"),
    (lambda e: e.update(properties={"purpose": "marketing", "scope": "fax"}), "schema", "scope"),
    (lambda e: e.update(schema_version=2), "schema", "schema_version"),
    (lambda e: e.update(source=""), "schema", "source"),
    (lambda e: e.pop("properties"), "schema", "properties"),
])
def test_contract_violations_are_rejected_with_a_reason(mutate, code, words):
    ev = _event()
    mutate(ev)
    with pytest.raises(Rejected) as info:
        validate_record("consent", encode(ev))
    assert info.value.code == code
    assert words.lower() in info.value.reason.lower()


@pytest.mark.parametrize("raw, code", [
    (b"{not json", "not_json"),
    (b"[1, 2]", "not_object"),
    (b"\xff\xfe\x00", "not_utf8"),
    (None, "empty"),
    # NaN and Infinity are not JSON (RFC 8259), though Python's json reads them
    (encode(_event(properties={"purpose": "marketing", "scope": "email"})).replace(b'"email"}', b'"email","x":NaN}'),
     "not_json"),
    (encode(_event(properties={"purpose": "marketing", "scope": "email"})).replace(b'"email"}', b'"email","x":-Infinity}'),
     "not_json"),
])
def test_undecodable_records_are_rejected(raw, code):
    with pytest.raises(Rejected) as info:
        validate_record("consent", raw)
    assert info.value.code == code


def test_event_on_the_wrong_topic_is_rejected():
    with pytest.raises(Rejected) as info:
        validate_record("interactions.email", encode(_event()))
    assert info.value.code == "wrong_topic"
    assert "'consent'" in info.value.reason


def test_oversized_record_is_rejected_without_parsing():
    ev = _event(properties={"purpose": "marketing", "scope": "email", "blob": "x" * 2_000_000})
    with pytest.raises(Rejected) as info:
        validate_record("consent", encode(ev))
    assert info.value.code == "too_large"


def test_integer_customer_id_is_accepted_as_text():
    valid = validate_record("identity", encode(make_event("identity.linked", T, "crm",
                                                          {"customer_id": 42, "email": "a@b.co"})))  # type: ignore[dict-item]
    assert valid.identities["customer_id"] == "42"


def test_schemas_share_the_envelope_instead_of_redeclaring_it():
    from omnivue.config import contracts_dir

    for et in ALL_EVENT_TYPES:
        schema = json.loads((contracts_dir() / "events" / f"{et}.json").read_text())
        assert {"$ref": "envelope.json"} in schema["allOf"]
        assert "required" not in schema or schema["required"] == []


# a JSON string may escape half of a UTF-16 pair (JavaScript cutting a text inside an emoji): valid UTF-8
# and valid JSON, but not Unicode text: Arrow and DuckDB cannot write it
CUT_EMOJI = (b'{"event_id":"11111111-1111-4111-8111-000000000002","event_type":"email.opened","channel":"email",'
             b'"occurred_at":"2026-03-01T12:00:00Z","source":"t","identities":{"email":"a@b.com"},'
             b'"properties":{"subject":"cut emoji \\ud83d"},"schema_version":1}')


@pytest.mark.parametrize("fast", [True, False])
def test_a_lone_surrogate_escape_is_a_dead_letter_and_its_batch_still_lands(tmp_path, fast):
    import duckdb
    import pyarrow as pa

    from omnivue.config import Settings
    from omnivue.ingester import Ingester
    from omnivue.record_batches import POLLED_SCHEMA

    with pytest.raises(Rejected) as info:
        validate_record("interactions.email", CUT_EMOJI)
    assert info.value.code == "not_utf8" and "\\ud83d" in info.value.reason
    whole = CUT_EMOJI.replace(b"\\ud83d", b"\\ud83d\\ude00").replace(b"0002", b"0003")  # a whole pair is fine
    assert validate_record("interactions.email", whole).event["properties"]["subject"] == "cut emoji \U0001F600"

    ingester = Ingester(Settings(home=tmp_path, bootstrap="x", consumer_group="g", pseudonym_key="k"), fast_path=fast)
    records = pa.Table.from_pydict({"topic": ["interactions.email"] * 2, "partition": [0, 0], "offset": [0, 1],
                                    "timestamp": [0, 0], "key": [None, None], "value": [CUT_EMOJI, whole]},
                                   schema=POLLED_SCHEMA)
    # before: UnicodeEncodeError out of the batch's Arrow tables, the batch never landed, ingest stalled on it
    checked = ingester._validate(duckdb.connect(), records)
    assert checked.dead.num_rows == 1 and checked.dead.column("reason")[0].as_py().startswith("not_utf8")
    assert checked.dead.column("offset")[0].as_py() == 0
    assert sum(checked.landed_by_topic.values()) == 1
