"""A data subject: from one identifier to the whole person, and the access export.

Resolution takes the identity graph's verdict: the person(s)
``identity_map`` assigns the identifier to and all of their identifiers;
then, for events landed since the last dbt build, identifiers seen in a
landed event with one of theirs (transitively) that identity_map does not
know yet. An identifier identity_map gives to somebody else is never
followed (the graph decided it is another person: their data stays), nor are
placeholder values (dbt var ``identity_blocklist``) and hubs
(``int_identity_shared_identifiers`` when it exists); a resolution that grows past
``max_identifiers`` is refused rather than erasing half the warehouse.

A request can name its identifier by value (the CLI) or by keyed hash only
(a queued request): the hash is matched against the identifiers the
warehouse holds.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Iterable

import duckdb

from ..config import dbt_project_dir
from ..identifiers import normalize_identifier
from .matching import IDENTIFIER_TYPES, Identifier, Matcher, extract_identifiers, identifier_hash
from .store import ComplianceError, fetch_dicts, table_exists

log = logging.getLogger(__name__)

DEFAULT_MAX_IDENTIFIERS = 200


@dataclass(frozen=True)
class Seed:
    """The identifier a request names: its type, keyed hash and (when known) normalised value."""

    type: str
    hash: str
    value: str | None = None

    @classmethod
    def from_value(cls, key: str, identifier_type: str, raw_value: str) -> "Seed":
        if identifier_type not in IDENTIFIER_TYPES:
            raise ComplianceError(f"unknown identifier type {identifier_type!r}")
        try:
            value = normalize_identifier(identifier_type, raw_value)
        except ValueError as exc:
            raise ComplianceError(f"--{identifier_type.replace('_', '-')}: {exc}") from None
        return cls(identifier_type, identifier_hash(key, identifier_type, value), value)


@dataclass
class Subject:
    seeds: list[Seed]
    identifiers: list[Identifier] = field(default_factory=list)
    person_ids: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.identifiers)

    @property
    def matcher(self) -> Matcher:
        """Finds the person's values in text: every identifier held, and the values the request named."""
        named = [Identifier(s.type, s.value) for s in self.seeds if s.value is not None]
        return Matcher(list(self.identifiers) + named)

    def hashes(self, key: str) -> list[tuple[str, str]]:
        """(type, keyed hash) of every identifier, the seeds' included."""
        pairs = {(i.type, i.hash(key)) for i in self.identifiers} | {(s.type, s.hash) for s in self.seeds}
        return sorted(pairs)

    def values_by_type(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {t: [] for t in IDENTIFIER_TYPES}
        for ident in self.identifiers:
            out.setdefault(ident.type, []).append(ident.value)
        return out


@lru_cache(maxsize=1)
def identity_rules():
    """The identity rules of dbt_project.yml: var identity_blocklist and identity_blocklist_patterns."""
    from ..reference import IdentityRules

    try:
        return IdentityRules.from_dbt_project(dbt_project_dir() / "dbt_project.yml")
    except Exception:  # the project file is the source; fall back to the obvious ones
        return IdentityRules(blocklist=frozenset(["", "null", "none", "nil", "undefined", "anonymous", "unknown",
                                                  "n/a", "0"]))


def is_placeholder(ident: Identifier) -> bool:
    """A placeholder as dbt sees it (int_identity_nodes.is_blocklisted): a value of var identity_blocklist
    or a whole-value match of var identity_blocklist_patterns ('+33000000000', 'noreply@...', 'ffff-...')."""
    return identity_rules().is_blocklisted(ident.type, ident.value)


def _hubs(con: duckdb.DuckDBPyConnection) -> set[str]:
    if not table_exists(con, "int_identity_shared_identifiers"):
        return set()
    return {k for (k,) in con.execute("select node_key from int_identity_shared_identifiers").fetchall()}


def _values_for_hash(con: duckdb.DuckDBPyConnection, key: str, seed: Seed) -> set[Identifier]:
    """The normalised values whose keyed hash is the seed's (identity_map, landed events, dead letters)."""
    col = seed.type
    if col not in IDENTIFIER_TYPES:
        return set()
    found: set[str] = set()
    if table_exists(con, "identity_map"):
        found |= {v for (v,) in con.execute(
            "select distinct identifier_value from identity_map where identifier_type = ? "
            "and sha256(? || ':' || identifier_type || ':' || identifier_value) = ?", [col, key, seed.hash]).fetchall()}
    if table_exists(con, "landed_events"):
        found |= {v for (v,) in con.execute(
            f'select distinct "{col}" from landed_events where "{col}" is not null '
            f"and sha256(? || ':' || ? || ':' || \"{col}\") = ?", [key, col, seed.hash]).fetchall()}
    if not found and table_exists(con, "dead_letter"):
        for (raw,) in con.execute("select raw from dead_letter where raw is not null").fetchall():
            for ident in extract_identifiers(raw):
                if ident.type == col and ident.hash(key) == seed.hash:
                    found.add(ident.value)
    return {Identifier(col, v) for v in found}


def _lists(idents: Iterable[Identifier]) -> list[list[str]]:
    by_type: dict[str, list[str]] = {t: [] for t in IDENTIFIER_TYPES}
    for i in idents:
        by_type[i.type].append(i.value)
    return [by_type[t] for t in IDENTIFIER_TYPES]


_ANY_IDENTITY = " or ".join(f'list_contains(?::varchar[], "{c}")' for c in IDENTIFIER_TYPES)


def resolve_subject(con: duckdb.DuckDBPyConnection, key: str, seeds: list[Seed],
                    max_identifiers: int = DEFAULT_MAX_IDENTIFIERS) -> Subject:
    """Every identifier, person id and event id of the person a request names."""
    values: set[Identifier] = set()
    for seed in seeds:
        values |= {Identifier(seed.type, seed.value)} if seed.value is not None else _values_for_hash(con, key, seed)
    for ident in values:
        if is_placeholder(ident):
            raise ComplianceError(f"the {ident.type} given is a placeholder value (dbt vars identity_blocklist / "
                                  "identity_blocklist_patterns) "
                                  "shared by unrelated people: refusing to resolve it to a person")
    hubs = _hubs(con)
    for ident in values:
        if ident.node_key in hubs:
            raise ComplianceError(f"the {ident.type} given is an identity hub (int_identity_shared_identifiers) shared by many "
                                  "people: refusing to resolve it to a person")
    has_map = table_exists(con, "identity_map")
    has_landed = table_exists(con, "landed_events")
    notes: list[str] = []
    owner: dict[str, str] = {}  # node key -> person, for every identifier identity_map knows that we met

    def owners(idents: set[Identifier]) -> None:
        keys = [i.node_key for i in idents if i.node_key not in owner]
        if has_map and keys:
            owner.update({k: p for k, p in con.execute(
                "select identifier_type || ':' || identifier_value, person_id from identity_map "
                "where list_contains(?::varchar[], identifier_type || ':' || identifier_value)", [keys]).fetchall()})

    # 1. the person(s) identity_map (the identity graph's verdict) gives the named identifier(s), all of theirs
    owners(values)
    persons = {owner[i.node_key] for i in values if i.node_key in owner}
    identifiers: set[Identifier] = set(values)
    if persons:
        identifiers |= {Identifier(t, v) for t, v in con.execute(
            "select identifier_type, identifier_value from identity_map where list_contains(?::varchar[], person_id)",
            [sorted(persons)]).fetchall()}
    elif values:
        notes.append("the identifier is not in identity_map yet (landed since the last build, or never): only "
                     "records carrying it, and identifiers seen only with it, are covered")
    # 2. identifiers landed since the last build, seen only with theirs (never someone else's, never a placeholder)
    frontier = set(identifiers)
    while frontier and has_landed:
        new: set[Identifier] = set()
        for row in con.execute(f"select distinct {', '.join(IDENTIFIER_TYPES)} from landed_events "
                               f"where {_ANY_IDENTITY}", _lists(frontier)).fetchall():
            new |= {Identifier(t, v) for t, v in zip(IDENTIFIER_TYPES, row) if v is not None}
        new = {i for i in new if i not in identifiers and not is_placeholder(i) and i.node_key not in hubs}
        owners(new)
        others = {i for i in new if i.node_key in owner and owner[i.node_key] not in persons}
        if others:
            notes.append(f"{len(others)} identifier(s) seen with theirs belong to other persons in identity_map: "
                         "not followed")
        new = {i for i in new - others if i.node_key not in owner}
        identifiers |= new
        frontier = new
        if len(identifiers) > max_identifiers:
            raise ComplianceError(
                f"the identifier resolves to more than {max_identifiers} identifiers ({len(persons)} persons): "
                "that looks like a merge through a shared value, not one person; refusing (raise --max-identifiers "
                "after checking identity_map)")
    # only identifiers the warehouse actually holds (a seed nobody ever sent stays a seed)
    held = set(identifiers)
    if identifiers:
        held_keys: set[str] = set()
        if has_map:
            held_keys |= {k for (k,) in con.execute(
                "select identifier_type || ':' || identifier_value from identity_map "
                "where list_contains(?::varchar[], identifier_type || ':' || identifier_value)",
                [[i.node_key for i in identifiers]]).fetchall()}
        if has_landed:
            for row in con.execute(f"select distinct {', '.join(IDENTIFIER_TYPES)} from landed_events "
                                   f"where {_ANY_IDENTITY}", _lists(identifiers)).fetchall():
                held_keys |= {f"{t}:{v}" for t, v in zip(IDENTIFIER_TYPES, row) if v is not None}
        matcher = Matcher(identifiers)
        if table_exists(con, "dead_letter") and matcher.re2:
            for (raw,) in con.execute("select raw from dead_letter where regexp_matches(raw, ?)",
                                      [matcher.re2]).fetchall():
                if matcher.search(raw):
                    held_keys |= {i.node_key for i in identifiers if Matcher([i]).search(raw)}
        held = {i for i in identifiers if i.node_key in held_keys}
    events: set[str] = set()
    if has_landed and held:
        events |= {e for (e,) in con.execute(f"select distinct event_id from landed_events where {_ANY_IDENTITY}",
                                             _lists(held)).fetchall()}
    if persons and table_exists(con, "int_events"):
        events |= {e for (e,) in con.execute("select distinct event_id from int_events "
                                             "where list_contains(?::varchar[], person_id)", [sorted(persons)]).fetchall()}
    subject = Subject(seeds=list(seeds), identifiers=sorted(held, key=lambda i: (i.type, i.value)),
                      person_ids=sorted(persons), event_ids=sorted(events), notes=notes)
    log.info("subject resolved: %d identifiers, %d persons, %d events", len(subject.identifiers),
             len(subject.person_ids), len(subject.event_ids))
    return subject


# --- right of access ---------------------------------------------------------------------

def _section(con: duckdb.DuckDBPyConnection, table: str, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    return fetch_dicts(con, sql, params) if table_exists(con, table) else []


def dead_letters_of(con: duckdb.DuckDBPyConnection, matcher: Matcher) -> list[dict[str, Any]]:
    if not matcher.re2 or not table_exists(con, "dead_letter"):
        return []
    rows = fetch_dicts(con, 'select reason, topic, "partition", "offset", record_key, received_at, raw '
                            "from dead_letter where regexp_matches(raw, ?) order by received_at, topic, \"offset\"",
                       [matcher.re2])
    return [r for r in rows if matcher.search(r["raw"])]


def access_document(con: duckdb.DuckDBPyConnection, key: str, subject: Subject, request_id: str,
                    now: datetime | None = None) -> dict[str, Any]:
    """Everything omnivue holds on the person, as one JSON-ready document."""
    now = now or datetime.now(timezone.utc)
    persons, events = subject.person_ids, subject.event_ids
    node_keys = [i.node_key for i in subject.identifiers]
    identity_rows = _section(con, "identity_map",
                             "select identifier_type, identifier_value, person_id, first_seen_at, last_seen_at, n_events "
                             "from identity_map where list_contains(?::varchar[], identifier_type || ':' || "
                             "identifier_value) order by identifier_type, identifier_value", [node_keys])
    mapped = {(r["identifier_type"], r["identifier_value"]) for r in identity_rows}
    identifiers = identity_rows + [{"identifier_type": i.type, "identifier_value": i.value, "person_id": None,
                                    "note": "landed or dead-lettered since the last build; not yet in identity_map"}
                                   for i in subject.identifiers if (i.type, i.value) not in mapped]
    doc: dict[str, Any] = {
        "request": {"request_id": request_id, "kind": "access", "generated_at": now.isoformat(),
                    "identifiers_named": [{"type": s.type, "value": s.value, "hash": s.hash} for s in subject.seeds],
                    "controller": "omnivue (OMNIVUE_HOME warehouse and published snapshot)"},
        "person_ids": persons,
        "identifiers": identifiers,
        "derived_attributes": _section(con, "customer_360", "select * from customer_360 "
                                       "where list_contains(?::varchar[], person_id)", [persons]),
        "audience_membership": _section(con, "marketing_audience", "select * from marketing_audience where "
                                        "list_contains(?::varchar[], person_id) order by scope", [persons]),
        "consent_history": _section(con, "int_consent_history", "select * from int_consent_history where "
                                    "list_contains(?::varchar[], person_id) order by purpose, scope, sequence_number",
                                    [persons]),
        "consent_conflicts": _section(con, "consent_conflicts", "select * from consent_conflicts where "
                                      "list_contains(?::varchar[], person_id) order by purpose, scope, occurred_at",
                                      [persons]),
        "interactions": _section(con, "fct_interactions", "select * from fct_interactions where "
                                 "list_contains(?::varchar[], person_id) order by occurred_at, event_id", [persons]),
        "marketing_sends_audit": _section(con, "consent_audit", "select * from consent_audit where "
                                          "list_contains(?::varchar[], person_id) order by occurred_at", [persons]),
        "channel_engagement": _section(con, "channel_engagement", "select * from channel_engagement where "
                                       "list_contains(?::varchar[], person_id) order by channel", [persons]),
        "events": _section(con, "landed_events",
                           "select event_id, event_type, channel, occurred_at, source, "
                           + ", ".join(IDENTIFIER_TYPES) + ", properties, topic, received_at from ("
                           "select *, row_number() over (partition by event_id order by \"partition\", \"offset\") "
                           "as rn from landed_events where list_contains(?::varchar[], event_id)) where rn = 1 "
                           "order by occurred_at, event_id", [events]),
        "social_sentiment": _section(con, "social_sentiment", "select * from social_sentiment where "
                                     "list_contains(?::varchar[], event_id)", [events]),
        "dead_letters": dead_letters_of(con, subject.matcher),
        "consent_alerts": _section(con, "consent_alerts", "select event_id, person_id, run_id, alerted_at, alert "
                                   "from consent_alerts where list_contains(?::varchar[], person_id) "
                                   "order by alerted_at", [persons]),
    }
    for ev in doc["events"]:
        ev["identities"] = {t: ev.pop(t) for t in IDENTIFIER_TYPES if ev.get(t) is not None}
        for t in IDENTIFIER_TYPES:
            ev.pop(t, None)
    return doc


SECTIONS = ("identifiers", "derived_attributes", "audience_membership", "consent_history", "consent_conflicts",
            "interactions", "marketing_sends_audit", "channel_engagement", "events", "social_sentiment",
            "dead_letters", "consent_alerts")


def document_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """What an export holds (counts per section and a digest), for the request log: no values."""
    body = json.dumps(doc, sort_keys=True, default=str).encode()
    return {"sections": {s: len(doc.get(s) or []) for s in SECTIONS}, "persons": len(doc.get("person_ids") or []),
            "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}
