"""Reference implementation of DESIGN.md's identity and consent rules, in
plain Python, over canonical events.

It is the oracle the simulator's ground truth and the tests are computed
with; the production implementation is the dbt project (SQL). Keeping the
two independent is what makes "the warehouse equals the truth" a real test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
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
    """Connected components of the identity graph without over-merge guards
    (node -> smallest node of its component); :func:`resolve_identities`
    applies the guards of the dbt project."""
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
        person = person_of(ev)
        if person is None:  # attributed to nobody (placeholder or shared identifiers only): grants nothing
            continue
        props = ev["properties"]
        scopes = CHANNEL_SCOPES if props["scope"] == "all" else (props["scope"],)
        status = "granted" if ev["event_type"] == "consent.granted" else "withdrawn"
        for scope in scopes:
            out.setdefault(person, []).append(
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
        person = person_of(ev)  # None: an unattributed send never has consent
        rec = None if person is None else consent_at(records.get(person, []), event_time(ev), "marketing",
                                                     MARKETING_SEND_SCOPE[ev["event_type"]])
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


# -- identity resolution with the over-merge guards (docs/identity.md) ----------------------

@dataclass(frozen=True)
class IdentityRules:
    """The identity rules of the dbt project's vars (dbt_project.yml)."""

    priority: tuple[str, ...] = ("customer_id", "email", "phone", "social_handle", "device_id", "anonymous_id")
    max_per_person: Mapping[str, int | None] = field(default_factory=lambda: {
        "customer_id": 1, "email": 3, "phone": 3, "social_handle": 5, "device_id": 10, "anonymous_id": 100})
    blocklist: frozenset[str] = frozenset()
    blocklist_patterns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    hub_threshold: int = 20
    hub_max_neighbours: int = 200

    @classmethod
    def from_dbt_project(cls, path: Path | str) -> "IdentityRules":
        import yaml

        v = yaml.safe_load(Path(path).read_text())["vars"]
        return cls(priority=tuple(v["identity_priority"]), max_per_person=dict(v["identity_max_per_person"]),
                   blocklist=frozenset(str(b).lower() for b in v.get("identity_blocklist", [])),
                   blocklist_patterns={k: tuple(p) for k, p in (v.get("identity_blocklist_patterns") or {}).items()},
                   hub_threshold=int(v["identity_hub_threshold"]), hub_max_neighbours=int(v["identity_hub_max_neighbours"]))

    def rank(self, kind: str) -> int:
        return self.priority.index(kind) + 1 if kind in self.priority else len(self.priority) + 1

    def is_blocklisted(self, kind: str, value: str) -> bool:
        v = value.strip().lower()
        handle = v.split(":", 1)[1].strip() if kind == "social_handle" and ":" in v else None
        if v in self.blocklist or (handle is not None and handle in self.blocklist):
            return True
        patterns = list(self.blocklist_patterns.get("*", ())) + list(self.blocklist_patterns.get(kind, ()))
        if not patterns:
            return False
        combined = re.compile("(" + ")|(".join(patterns) + ")")
        subject = (v.split(":", 1)[1] if ":" in v else "") if kind == "social_handle" else v
        return combined.fullmatch(subject) is not None


@dataclass
class IdentityResolution:
    persons: dict[str, str]  # attributed node key -> person key (its group's smallest node key)
    blocklisted: set[str]
    shared: dict[str, str]  # node key -> 'shared' / 'hub'
    rejected: list[tuple[str, str, str]]  # (node_key_a, node_key_b, over-limit type)
    event_person: dict[str, str | None]  # event_id -> person key (None: no attributed identifier)


