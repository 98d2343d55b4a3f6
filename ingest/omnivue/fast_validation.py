"""The fast path of ingest: the event contract compiled to DuckDB SQL.

Validating in Python costs ~15 µs a record; a bare consume loop spends
~4 µs a record in kafka-python. To keep ingest close to the consume rate,
each batch is first checked by ONE vectorised DuckDB query (C++: the JSON
validated, then parsed once for its fields and once for its keys, then the rules; no
intermediate table) that implements the contracts of contracts/events/ and
the identifier normalisation of identifiers.py for the common, plain cases
(phones by identifiers.py itself, called from the query, once per distinct
phone and connection).

The fast path is deliberately conservative: it only ACCEPTS a record when
every rule holds in its simplest form (ASCII identifiers, canonical
timestamps, no duplicate keys, no JSON leniency, and no quote, backslash or
control character in a free-text field or an identifier without a pattern
that excludes them). Anything else — a real contract violation or merely an
unusual spelling — goes to the Python validator (validation.py), which has
the final word and writes the exact reason. So the fast path may send a
valid record down the slow path, but it never lands a record that Python
would reject; tests/test_fast_validation.py checks that on valid, malformed
and mutated records.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .envelope import ALL_EVENT_TYPES, CONSENT_PURPOSES, CONSENT_SCOPES, TOPIC_BY_CHANNEL
from .identifiers import default_region, normalize_identifier
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
_PHONE_CACHE = "omnivue_phone_e164"  # temporary table: phone as sent -> E.164 (NULL: unusable)
_TOPIC_OF = "case channel " + " ".join(f"when '{c}' then '{t}'" for c, t in TOPIC_BY_CHANNEL.items()) + " end"

# Step 1: doc is NULL unless the record is strict JSON, so that no JSON function below ever sees
# malformed text (JSON functions raise on it): every JSON function reads doc, or a part of a doc
# that parsed.
DOCS_SQL = f"""
select idx, topic, "partition", "offset", record_key, kafka_timestamp_ms, raw,
       case when strlen(raw) <= {MAX_RECORD_BYTES} and json_valid(raw)
                 and not regexp_matches(raw, ',\\s*[\\]}}]')   -- Python's json rejects trailing commas
            then raw end as doc
