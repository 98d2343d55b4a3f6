"""The suppression list: keyed hashes of the identifiers of erased persons.

An erased person's old records may still sit on the Kafka topics (the local
broker cannot delete records, and a consumer group may be reset), and new
ones may arrive from producers that have not heard of the erasure. Ingest
drops every record that carries a suppressed identifier: it is neither landed
nor dead-lettered (its raw text would be personal data again); it is counted
as suppressed, per identifier, in ``suppressed_identifiers``.

The ingest hook is :func:`suppress_batch`, called inside the landing
transaction after the batch's inserts and before the commit, so an erasure
(which holds the warehouse while it works) and a landing batch can never
interleave, and a suppressed record is never committed::

    dropped = suppress_batch(con, settings.pseudonym_key, received_at)

It costs one small query per batch while the list is empty.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Mapping

import duckdb

from .matching import IDENTIFIER_TYPES, Identifier, extract_identifiers, identifier_hash
from .store import ensure_compliance_tables, fetch_dicts, table_exists

log = logging.getLogger(__name__)


def add_suppressions(con: duckdb.DuckDBPyConnection, hashes: Iterable[tuple[str, str]], request_id: str | None,
                     reason: str = "erasure", now: datetime | None = None) -> int:
    """Add (identifier_type, keyed hash) pairs; return how many were new."""
    ensure_compliance_tables(con)
    now = now or datetime.now(timezone.utc)
    pairs = sorted(set(hashes))
    before = con.execute("select count(*) from suppressed_identifiers").fetchone()[0]
    con.executemany("insert or ignore into suppressed_identifiers (identifier_type, identifier_hash, request_id, reason, "
                    "suppressed_at) values (?, ?, ?, ?, ?)", [(t, h, request_id, reason, now) for t, h in pairs])
    return con.execute("select count(*) from suppressed_identifiers").fetchone()[0] - before


def erased_by(con: duckdb.DuckDBPyConnection, identifier_hash: str) -> dict | None:
    """The earliest served erasure that erased this identifier, while it is still suppressed; else None.

    It erased it when it named it or resolved the person to it (the keyed hashes its request recorded: every
    identifier of the person). Only status ``served`` counts: a queued erasure has suppressed the hash but erased
    nothing yet, a refused one lifted its suppression, one served with values left did not finish."""
    if not (table_exists(con, "subject_requests") and table_exists(con, "suppressed_identifiers")):
        return None
    rows = fetch_dicts(con, "select request_id, identifier_type, identifier_hash, served_at, person_ids "
                            "from subject_requests where kind = 'erasure' and status = 'served' "
                            "and exists (select 1 from suppressed_identifiers where identifier_hash = ?) "
                            "and (identifier_hash = ? "
                            "     or list_contains(json_extract_string(details, '$.identifiers[*].hash'), ?)) "
                            "order by served_at, request_id limit 1", [identifier_hash] * 3)
    return rows[0] if rows else None


def load_suppressed(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The suppressed keyed hashes (empty when the table does not exist yet)."""
    if not table_exists(con, "suppressed_identifiers"):
        return set()
    return {h for (h,) in con.execute("select identifier_hash from suppressed_identifiers").fetchall()}


def suppressed_hashes_of(identities: Mapping[str, str | None], key: str, suppressed: set[str]) -> set[str]:
    """The suppressed hashes among an event's (normalised) identities."""
    if not suppressed:
        return set()
    out = set()
    for kind, value in identities.items():
        if value and kind in IDENTIFIER_TYPES:
            h = identifier_hash(key, kind, value)
            if h in suppressed:
                out.add(h)
    return out


def is_suppressed(identities: Mapping[str, str | None], key: str, suppressed: set[str]) -> bool:
    """True when any of an event's normalised identities is on the suppression list."""
    return bool(suppressed_hashes_of(identities, key, suppressed))


def raw_suppressed_hashes(raw: str | bytes | None, key: str, suppressed: set[str]) -> set[str]:
    """The suppressed hashes among the identifiers found in a raw record (any shape)."""
    if not suppressed or raw is None:
        return set()
    return {h for ident in extract_identifiers(raw) if (h := ident.hash(key)) in suppressed}


@dataclass
class SuppressedBatch:
    """What :func:`suppress_batch` removed from a landing batch."""

    landed_by_topic: Counter = field(default_factory=Counter)
    dead: int = 0

    @property
    def landed(self) -> int:
        return sum(self.landed_by_topic.values())

    @property
    def total(self) -> int:
        return self.landed + self.dead


_HASHED_COLUMNS = " or ".join(
    f"({c} is not null and list_contains($hashes, sha256($key || ':{c}:' || {c})))" for c in IDENTIFIER_TYPES)


def suppress_batch(con: duckdb.DuckDBPyConnection, key: str, received_at: datetime) -> SuppressedBatch:
    """Remove the records of erased persons from the landing batch stamped ``received_at``.

    Call it inside the landing transaction, after the batch's rows were
    inserted into ``landed_events`` / ``dead_letter`` (by either path) and
    before the commit: the suppressed records are never committed, their
    offsets are (they are consumed, not landed). Landed rows are matched on
    their normalised identity columns, dead letters on any identifier found
    in their raw text, whatever its spelling. The per-identifier counters of
    ``suppressed_identifiers`` are updated in the same transaction. One cheap
    query when the suppression list is empty.
    """
    result = SuppressedBatch()
    suppressed = load_suppressed(con)
    if not suppressed:
        return result
    hashes = sorted(suppressed)
    hits: Counter = Counter()
    rows = con.execute(f"select rowid, topic, {', '.join(IDENTIFIER_TYPES)} from landed_events "
                       f"where received_at = $received_at and ({_HASHED_COLUMNS})",
                       {"received_at": received_at, "hashes": hashes, "key": key}).fetchall()
    if rows:
        for rowid, topic, *ids in rows:
            result.landed_by_topic[topic] += 1
            hits.update(suppressed_hashes_of(dict(zip(IDENTIFIER_TYPES, ids)), key, suppressed))
        con.execute("delete from landed_events where list_contains(?::bigint[], rowid)", [[r[0] for r in rows]])
    doomed = []
    for rowid, raw, raw_bytes in con.execute("select rowid, raw, raw_bytes from dead_letter where received_at = ?",
                                             [received_at]).fetchall():
        found = raw_suppressed_hashes(raw if raw is not None else raw_bytes, key, suppressed)
        if found:
            doomed.append(rowid)
            hits.update(found)
    if doomed:
        result.dead = len(doomed)
        con.execute("delete from dead_letter where list_contains(?::bigint[], rowid)", [doomed])
    if hits:
        now = datetime.now(timezone.utc)
        con.executemany("update suppressed_identifiers set suppressed_records = suppressed_records + ?, "
                        "last_suppressed_at = ? where identifier_hash = ?", [(n, now, h) for h, n in hits.items()])
        log.warning("suppressed %d records carrying identifiers of erased persons (not landed, not dead-lettered)",
                    result.total)
    return result


def suppressed_identifiers_of(identifiers: Iterable[Identifier], key: str, suppressed: set[str]) -> list[Identifier]:
    return [i for i in identifiers if i.hash(key) in suppressed]