def resolve_identities(events: Iterable[Event], rules: IdentityRules | None = None) -> IdentityResolution:
    """DESIGN.md's identity rule with the dbt project's over-merge guards, in
    plain Python (the oracle of the SQL/Python models):

    1. identifiers co-occurring in an event are linked (every pair);
    2. placeholders (blocklist, patterns) are nobody's and link nothing;
    3. an identifier seen with more values of a stronger type than one person
       may hold, or a hub, is shared: nobody's, links nothing;
    4. connected components of the rest; in a component holding more values
       of a type than one person may, links are applied in event-time order
       (first linking event, then strongest pair, then keys) and a link that
       would break a limit is rejected;
    5. an event belongs to the person of its strongest attributed identifier.
    """
    rules = rules or IdentityRules()
    evs = unique_events(events)
    kind_of: dict[str, str] = {}
    event_nodes: dict[str, list[str]] = {}
    first_link: dict[tuple[str, str], tuple[datetime, str]] = {}
    blocklisted: set[str] = set()
    for ev in evs:
        eid = str(ev["event_id"]).lower()
        keys = node_keys(ev)
        event_nodes[eid] = keys
        usable = []
        for k in keys:
            kind, value = k.split(":", 1)
            kind_of[k] = kind
            if rules.is_blocklisted(kind, value):
                blocklisted.add(k)
            else:
                usable.append(k)
        at = (event_time(ev), eid)
        for i, a in enumerate(usable):
            for b in usable[i + 1:]:
                pair = (min(a, b), max(a, b))
                if pair not in first_link or at < first_link[pair]:
                    first_link[pair] = at
    neighbours: dict[str, dict[str, int]] = {}
    for a, b in first_link:
        neighbours.setdefault(a, {}).setdefault(kind_of[b], 0)
        neighbours[a][kind_of[b]] += 1
        neighbours.setdefault(b, {}).setdefault(kind_of[a], 0)
        neighbours[b][kind_of[a]] += 1
    strong = ("customer_id", "email", "phone", "social_handle")
    shared: dict[str, str] = {}
    for node, counts in neighbours.items():
        if (max((n for t, n in counts.items() if t in strong), default=0) > rules.hub_threshold
                or sum(counts.values()) > rules.hub_max_neighbours):
            shared[node] = "hub"
        elif any(rules.rank(t) < rules.rank(kind_of[node]) and rules.max_per_person.get(t) is not None
                 and n > rules.max_per_person[t] for t, n in counts.items()):
            shared[node] = "shared"
    nodes = {k for k in kind_of if k not in blocklisted and k not in shared}
    edges = sorted(((at, eid, min(rules.rank(kind_of[a]), rules.rank(kind_of[b])),
                     max(rules.rank(kind_of[a]), rules.rank(kind_of[b])), a, b)
                    for (a, b), (at, eid) in first_link.items() if a in nodes and b in nodes))

    def components(links: Iterable[tuple[str, str]]) -> dict[str, str]:
        parent = {n: n for n in nodes}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for a, b in links:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        return {n: find(n) for n in nodes}

    raw = components((a, b) for *_, a, b in edges)
    members: dict[str, list[str]] = {}
    for n, root in raw.items():
        members.setdefault(root, []).append(n)
    violating = {root for root, ms in members.items()
                 if any(rules.max_per_person.get(t) is not None and sum(kind_of[m] == t for m in ms) > rules.max_per_person[t]
                        for t in {kind_of[m] for m in ms})}
    rejected: list[tuple[str, str, str]] = []
    if violating:
        parent = {n: n for n in nodes if raw[n] in violating}
        counts = {n: {kind_of[n]: 1} for n in parent}

        def find2(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for *_, a, b in edges:
            if raw[a] not in violating:
                continue
            ra, rb = find2(a), find2(b)
            if ra == rb:
                continue
            over = [t for t in set(counts[ra]) | set(counts[rb]) if rules.max_per_person.get(t) is not None
                    and counts[ra].get(t, 0) + counts[rb].get(t, 0) > rules.max_per_person[t]]
            if over:
                rejected.append((a, b, min(over, key=rules.rank)))
                continue
            parent[rb] = ra
            for t, n in counts.pop(rb).items():
                counts[ra][t] = counts[ra].get(t, 0) + n
    cut = {(a, b) for a, b, _ in rejected}
    persons = components((a, b) for *_, a, b in edges if (a, b) not in cut)
    event_person: dict[str, str | None] = {}
    for eid, keys in event_nodes.items():
        attributed = sorted((rules.rank(kind_of[k]), k) for k in keys if k in persons)
        event_person[eid] = persons[attributed[0][1]] if attributed else None
    return IdentityResolution(persons, blocklisted, shared, rejected, event_person)


def same_person_pairs(mapping: dict[str, str]) -> set[tuple[str, str]]:
    """identifier -> group  ==>  the unordered pairs of identifiers in one group."""
    groups: dict[str, list[str]] = {}
    for identifier, group in mapping.items():
        groups.setdefault(group, []).append(identifier)
    pairs = set()
    for members in groups.values():
        members.sort()
        pairs.update((a, b) for i, a in enumerate(members) for b in members[i + 1:])
    return pairs


def pairwise_scores(mine: dict[str, str], truth: dict[str, str]) -> tuple[float, float]:
    """Pairwise precision and recall of "same person" of ``mine`` against ``truth``
    (identifier -> person), over the identifiers both know; an identifier of the
    truth that ``mine`` lost counts as a missed pair for each of its partners."""
    common = set(mine) & set(truth)
    predicted = same_person_pairs({k: mine[k] for k in common})
    actual = same_person_pairs(truth)
    hits = len(predicted & actual)
    precision = hits / len(predicted) if predicted else 1.0
    recall = hits / len(actual) if actual else 1.0
    return precision, recall
