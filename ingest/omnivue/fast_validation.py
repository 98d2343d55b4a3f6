"""The fast path of ingest: the event contract compiled to DuckDB SQL.

Validating in Python costs ~15 µs a record; a bare consume loop spends
~5 µs a record in kafka-python. To keep ingest close to the consume rate,
each batch is first checked by vectorised SQL in DuckDB (C++: one JSON parse
per record, then the rules) that implements the contracts of
contracts/events/ and the identifier normalisation of identifiers.py for the
common, plain cases.

The fast path is deliberately conservative: it only ACCEPTS a record when
every rule holds in its simplest form (ASCII identifiers, canonical
timestamps, no duplicate keys, no quote, backslash or control character
inside a string, no JSON leniency). Anything else — a real contract
violation or merely an unusual spelling — goes to the Python validator
(validation.py), which has the final word and writes the exact reason. So
the fast path may send a valid record down the slow path, but it never lands
a record that Python would reject; tests/test_fast_validation.py checks that
on valid, malformed and mutated records.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from .envelope import ALL_EVENT_TYPES, CONSENT_PURPOSES, CONSENT_SCOPES, TOPIC_BY_CHANNEL
from .identifiers import normalize_identifier
from .validation import MAX_RECORD_BYTES

RAW_SCHEMA = pa.schema([("idx", pa.int64()), ("topic", pa.string()), ("partition", pa.int32()),
                        ("offset", pa.int64()), ("record_key", pa.string()), ("kafka_timestamp_ms", pa.int64()),
                        ("raw", pa.string())])

_ID_TYPES = ("customer_id", "email", "phone", "device_id", "anonymous_id", "social_handle")


_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# canonical RFC 3339 only: upper-case T and Z, at most microseconds, plausible ranges
_TIME = (r"(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
         r"(\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])")
_PLAIN_ID = "[!-~]{1,200}"  # printable ASCII, no space: strip() changes nothing
_EMAIL = "[A-Za-z0-9._%+!#$&*/=?^`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\\.[A-Za-z0-9-]{1,63})+"
_HANDLE = "[A-Za-z][A-Za-z0-9_.-]{0,30}:@?[A-Za-z0-9_.-]{1,100}"
_PHONE = "[0-9 +().-]{3,40}"
_ENVELOPE_KEYS = ("event_id", "event_type", "channel", "occurred_at", "source", "schema_version", "identities",
                  "properties")
_TOPIC_OF = "case channel " + " ".join(f"when '{c}' then '{t}'" for c, t in TOPIC_BY_CHANNEL.items()) + " end"

# Step 1, materialised on its own: doc is NULL unless the record is strict JSON, so that no JSON
# function in step 2 ever sees malformed text (DuckDB may evaluate an expression for rows that a
# CASE or an AND would skip, and JSON functions raise on malformed input).
DOCS_SQL = f"""
select idx, topic, "partition", "offset", record_key, kafka_timestamp_ms, raw,
       case when strlen(raw) <= {MAX_RECORD_BYTES} and json_valid(raw)
                 and not regexp_matches(raw, ',\\s*[\\]}}]')   -- Python's json rejects trailing commas
            then raw end as doc