from raw_batch
"""

# Step 2: every field the contract reads, from ONE parse of the document.
# Fields whose rules are a pattern or a list of values that no JSON number, boolean, object or array
# can match (event_id, event_type, channel, occurred_at; email and social_handle need an "@" or a
# ":" between characters that JSON punctuation is not) are read as VARCHAR: a non-string gives its
# JSON text, which fails the rule. The others (source, schema_version, and customer_id, phone,
# device_id, anonymous_id, whose patterns a number would match) come as JSON text and are taken as
# strings only when quoted without any backslash. The identities object and, for consent, the
# properties are small documents parsed again for their keys.
_STRING_FIELDS = ("event_id", "event_type", "channel", "occurred_at")
_STRING_IDS = ("email", "social_handle")
_FIELDS_SPEC = ("{" + ", ".join(f'"{k}": "{"VARCHAR" if k in _STRING_FIELDS else "JSON"}"'
                                for k in _ENVELOPE_KEYS) + "}")
_IDS_SPEC = "{" + ", ".join(f'"{k}": "{"VARCHAR" if k in _STRING_IDS else "JSON"}"' for k in _ID_TYPES) + "}"


def _string(text: str, other: str = "null") -> str:
    """SQL: the value of a JSON text that is a plain quoted string, else ``other``."""
    return (f"case when {text} is null then null "
            f"when starts_with({text}, '\"') and not contains({text}, '\\') then {text}[2:-2] else {other} end")


def _id_value(k: str) -> str:
    return f"idf.{k}" if k in _STRING_IDS else _string(f"idf.{k}", "'not a string'")


FIELDS_SQL = f"""
with docs as ({DOCS_SQL}),
parsed as (
    select idx, topic, "partition", "offset", record_key, kafka_timestamp_ms, raw,
           json_keys(doc) as top_keys,
           json_transform(doc, '{_FIELDS_SPEC}') as f
    from docs
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
       f.event_id, f.event_type, f.channel, f.occurred_at as occurred_text,
       {_string("f.source")} as source,
       f.schema_version = '1' as version_one,
       props,
       json_keys(id_text) as id_keys,
       {", ".join(_id_value(k) + f" as id_{k}" for k in _ID_TYPES)},
       case when f.channel = 'consent' then json_keys(props) end as prop_keys,
       case when f.channel = 'consent' then json_extract(props, ['$.purpose', '$.scope']) end as consent
from ids
"""

# Step 3: the rules, on the fields of step 2 (and the phones normalised by identifiers.py), and the
# accepted records as landed_events rows (all but received_at, set when they land). Needs
# TimeZone = 'UTC' on the connection: the integer Kafka timestamps are UTC.
FAST_SQL = f"""
with fields as ({FIELDS_SQL}),
phoned as (
    -- phones normalised earlier on this connection come from its cache (_PHONE_CACHE); only the
    -- others go to identifiers.py (a Python function: each call takes the GIL from the other threads)
    select i.*, case when i.id_phone is null then null
                     when known.phone is not null then known.e164
                     else omnivue_e164(i.id_phone) end as e164
    from fields as i left join {_PHONE_CACHE} as known on known.phone = i.id_phone
),
checked as (
    select i.*,
           case when regexp_full_match(occurred_text, '{_TIME}') then try_cast(occurred_text as timestamptz) end
               as occurred_at,
           coalesce(
               -- exactly the envelope's keys, once each (extra or repeated keys: the slow path decides):
               -- as many keys as the envelope has, and each of them found (the rules below require every
               -- field; json_transform matches keys exactly and gives NULL for a missing key or a JSON null)
               len(top_keys) = {len(_ENVELOPE_KEYS)}
               and event_id is not null and regexp_full_match(event_id, '{_UUID}')
               and event_type in {tuple(ALL_EVENT_TYPES)!r}
               and channel is not null and channel = split_part(event_type, '.', 1)
               and topic = {_TOPIC_OF}
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
               and (id_phone is null or (regexp_full_match(id_phone, '{_PHONE}') and e164 is not null))
               and props is not null
               and (channel <> 'consent' or (
                   len(prop_keys) = len(list_distinct(prop_keys))
                   and json_type(consent[1]) = 'VARCHAR' and (consent[1] ->> '$') in {tuple(CONSENT_PURPOSES)!r}
                   and json_type(consent[2]) = 'VARCHAR' and (consent[2] ->> '$') in {tuple(CONSENT_SCOPES)!r})),
               false) as valid
    from phoned as i
)
select idx, valid and occurred_at is not null as ok,
       case when kafka_timestamp_ms >= 0 then make_timestamp(kafka_timestamp_ms * 1000)::timestamptz end
           as kafka_timestamp,
       lower(event_id) as event_id, event_type, channel, occurred_at, source,
       1 as schema_version, id_customer_id as customer_id, lower(trim(id_email)) as email, e164 as phone,
       id_device_id as device_id, id_anonymous_id as anonymous_id,
       lower(regexp_replace(trim(id_social_handle), ':@', ':')) as social_handle, props as properties
from checked
""".replace(
    "_ID_COUNT_", " + ".join(f"(id_{k} is not null)::int" for k in _ID_TYPES))

_PASSED_THROUGH = ["topic", "partition", "offset", "record_key"]
_LANDED_COLUMNS = ('topic, "partition", "offset", record_key, kafka_timestamp, event_id, event_type, channel, '
                   "occurred_at, source, schema_version, customer_id, email, phone, device_id, anonymous_id, "
                   "social_handle, properties")
# with the original text (check(keep_raw=True)) or without (landed_events.raw NULL)
INSERT_ACCEPTED = {keep_raw: f"insert into landed_events ({_LANDED_COLUMNS}, raw, received_at) "
                             f"select {_LANDED_COLUMNS}, {'raw' if keep_raw else 'null'}, $received_at "
                             "from accepted_batch"
                   for keep_raw in (True, False)}


warnings.filterwarnings("ignore", message="Arrow output on a DB-API result makes an extra copy",
                        category=UserWarning, module=__name__)


class _PhoneNormaliser:
    """SQL function ``omnivue_e164`` of one connection: a vector of phones normalised by
    identifiers.py (NULL when unusable), each distinct value once, remembered until
    :meth:`remember` adds them to the connection's cache table. A Python function in a query
    takes the GIL for every vector it is called on, from threads that need it (polling,
    the other validator): with the cache it is called only on vectors with a phone not seen
    before (546k records: ~0.3 s less of ingest's wall time)."""

    MAX_CACHED = 200_000  # distinct phones per connection; then the cache starts again

    def __init__(self, con: Any) -> None:
        self.new: dict[str, str | None] = {}
        self.region = default_region()
        self.cached = 0
        con.create_function("omnivue_e164", self._e164, ["VARCHAR"], "VARCHAR", type="arrow",
                            null_handling="special", side_effects=False)

    def _e164(self, values: pa.Array) -> pa.Array:
        distinct = pc.unique(values).drop_null()
        normalised = []
        for value in distinct.to_pylist():
            try:
                e164 = normalize_identifier("phone", value)
            except ValueError:
                e164 = None
            normalised.append(e164)
            self.new[value] = e164
        return pc.take(pa.array(normalised, pa.string()), pc.index_in(values, value_set=distinct))

    def prepare(self, con: Any) -> None:
        """Before a query: the cache table exists (a rolled-back transaction may have dropped it),
        and holds nothing normalised for another default region or beyond MAX_CACHED."""
        con.execute(f"create temp table if not exists {_PHONE_CACHE} (phone varchar, e164 varchar)")
        region = default_region()
        if region != self.region or self.cached > self.MAX_CACHED:
            con.execute(f"delete from {_PHONE_CACHE}")
            self.region, self.cached = region, 0

    def remember(self, con: Any) -> None:
        """After a query: add what it normalised to the cache."""
        if not self.new:
            return
        new, self.new = self.new, {}
        con.register("omnivue_new_phones", pa.table({"phone": list(new), "e164": list(new.values())},
                                                   schema=pa.schema([("phone", pa.string()), ("e164", pa.string())])))
        try:
            con.execute(f"insert into {_PHONE_CACHE} select * from omnivue_new_phones")
        finally:
            con.unregister("omnivue_new_phones")
        self.cached += len(new)


_PHONES: "weakref.WeakKeyDictionary[Any, _PhoneNormaliser]" = weakref.WeakKeyDictionary()


def check(con: Any, raw_batch: pa.Table, keep_raw: bool = True) -> tuple[pa.Table, list[int]]:
    """Run the fast path over ``raw_batch`` (RAW_SCHEMA) on ``con`` (any DuckDB connection; one
    query; the phones it normalised are kept in a temporary table of ``con``). Returns the
    accepted records as landed_events rows (with their original text, column raw, if
    ``keep_raw``) and the idx of the records the slow path must judge, in order."""
    con.execute("set TimeZone = 'UTC'")
    phones = _PHONES.get(con)
    if phones is None:  # (looking the function up in duckdb_functions() costs ~8 ms a batch)
        phones = _PHONES[con] = _PhoneNormaliser(con)
    phones.prepare(con)
    con.register("raw_batch", raw_batch)
    try:
        # execute() plans the query once; con.sql(...).to_arrow_table() binds it twice (~10 ms a batch
        # more than the copy duckdb warns about here)
        checked = con.execute(FAST_SQL).to_arrow_table()
    finally:
        con.unregister("raw_batch")
    phones.remember(con)
    ok = pc.fill_null(checked.column("ok"), False)  # never NULL; were it, the record must not vanish
    slow = sorted(pc.filter(checked.column("idx"), pc.invert(ok)).to_pylist())
    accepted = checked.filter(ok)
    # the columns that pass through unchanged come from the batch itself (DuckDB need not copy them)
    passed_through = _PASSED_THROUGH + (["raw"] if keep_raw else [])
    passed = raw_batch.select(passed_through).take(accepted.column("idx"))
    return pa.Table.from_arrays([*passed.columns, *accepted.drop_columns(["idx", "ok"]).columns],
                                names=[*passed_through, *accepted.column_names[2:]]), slow


def insert_accepted(con: Any, accepted: pa.Table, received_at: Any) -> None:
    """Append what :func:`check` accepted to landed_events (inside the caller's transaction); raw
    is NULL when ``accepted`` has no such column."""
    con.register("accepted_batch", accepted)
    try:
        con.execute(INSERT_ACCEPTED["raw" in accepted.column_names], {"received_at": received_at})
    finally:
        con.unregister("accepted_batch")
