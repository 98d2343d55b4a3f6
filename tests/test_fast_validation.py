"""The vectorised fast path never lands what the Python validator would
reject, and lands exactly the same values when it accepts (differential test
over valid, malformed and mutated records)."""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone

import duckdb
import pyarrow as pa

from omnivue import fast_validation
from omnivue.envelope import topic_for
from omnivue.identifiers import normalize_identifier
from omnivue.simulator import Simulation
from omnivue.validation import Rejected, validate_record
from omnivue.warehouse import LANDING_DDL


def _mutations(rng: random.Random, ev: dict) -> list[tuple[str, bytes]]:
    """Spellings a real producer might send: some valid, some not."""
    topic = topic_for(ev["event_type"])
    out = []

    def add(mutated: dict | None = None, raw: str | None = None, t: str = topic) -> None:
        out.append((t, (raw if raw is not None else json.dumps(mutated)).encode()))

    m = json.loads(json.dumps(ev))
    ids = m["identities"]
    choice = rng.randrange(31)
    if choice == 0:
        m["occurred_at"] = m["occurred_at"].replace("T", "t")
    elif choice == 1:
        m["occurred_at"] = m["occurred_at"][:19] + ".123456789Z"
    elif choice == 2:
        m["occurred_at"] = m["occurred_at"][:19] + "+05:30"
    elif choice == 3:
        ids["email"] = "  Mixed.Case@Example.COM "
    elif choice == 4:
        ids["customer_id"] = 12345
    elif choice == 5:
        ids["email"] = "émile@exemple.fr"
    elif choice == 6:
        m["schema_version"] = True
    elif choice == 7:
        m["schema_version"] = 1.0
    elif choice == 8:
        m["event_id"] = m["event_id"].upper()
    elif choice == 9:
        m["extra"] = {"nested": [1, 2, None]}
    elif choice == 10:
        ids["social_handle"] = "X:@Bob_" + str(rng.randrange(99))
    elif choice == 11:
        ids["phone"] = rng.choice(["+33 6 12 34 56 78", "06.12.34.56.78", "12", "+1 (415) 555-0100", "abc"])
    elif choice == 12:
        ids["device_id"] = " dev with space "
    elif choice == 13:
        add(raw=json.dumps(m)[:-1] + ', "event_type": "email.bogus"}')  # duplicate key, last one wins in Python
        return out
    elif choice == 14:
        add(raw=json.dumps(m)[:-1] + ",}")  # trailing comma
        return out
    elif choice == 15:
        m["source"] = ""
    elif choice == 16:
        m["identities"] = {"email": None}
    elif choice == 17:
        m["properties"] = []
    elif choice == 18:
        add(m, t="identity" if topic != "identity" else "consent")
        return out
    elif choice == 19:
        m["occurred_at"] = "2026-02-30T10:00:00Z"
    elif choice == 20:
        m["channel"] = m["channel"].upper()
    elif choice == 21:  # a repeated identifier key (Python keeps the last one)
        key = next(iter(ids))
        add(raw=json.dumps(m).replace('"identities": {', f'"identities": {{"{key}": "first-{key}@x.io", ', 1))
        return out
    elif choice == 22:  # a repeated key in properties (a consent scope said twice)
        add(raw=json.dumps(m).replace('"properties": {', '"properties": {"scope": "sms", "purpose": "analytics", ', 1))
        return out
    elif choice == 23:  # escapes: a quote and a backslash in a value, an escaped plain letter
        m["source"] = 'web "beta" \\ v2'
        if "email" in ids:
            ids["email"] = ids["email"].strip()
            add(raw=json.dumps(m).replace(json.dumps(ids["email"]), '"\\u0061' + ids["email"][1:] + '"', 1)
                .replace('"event_type"', '"event\\u005ftype"', 1))
            return out
    elif choice == 24:
        ids["device_id"] = "dev\u00e9\t" if rng.random() < 0.5 else "dev-\\-1"
    elif choice == 25:  # an identifier type the contract does not know
        ids[rng.choice(["twitter", "Email", "idfa"])] = "someone"
    elif choice == 26:  # as many keys as the envelope, one of them renamed
        m["Source"] = m.pop("source")
    elif choice == 27:  # fields the fast path reads as VARCHAR, given as other JSON values
        key = rng.choice(["email", "social_handle", "event_id", "event_type", "channel", "occurred_at"])
        value = rng.choice([{"a@b.co": "x:y"}, ["a@b.co"], 12345, True, {"x": 1}, ["x:y"]])
        if key in ("email", "social_handle"):
            ids[key] = value
        else:
            m[key] = value
    elif choice == 28:  # escapes that decode to plain characters, in fields read as VARCHAR
        text = _escape_first(_escape_first(json.dumps(m), "event_id"), "channel")
        add(raw=text.replace("@", "\\u0040", 1))
        return out
    elif choice == 29:  # a NUL or a newline escaped inside a field read as VARCHAR
        m["event_type"] = m["event_type"] + rng.choice(["\u0000", "\n", " "])
    else:
        ids["anonymous_id"] = "anon-" + "x" * rng.randrange(1, 300)
    add(m)
    return out


def _escape_first(text: str, key: str) -> str:
    """``text`` with the first character of the string value of ``key`` written as a \\u escape."""
    head = f'"{key}": "'
    at = text.index(head) + len(head)
    return text[:at] + f"\\u{ord(text[at]):04x}" + text[at + 1:]