from raw_batch
"""

# Step 2, materialised: every field the contract reads, from ONE parse of the document
# (json_transform with JSON leaves gives each field's JSON text, re-serialised by DuckDB: a string
# comes back quoted, with a backslash only where its value holds a quote, a backslash or a control
# character). A field is taken as a string only when its text is a quoted string without any
# backslash: the rest goes to the slow path. The identities object and, for consent, the properties
# are small documents parsed again for their keys.
_FIELDS_SPEC = ("{" + ", ".join(f'"{k}": "JSON"' for k in _ENVELOPE_KEYS) + "}").replace("'", "''")
_IDS_SPEC = ("{" + ", ".join(f'"{k}": "JSON"' for k in _ID_TYPES) + "}").replace("'", "''")


def _string(text: str, other: str = "null") -> str:
    """SQL: the value of a JSON text that is a plain quoted string, else ``other``."""
    return (f"case when {text} is null then null "
            f"when starts_with({text}, '\"') and not contains({text}, '\\') then {text}[2:-2] else {other} end")


FIELDS_SQL = f"""
with parsed as (
    select idx, topic, "partition", "offset", record_key, kafka_timestamp_ms, raw,
           json_keys(doc) as top_keys,
           json_transform(doc, '{_FIELDS_SPEC}') as f
    from fast_docs
),
objects as (
    select *,
           case when starts_with(f.identities, '{{') then f.identities end as id_text,
           case when starts_with(f.properties, '{{') then f.properties end as props
    from parsed
),
ids as (
    select *, json_transform(id_text, '{_IDS_SPEC}') as idf from objects
)
select idx, topic, "partition", "offset", record_key, kafka_timestamp_ms, raw, top_keys,
       {_string("f.event_id")} as event_id,
       {_string("f.event_type")} as event_type,
       {_string("f.channel")} as channel,
       {_string("f.occurred_at")} as occurred_text,
       {_string("f.source")} as source,
       f.schema_version = '1' as version_one,
       props,
       json_keys(id_text) as id_keys,
       {", ".join(_string(f"idf.{k}", "'not a string'") + f" as id_{k}"
                  for k in _ID_TYPES)},
       case when f.channel = '"consent"' then json_keys(props) end as prop_keys,
       case when f.channel = '"consent"' then json_extract(props, ['$.purpose', '$.scope']) end as consent
from ids
"""

# Step 3: the rules, on the fields of step 2 (and the phones normalised by identifiers.py).
FAST_SQL = f"""
with checked as (
    select i.*, pm.e164,
           coalesce(
               -- exactly the envelope's keys, once each (extra or repeated keys: the slow path decides):
               -- as many keys as the envelope has, and each of them found (the rules below require every
               -- field; json_transform matches keys exactly and gives NULL for a missing key or a JSON null)
               len(top_keys) = {len(_ENVELOPE_KEYS)}
               and event_id is not null and regexp_full_match(event_id, '{_UUID}')
               and event_type in {tuple(ALL_EVENT_TYPES)!r}
               and channel is not null and channel = split_part(event_type, '.', 1)
               and topic = {_TOPIC_OF}
               and occurred_text is not null and regexp_full_match(occurred_text, '{_TIME}')
               and try_cast(occurred_text as timestamptz) is not null
               and source is not null and length(source) >= 1
               and version_one
               and id_keys is not null and len(id_keys) >= 1
               -- only identifier types, none repeated: as many keys as identifier types found
               and len(id_keys) = _ID_COUNT_
               and (id_customer_id is null or regexp_full_match(id_customer_id, '{_PLAIN_ID}'))
               and (id_device_id is null or regexp_full_match(id_device_id, '{_PLAIN_ID}'))
               and (id_anonymous_id is null or regexp_full_match(id_anonymous_id, '{_PLAIN_ID}'))
               -- emails and handles may come with spaces around them (trimmed, as identifiers.py does)
               and (id_email is null or regexp_full_match(id_email, ' *{_EMAIL} *'))
               and (id_social_handle is null or regexp_full_match(id_social_handle, ' *{_HANDLE} *'))
               and (id_phone is null or (regexp_full_match(id_phone, '{_PHONE}') and pm.e164 is not null))
               and props is not null
               and (channel <> 'consent' or (
                   len(prop_keys) = len(list_distinct(prop_keys))
                   and json_type(consent[1]) = 'VARCHAR' and (consent[1] ->> '$') in {tuple(CONSENT_PURPOSES)!r}
                   and json_type(consent[2]) = 'VARCHAR' and (consent[2] ->> '$') in {tuple(CONSENT_SCOPES)!r})),
               false) as ok
    from fast_fields as i
    left join phone_map as pm on pm.raw_phone = i.id_phone
)
select idx, topic, "partition", "offset", record_key, kafka_timestamp_ms, raw, ok,
       event_id, event_type, channel, occurred_text, source, id_customer_id, id_email, e164, id_device_id,
       id_anonymous_id, id_social_handle, props as properties
