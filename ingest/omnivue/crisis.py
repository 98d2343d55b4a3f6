"""Plant an e-reputation crisis in simulated traffic: a burst of negative
public posts (social.mention) about the brand from many handles, starting
at a given instant. The surge detector (omnivue.surge) must raise one alert
for it; the truth records where it is.

``plant_crisis(records, start, duration, n_posts, seed, lang_mix)`` works on
the simulator's records (``Simulation.build().records``) and returns the new
record list (sorted by arrival) and the truth additions;
``apply_crisis(result, ...)`` does the same on a whole ``SimulationResult``
and keeps its truth consistent (events, persons, identifiers).
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from .envelope import encode, make_event, partition_key, topic_for
from .reference import node_keys
from .simulator import Record, SimulationResult

#: Negative posts of a crisis (a faulty product, an outage, a bad answer going viral).
CRISIS_TEXTS: dict[str, tuple[str, ...]] = {
    "fr": (
        "Honteux, mon produit a pris feu en charge et personne ne répond",
        "Scandaleux ce rappel produit, service client injoignable",
        "Arnaque totale, commande jamais reçue et aucun remboursement",
        "Très déçu, l'appli ne marche plus depuis ce matin",
        "Inadmissible, on nous ment sur ce défaut depuis des semaines",
        "Je suis furieux, produit dangereux et aucune excuse",
        "Catastrophique, plus jamais je n'achète chez vous",
        "C'est une honte, boycott de cette marque",
        "Nul, le SAV me raccroche au nez, lamentable",
        "Franchement dégoûté par votre mépris des clients",
    ),
    "en": (
        "Terrible service, my charger caught fire and nobody answers",
        "Disgusting how you ignore this product recall, awful support",
        "Total scam, order never arrived and no refund",
        "So angry, the app has been broken all day",
        "Worst brand ever, you lied about this defect for weeks",
        "Furious, dangerous product and not even an apology",
        "Horrible experience, never buying from you again",
        "Shameful, boycott this brand",
        "Useless support hung up on me, pathetic",
        "Really disappointed by how badly you treat customers",
    ),
}
FIRST = ("alex", "sam", "charlie", "morgan", "max", "robin", "dominique", "camille", "jo", "lou", "eden", "nour")


def plant_crisis(records: list[Record], start: datetime, duration: timedelta = timedelta(minutes=30),
                 n_posts: int = 40, seed: int = 0, lang_mix: Mapping[str, float] | None = None,
                 platforms: Mapping[str, float] | None = None, repeat_share: float = 0.1
                 ) -> tuple[list[Record], dict[str, Any]]:
    """Add ``n_posts`` negative social.mention events between ``start`` and
    ``start + duration`` from about ``n_posts`` distinct handles (a share
    ``repeat_share`` of the posts come from handles that already posted in
    the burst). Returns (records sorted by arrival, truth additions)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if n_posts < 1 or duration <= timedelta(0):
        raise ValueError("n_posts must be >= 1 and duration positive")
    rng = random.Random(seed)
    mix = dict(lang_mix or {"fr": 0.5, "en": 0.5})
    unknown = set(mix) - set(CRISIS_TEXTS)
    if unknown:
        raise ValueError(f"no crisis texts for language(s) {sorted(unknown)}; known: {sorted(CRISIS_TEXTS)}")
    plats = dict(platforms or {"twitter": 0.6, "instagram": 0.2, "facebook": 0.2})
    span = duration.total_seconds()
    times = sorted(start + timedelta(seconds=rng.uniform(0, span)) for _ in range(n_posts))
    handles: list[str] = []
    events: list[dict[str, Any]] = []
    new: list[Record] = []
    for i, at in enumerate(times):
        if handles and rng.random() < repeat_share:
            handle = rng.choice(handles)
        else:
            platform = rng.choices(list(plats), list(plats.values()))[0]
            handle = f"{platform}:{rng.choice(FIRST)}_{uuid.UUID(int=rng.getrandbits(128)).hex[:8]}"
            handles.append(handle)
        platform = handle.split(":", 1)[0]
        lang = rng.choices(list(mix), list(mix.values()))[0]
        text = rng.choice(CRISIS_TEXTS[lang])
        ev = make_event("social.mention", at.astimezone(timezone.utc), platform, {"social_handle": handle},
                        {"text": text, "lang": lang, "platform": platform, "post_id": str(rng.getrandbits(48))},
                        event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        events.append(ev)
        new.append(Record(at, topic_for(ev["event_type"]), partition_key(ev["identities"]), encode(ev), ev))
    merged = sorted([*records, *new], key=lambda r: r.publish_at)
    end = start + duration
    truth = {
        "crisis": {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "n_posts": n_posts,
            "handles": sorted(handles),
            "event_ids": [e["event_id"] for e in events],
            "langs": {lang: sum(1 for e in events if e["properties"]["lang"] == lang) for lang in mix},
        }
    }
    return merged, truth


def apply_crisis(result: SimulationResult, start: datetime | None = None,
                 duration: timedelta = timedelta(minutes=30), n_posts: int = 40, seed: int = 0,
                 lang_mix: Mapping[str, float] | None = None) -> SimulationResult:
    """Plant a crisis in a whole simulation and keep its truth consistent:
    ``crisis`` added, ``valid_events``/``records_published``/``persons``
    counted, and each crisis handle recorded as a person of its own in
    ``identifiers``. ``start`` defaults to 2 hours before the simulation end."""
    truth = dict(result.truth)
    end = datetime.fromisoformat(truth["end"]) if "end" in truth else datetime.now(timezone.utc)
    start = start or (end - timedelta(hours=2))
    records, extra = plant_crisis(result.records, start, duration, n_posts, seed, lang_mix)
    crisis = extra["crisis"]
    new_events = [r.event for r in records if r.event is not None and r.event["event_id"] in set(crisis["event_ids"])]
    identifiers = dict(truth.get("identifiers") or {})
    for i, handle in enumerate(crisis["handles"]):
        for key in node_keys({"identities": {"social_handle": handle}}):
            identifiers.setdefault(key, f"crisis-person-{i:06d}")
    truth.update(extra)
    truth["identifiers"] = identifiers
    truth["valid_events"] = truth.get("valid_events", 0) + len(new_events)
    truth["records_published"] = len(records)
    truth["persons"] = truth.get("persons", 0) + len(crisis["handles"])
    return SimulationResult(records, truth)