def _python_row(topic: str, value: bytes) -> dict | None:
    try:
        v = validate_record(topic, value)
    except Rejected:
        return None
    return {"event_id": v.event["event_id"].lower(), "event_type": v.event["event_type"],
            "channel": v.event["channel"], "occurred_at": v.occurred_at, "source": v.event["source"],
            **{k: v.identities.get(k) for k in ("customer_id", "email", "phone", "device_id", "anonymous_id",
                                                "social_handle")},
            "properties": v.event["properties"]}


def test_fast_path_is_a_strict_subset_of_the_contract_with_identical_values():
    rng = random.Random(17)
    sim = Simulation(400, 10, seed=5).build()
    records = [(r.topic, r.value) for r in sim.records]
    for r in sim.records[:3000]:
        if r.event is not None:
            records.extend(_mutations(rng, r.event))
    records.append(("consent", b"\xff\xfe not utf-8"))
    # malformed JSON of every kind, many of them side by side: no JSON function of the fast path may
    # ever be handed one of these (it would raise and fail the whole batch)
    first = json.dumps(sim.records[0].event)
    broken = [first[:-1], first + " x", "nope", '{"event_id": "\\ud800"}', first.replace(":", "=", 1), "", "[]",
              '"just a string"', "null", "{" * 50, first.replace('"identities": {', '"identities": {,', 1)]
    records.extend((sim.records[0].topic, b.encode()) for b in broken * 300)

    raw = _raw_batch(records)
    con = duckdb.connect()
    con.execute(LANDING_DDL)
    con.execute("set TimeZone = 'UTC'")
    accepted, slow_idx = fast_validation.check(con, raw)
    # again on the same connection, its phones now from the connection's cache: the same verdicts
    again, again_slow = fast_validation.check(con, raw)
    assert again_slow == slow_idx and again.equals(accepted)
    slow = set(slow_idx)
    fast_validation.insert_accepted(con, accepted, datetime.now(timezone.utc))
    cur = con.execute('select "offset", event_id, event_type, channel, occurred_at, source, customer_id, email, phone, '
                      "device_id, anonymous_id, social_handle, properties, "
                      "properties ->> '$.purpose' as purpose_read, properties ->> '$.scope' as scope_read "
                      "from landed_events")
    cols = [d[0] for d in cur.description]
    landed = {row[0]: dict(zip(cols[1:], row[1:])) for row in cur.fetchall()}

    assert set(landed) == set(range(len(records))) - slow
    python = {i: _python_row(t, v) for i, (t, v) in enumerate(records)}
    for i, row in landed.items():
        expected = python[i]
        assert expected is not None, f"fast path landed a record Python rejects: {records[i]}"
        row["properties"] = json.loads(row["properties"])
        # what the dbt models will read from properties (DuckDB keeps the FIRST of repeated keys)
        read = (row.pop("purpose_read"), row.pop("scope_read"))
        if row["channel"] == "consent":
            assert read == (expected["properties"]["purpose"], expected["properties"]["scope"]), records[i]
        assert row == expected, records[i]
    valid_plain = [i for i, r in enumerate(sim.records) if r.event is not None]
    accepted_share = sum(1 for i in valid_plain if i in landed) / len(valid_plain)
    assert accepted_share > 0.95, f"the fast path accepts only {accepted_share:.0%} of plain valid events"
    rejected_by_python = [i for i in python if python[i] is None]
    assert rejected_by_python and all(i in slow for i in rejected_by_python)


def _utf8(value: bytes) -> str | None:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _raw_batch(records: list[tuple[str, bytes]]) -> pa.Table:
    return pa.table({
        "idx": pa.array(range(len(records)), pa.int64()),
        "topic": [t for t, _ in records],
        "partition": pa.array([0] * len(records), pa.int32()),
        "offset": pa.array(range(len(records)), pa.int64()),
        "record_key": pa.array([None] * len(records), pa.string()),
        "kafka_timestamp_ms": pa.array([0] * len(records), pa.int64()),
        "raw": pa.array([_utf8(v) for _, v in records], pa.string()),
    }, schema=fast_validation.RAW_SCHEMA)


def test_cached_phones_follow_the_default_region(monkeypatch):
    """A connection remembers the phones it normalised; a national number read with one default
    region must not be reused once the region changes (OMNIVUE_DEFAULT_PHONE_REGION)."""
    event = next(r.event for r in Simulation(20, 3, seed=2).build().records if r.event is not None)
    spellings = ["06 12 34 56 78", "(415) 555-0100", "+33 6 12 34 56 78", "12"]
    records = []
    for i, phone in enumerate(spellings):
        ev = json.loads(json.dumps(event))
        ev["event_id"] = f"00000000-0000-4000-8000-{i:012d}"
        ev["identities"] = {"phone": phone}
        records.append((topic_for(ev["event_type"]), json.dumps(ev).encode()))
    raw = _raw_batch(records)
    con = duckdb.connect()
    seen = {}
    for region in ("FR", "US", "FR"):
        monkeypatch.setenv("OMNIVUE_DEFAULT_PHONE_REGION", region)
        expected = {}
        for phone in spellings:
            try:
                expected[phone] = normalize_identifier("phone", phone)
            except ValueError:
                expected[phone] = None
        for _ in range(2):  # the second time from the cache
            accepted, _slow = fast_validation.check(con, raw)
            got = dict(zip(accepted.column("offset").to_pylist(), accepted.column("phone").to_pylist()))
            assert {spellings[i]: got.get(i) for i in range(len(spellings))} == expected, region
        seen[region] = expected
    assert seen["FR"] != seen["US"]  # the spellings do depend on the region