from checked
""".replace(
    "_ID_COUNT_", " + ".join(f"(id_{k} is not null)::int" for k in _ID_TYPES))

# The accepted records as landed_events rows (all but received_at, set when they land). Needs
# TimeZone = 'UTC' on the connection: the integer Kafka timestamps are UTC.
ACCEPTED_SQL = """
select topic, "partition", "offset", record_key,
       case when kafka_timestamp_ms >= 0 then make_timestamp(kafka_timestamp_ms * 1000)::timestamptz end
           as kafka_timestamp,
       lower(event_id) as event_id, event_type, channel, cast(occurred_text as timestamptz) as occurred_at, source,
       1 as schema_version, id_customer_id as customer_id, lower(trim(id_email)) as email, e164 as phone,
       id_device_id as device_id, id_anonymous_id as anonymous_id,
       lower(regexp_replace(trim(id_social_handle), ':@', ':')) as social_handle, properties, raw
from fast_checked where ok
"""
_LANDED_COLUMNS = ('topic, "partition", "offset", record_key, kafka_timestamp, event_id, event_type, channel, '
                   "occurred_at, source, schema_version, customer_id, email, phone, device_id, anonymous_id, "
                   "social_handle, properties, raw")
INSERT_ACCEPTED = (f"insert into landed_events ({_LANDED_COLUMNS}, received_at) "
                   f"select {_LANDED_COLUMNS}, $received_at from accepted_batch")


def phone_map(con: Any) -> pa.Table:
    """Distinct phone values of the batch, normalised by identifiers.py (None when unusable)."""
    rows = con.execute("select distinct id_phone from fast_fields where id_phone is not null").fetchall()
    raw, e164 = [], []
    for (value,) in rows:
        try:
            norm = normalize_identifier("phone", value)
        except ValueError:
            norm = None
        raw.append(value)
        e164.append(norm)
    return pa.table({"raw_phone": pa.array(raw, pa.string()), "e164": pa.array(e164, pa.string())})


def check(con: Any, raw_batch: pa.Table) -> tuple[pa.Table, list[int]]:
    """Run the fast path over ``raw_batch`` (RAW_SCHEMA) on ``con`` (any DuckDB connection: it
    only uses temporary tables). Returns the accepted records as landed_events rows and the idx
    of the records the slow path must judge."""
    con.execute("set TimeZone = 'UTC'")
    try:
        con.register("raw_batch", raw_batch)
        con.execute(f"create or replace temp table fast_docs as {DOCS_SQL}")
        con.execute(f"create or replace temp table fast_fields as {FIELDS_SQL}")
        con.register("phone_map", phone_map(con))
        con.execute(f"create or replace temp table fast_checked as {FAST_SQL}")
        slow = [i for (i,) in con.execute("select idx from fast_checked where not ok order by idx").fetchall()]
        return con.sql(ACCEPTED_SQL).to_arrow_table(), slow
    finally:
        _cleanup(con)


def insert_accepted(con: Any, accepted: pa.Table, received_at: Any) -> None:
    """Append what :func:`check` accepted to landed_events (inside the caller's transaction)."""
    con.register("accepted_batch", accepted)
    try:
        con.execute(INSERT_ACCEPTED, {"received_at": received_at})
    finally:
        con.unregister("accepted_batch")


def _cleanup(con: Any) -> None:
    try:
        for table in ("fast_checked", "fast_fields", "fast_docs"):
            con.execute(f"drop table if exists {table}")
    except Exception:  # an aborted transaction: the caller's error is the one that matters
        pass
    for name in ("raw_batch", "phone_map"):
        try:
            con.unregister(name)
        except Exception:  # not registered: nothing to undo
            pass
