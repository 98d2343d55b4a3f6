"""Reference implementation of DESIGN.md's identity and consent rules, in
plain Python, over canonical events.

It is the oracle the simulator's ground truth and the tests are computed
with; the production implementation is the dbt project (SQL). Keeping the
two independent is what makes "the warehouse equals the truth" a real test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping

from .envelope import CHANNEL_SCOPES, MARKETING_SEND_SCOPE, is_marketing_send
from .identifiers import normalize_identities

Event = Mapping[str, Any]


def node_keys(event: Event) -> list[str]:
    """The event's normalised identifiers as ``type:value`` keys."""
    return [f"{k}:{v}" for k, v in sorted(normalize_identities(dict(event["identities"])).items())]


def event_time(event: Event) -> datetime:
    return datetime.fromisoformat(str(event["occurred_at"]).replace("z", "Z"))


def resolve_persons(events: Iterable[Event], blocklist: Iterable[str] = ()) -> dict[str, str]:
    """Connected components of the identity graph: node -> smallest node of its component."""
    parent: dict[str, str] = {}
    blocked = {b.lower() for b in blocklist}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for ev in events:
        keys = [k for k in node_keys(ev) if k.split(":", 1)[1].lower() not in blocked]
        for k in keys:
            parent.setdefault(k, k)
        for other in keys[1:]:
            a, b = find(keys[0]), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {k: find(k) for k in parent}


@dataclass(frozen=True)
class ConsentRecord:
    event_id: str
    occurred_at: datetime
    status: str  # granted / withdrawn
    purpose: str
    scope: str  # expanded: never 'all'


def consent_records(events: Iterable[Event], person_of: Callable[[Event], str]) -> dict[str, list[ConsentRecord]]:
    """Consent events per person, 'all' expanded to every channel scope."""
    out: dict[str, list[ConsentRecord]] = {}
    for ev in events:
        if ev["channel"] != "consent":
            continue
        props = ev["properties"]
        scopes = CHANNEL_SCOPES if props["scope"] == "all" else (props["scope"],)
        status = "granted" if ev["event_type"] == "consent.granted" else "withdrawn"
        for scope in scopes:
            out.setdefault(person_of(ev), []).append(
                ConsentRecord(ev["event_id"], event_time(ev), status, props["purpose"], scope))
    return out


def consent_at(records: Iterable[ConsentRecord], at: datetime | None, purpose: str, scope: str) -> ConsentRecord | None:
    """The consent record in force at ``at`` (None = now): the latest event at
    or before it; at the same instant a withdrawal beats a grant."""
    best: ConsentRecord | None = None
    for r in records:
        if r.purpose != purpose or r.scope != scope or (at is not None and r.occurred_at > at):
            continue
        if best is None or (r.occurred_at, r.status == "withdrawn") > (best.occurred_at, best.status == "withdrawn"):
            best = r
    return best


def unique_events(events: Iterable[Event]) -> list[Event]:
    """First copy of every event_id."""
    seen: dict[str, Event] = {}
    for ev in events:
        seen.setdefault(str(ev["event_id"]).lower(), ev)
    return list(seen.values())


def marketing_violations(events: Iterable[Event], person_of: Callable[[Event], str]) -> dict[str, bool]:
    """event_id -> consent_ok for every marketing send."""
    evs = unique_events(events)
    records = consent_records(evs, person_of)
    result: dict[str, bool] = {}
    for ev in evs:
        if not is_marketing_send(ev):
            continue
        rec = consent_at(records.get(person_of(ev), []), event_time(ev), "marketing", MARKETING_SEND_SCOPE[ev["event_type"]])
        result[str(ev["event_id"]).lower()] = rec is not None and rec.status == "granted"
    return result


def marketing_audience(events: Iterable[Event], person_of: Callable[[Event], str]) -> set[tuple[str, str]]:
    """(person, scope) pairs whose latest marketing consent is a grant."""
    records = consent_records(unique_events(events), person_of)
    out = set()
    for person, recs in records.items():
        for scope in CHANNEL_SCOPES:
            rec = consent_at(recs, None, "marketing", scope)
            if rec is not None and rec.status == "granted":
                out.add((person, scope))
    return out
