"""Simulator: realistic multi-channel traffic for N people over D days, and
the ground truth beside it.

People reveal identifiers gradually (anonymous app use, later a login; a
social handle linked later to the email), grant and withdraw consent, get
marketing sends (some of which break consent), buy, and talk about the brand.
A small share of records is malformed and some valid ones are delivered
twice; some events arrive late (published after events that happened later).

Identity traps are planted too, the ones that make naive identity
resolution merge different people (docs/identity.md): family tablets (one
device_id used by two or three customers, each logged in with their own
customer_id), shops' generic emails typed in at checkout for many customers,
junk sign-up emails (test@test.com, noreply@...), and the all-zero device id
some phones report. The truth says they belong to nobody
(``unattributed_identifiers``) and that the people who used them are still
different people.

The truth file (identifier -> person, the marketing sends that break
consent, the bad records, the duplicates, the current audience) is computed
from the valid events only, with :mod:`omnivue.reference`.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .config import Settings
from .envelope import encode, make_event, partition_key, topic_for
from .identifiers import default_region
from .kafka_io import make_producer
from .progress import Progress
from .reference import marketing_audience, marketing_violations, node_keys

log = logging.getLogger(__name__)

FIRST = ["jeanne", "louis", "camille", "hugo", "lea", "arthur", "chloe", "jules", "emma", "noah", "alice",
         "leo", "sarah", "tom", "ines", "paul", "olivia", "liam", "zoe", "adam", "mia", "ethan", "nina", "sam"]
LAST = ["martin", "bernard", "dubois", "thomas", "robert", "richard", "petit", "durand", "leroy", "moreau",
        "smith", "jones", "brown", "taylor", "wilson", "garcia", "muller", "rossi", "kim", "nguyen"]
DOMAINS = ["example.com", "mail.example.org", "exemple.fr", "example.net"]
TZS = [timezone.utc, timezone(timedelta(hours=1)), timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))]
SCREENS = ["home", "catalog", "product", "cart", "checkout", "account", "stores"]
TEXTS = {
    "positive": [("en", "Love the new collection, great quality!"), ("fr", "J'adore la nouvelle collection, super qualité !"),
                 ("en", "Fast delivery and friendly support, thank you"), ("fr", "Livraison rapide et service client au top, merci")],
    "neutral": [("en", "Does the store open on Sunday?"), ("fr", "Le magasin est ouvert dimanche ?"),
                ("en", "Saw your ad today"), ("fr", "Vu votre pub aujourd'hui")],
    "negative": [("en", "Terrible service, my order never arrived"), ("fr", "Service nul, ma commande n'est jamais arrivée"),
                 ("en", "Worst app update ever, it keeps crashing"), ("fr", "Très déçu, produit cassé à la livraison")],
}
#: The device id some phones report when tracking is limited: a placeholder, nobody's.
PLACEHOLDER_DEVICE_ID = "00000000-0000-0000-0000-000000000000"
#: Generic emails of the brand's shops, typed in at the till when a customer has none at hand.
SHOP_EMAILS = ["boutique.paris@shops.example.com", "magasin.lyon@shops.example.com"]
#: Junk addresses people type in at sign-up.
JUNK_EMAILS = ["test@test.com", "noreply@example.org", "no-reply@shops.example.com"]
BAD_KINDS = ["not_json", "missing_event_id", "channel_mismatch", "naive_timestamp", "empty_identities",
             "consent_without_purpose", "unknown_event_type", "wrong_schema_version", "wrong_topic", "bad_email"]


@dataclass
class Person:
    truth_id: str
    kind: str  # customer / prospect / social_only
    ids: dict[str, str] = field(default_factory=dict)  # identity type -> canonical raw value


@dataclass
class Record:
    publish_at: datetime  # arrival order
    topic: str
    key: bytes | None
    value: bytes
    event: dict[str, Any] | None  # None for a malformed record


@dataclass
class SimulationResult:
    records: list[Record]
    truth: dict[str, Any]


class Simulation:
    def __init__(self, people: int, days: int, seed: int = 42, end: datetime | None = None,
                 bad_rate: float = 0.02, dup_rate: float = 0.03, late_rate: float = 0.05) -> None:
        if people < 1 or days < 1:
            raise ValueError("people and days must be at least 1")
        self.rng = random.Random(seed)
        self.people_n, self.days, self.seed = people, days, seed
        self.end = (end or datetime.now(timezone.utc)).replace(microsecond=0)
        self.start = self.end - timedelta(days=days)
        self.bad_rate, self.dup_rate, self.late_rate = bad_rate, dup_rate, late_rate
        self.events: list[tuple[dict[str, Any], Person]] = []
        self.people: list[Person] = []
        #: planted trap identifiers (node keys) -> why they belong to nobody
        self.unattributed: dict[str, str] = {}

    # -- helpers ----------------------------------------------------------------------
    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _time(self, lo: datetime, hi: datetime | None = None) -> datetime:
        hi = hi or self.end
        span = max(1, int((hi - lo).total_seconds()))
        return lo + timedelta(seconds=self.rng.randrange(span))

    def _emit(self, person: Person, event_type: str, at: datetime, identities: dict[str, str],
              properties: dict[str, Any] | None = None, source: str = "app") -> dict[str, Any]:
        shown = {k: self._variant(k, v) for k, v in identities.items()}
        ev = make_event(event_type, at.astimezone(self.rng.choice(TZS)), source, shown, properties, self._uuid())
        self.events.append((ev, person))
        return ev

    def _variant(self, kind: str, value: str) -> str:
        """How a provider might spell an identifier: case, spaces, phone formats."""
        r = self.rng.random()
        if kind == "email":
            return value.upper() if r < 0.1 else (f"  {value.title()} " if r < 0.2 else value)
        if kind == "phone":  # value is +33 6...
            digits = value[3:]
            if r < 0.3:
                return "0" + " ".join([digits[0]] + [digits[i:i + 2] for i in range(1, len(digits), 2)])
            return f"+33 {digits[0]} {digits[1:]}" if r < 0.5 else value
        if kind == "social_handle":
            platform, handle = value.split(":", 1)
            return f"{platform}:@{handle.capitalize()}" if r < 0.3 else value
        return value

    # -- people -----------------------------------------------------------------------
    def _make_person(self, i: int) -> Person:
        r = self.rng.random()
        kind = "customer" if r < 0.45 else ("prospect" if r < 0.85 else "social_only")
        p = Person(truth_id=f"person-{i:06d}", kind=kind)
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        platform = self.rng.choice(["twitter", "instagram", "facebook"])
        if kind != "social_only":
            p.ids["email"] = f"{first}.{last}{i}@{self.rng.choice(DOMAINS)}"
        if kind == "customer":
            p.ids["customer_id"] = f"C{i:07d}"
            if self.rng.random() < 0.5:
                p.ids["phone"] = f"+336{i:08d}"
        if kind == "social_only" or self.rng.random() < 0.4:
            p.ids["social_handle"] = f"{platform}:{first}{last}{i}"
        if kind != "social_only" and self.rng.random() < (0.7 if kind == "customer" else 0.3):
            # a few phones report the all-zero placeholder instead of a device id
            p.ids["device_id"] = PLACEHOLDER_DEVICE_ID if self.rng.random() < 0.03 else self._uuid()
            p.ids["anonymous_id"] = f"anon-{self._uuid()}"
        return p

    def _journey(self, p: Person) -> None:
        rng = self.rng
        t0 = self._time(self.start, self.start + (self.end - self.start) / 2)
        login_key = {"customer_id": p.ids["customer_id"]} if "customer_id" in p.ids else (
            {"email": p.ids["email"]} if "email" in p.ids else {})
        # email signup: the customer account ties customer_id and email together
        if p.kind == "customer":
            self._emit(p, "identity.linked", t0, {"customer_id": p.ids["customer_id"], "email": p.ids["email"]},
                       source="web_signup")
            if "phone" in p.ids:
                self._emit(p, "identity.linked", self._time(t0), {"customer_id": p.ids["customer_id"],
                                                                  "phone": p.ids["phone"]}, source="crm")
        # mobile: anonymous use, then a login links the device to the person
        if "device_id" in p.ids:
            anon = {"device_id": p.ids["device_id"], "anonymous_id": p.ids["anonymous_id"]}
            self._emit(p, "mobile.app_installed", t0, anon, {"platform": rng.choice(["ios", "android"])},
                       source=rng.choice(["ios_app", "android_app"]))
            login_at = self._time(t0)
            for _ in range(rng.randint(1, 4)):
                self._emit(p, rng.choice(["mobile.app_opened", "mobile.screen_viewed"]), self._time(t0, login_at),
                           anon, {"screen": rng.choice(SCREENS)}, source="ios_app")
            self._emit(p, "identity.linked", login_at, {**anon, **login_key}, source="ios_app")
            known = {"device_id": p.ids["device_id"], **login_key}
            for _ in range(rng.randint(1, 6)):
                self._emit(p, "mobile.screen_viewed", self._time(login_at), known, {"screen": rng.choice(SCREENS)},
                           source="ios_app")
            if p.kind == "customer":
                for _ in range(rng.randint(0, 3)):
                    self._emit(p, "mobile.purchase", self._time(login_at), known,
                               {"order_id": self._uuid(), "amount": round(rng.uniform(5, 250), 2), "currency": "EUR"},
                               source="ios_app")
            push_ident = {"device_id": p.ids["device_id"]}
            if p.ids["device_id"] == PLACEHOLDER_DEVICE_ID:  # the push token is tied to the app install
                push_ident["anonymous_id"] = p.ids["anonymous_id"]
            self._consent_and_sends(p, "push", push_ident, login_at)
        # email
        if "email" in p.ids:
            self._consent_and_sends(p, "email", {"email": p.ids["email"]}, t0)
        if "phone" in p.ids and rng.random() < 0.5:
            self._emit(p, "consent.granted", self._time(t0), {"phone": p.ids["phone"]},
                       {"purpose": "marketing", "scope": "sms"}, source="crm")
        # social: public talk, later linked to the email when the person logs in with it
        if "social_handle" in p.ids:
            handle = {"social_handle": p.ids["social_handle"]}
            platform = p.ids["social_handle"].split(":")[0]
            for _ in range(rng.randint(1, 5)):
                label = rng.choices(["positive", "neutral", "negative"], [0.4, 0.35, 0.25])[0]
                lang, text = rng.choice(TEXTS[label])
                self._emit(p, rng.choice(["social.mention", "social.comment", "social.reaction", "social.follow"]),
                           self._time(t0), handle, {"text": text, "lang": lang, "platform": platform,
                                                    "post_id": str(rng.getrandbits(48))}, source=platform)
            if "email" in p.ids:
                self._emit(p, "identity.linked", self._time(t0), {**handle, "email": p.ids["email"]},
                           source=f"{platform}_login")
            if rng.random() < 0.3:
                self._emit(p, "social.direct_message", self._time(t0), handle,
                           {"direction": "inbound", "text": "Bonjour, une question sur ma commande", "platform": platform},
                           source=platform)
            if p.kind != "social_only":
                self._consent_and_sends(p, "social", handle, t0)

    def _consent_and_sends(self, p: Person, scope: str, ident: dict[str, str], since: datetime) -> None:
        """Consent history for one scope and the marketing sends to it; a few
        sends deliberately ignore consent (the planted violations)."""
        rng = self.rng
        granted_at = withdrawn_at = None
        if rng.random() < 0.7:
            granted_at = self._time(since)
            consent_scope = "all" if (scope == "email" and rng.random() < 0.3) else scope
            self._emit(p, "consent.granted", granted_at, ident, {"purpose": "marketing", "scope": consent_scope},
                       source="preference_center")
            if rng.random() < 0.3:
                withdrawn_at = self._time(granted_at)
                self._emit(p, "consent.withdrawn", withdrawn_at, ident, {"purpose": "marketing", "scope": scope},
                           source="preference_center")
            if rng.random() < 0.2:
                other = rng.choice(["profiling", "analytics"])
                self._emit(p, "consent.granted", self._time(since), ident, {"purpose": other, "scope": "all"},
                           source="preference_center")
        send_type = {"email": "email.sent", "push": "mobile.push_sent", "social": "social.direct_message"}[scope]
        sends = rng.randint(0, 4) if granted_at is not None else int(rng.random() < 0.15)
        for _ in range(sends):
            planted = granted_at is None or rng.random() < 0.05
            if not planted:
                at = self._time(granted_at, withdrawn_at or self.end)  # inside the consent window
            else:
                at = self._time(since)  # ignores consent: a violation unless it happens to fall inside
            props: dict[str, Any] = {"campaign_id": f"cmp-{rng.randint(1, 40):03d}"}
            if scope == "social":
                props |= {"direction": "outbound", "text": "Profitez de -20% cette semaine", "platform":
                          ident["social_handle"].split(":")[0]}
            source = {"email": "sendgrid", "push": "braze", "social": ident.get("social_handle", "x:").split(":")[0]}[scope]
            self._emit(p, send_type, at, ident, props, source=source)
            if scope == "email":
                for follow, prob in (("email.delivered", 0.95), ("email.opened", 0.5), ("email.clicked", 0.2)):
                    if rng.random() < prob:
                        at = at + timedelta(minutes=rng.randint(1, 600))
                        self._emit(p, follow, min(at, self.end), ident, {"campaign_id": props["campaign_id"]},
                                   source="sendgrid")
            elif scope == "push" and rng.random() < 0.3:
                self._emit(p, "mobile.push_opened", min(at + timedelta(minutes=5), self.end), ident,
                           {"campaign_id": props["campaign_id"]}, source="braze")

    # -- identity traps -----------------------------------------------------------------
    def _plant_traps(self) -> None:
        """Identifiers several customers use: each such event also carries the
        customer's own customer_id, so it is theirs; the trap identifier is nobody's."""
        rng = self.rng
        customers = [p for p in self.people if p.kind == "customer"]
        if len(customers) < 2:
            return
        pool = customers[:]
        rng.shuffle(pool)
        # family tablets: 2-3 customers each log in with their own account
        for _ in range(max(1, len(customers) // 40)):
            size = min(len(pool), rng.choice([2, 3]))
            if size < 2:
                break
            family, pool = pool[:size], pool[size:]
            tablet = f"tablet-{self._uuid()}"
            self.unattributed[f"device_id:{tablet}"] = "shared"
            for member in family:
                ids = {"device_id": tablet, "customer_id": member.ids["customer_id"]}
                login_at = self._time(self.start)
                self._emit(member, "identity.linked", login_at, ids, source="android_app")
                for _ in range(rng.randint(1, 3)):
                    self._emit(member, "mobile.screen_viewed", self._time(login_at), ids,
                               {"screen": rng.choice(SCREENS)}, source="android_app")
                if rng.random() < 0.5:
                    self._emit(member, "mobile.purchase", self._time(login_at), ids,
                               {"order_id": self._uuid(), "amount": round(rng.uniform(5, 250), 2),
                                "currency": "EUR"}, source="android_app")
        # shops' generic emails at the till: each used for several customers
        for shop_email in SHOP_EMAILS:
            users = rng.sample(customers, min(len(customers), max(2, len(customers) // 50)))
            self.unattributed[f"email:{shop_email}"] = "shared"
            for member in users:
                self._emit(member, "mobile.purchase", self._time(self.start),
                           {"customer_id": member.ids["customer_id"], "email": shop_email},
                           {"order_id": self._uuid(), "amount": round(rng.uniform(5, 250), 2), "currency": "EUR"},
                           source="pos")
        # junk sign-up emails
        for member in rng.sample(customers, min(len(customers), max(1, len(customers) // 100))):
            junk = rng.choice(JUNK_EMAILS)
            self.unattributed[f"email:{junk}"] = "placeholder"
            self._emit(member, "identity.linked", self._time(self.start),
                       {"customer_id": member.ids["customer_id"], "email": junk}, source="web_checkout")
        if any(p.ids.get("device_id") == PLACEHOLDER_DEVICE_ID for p in self.people):
            self.unattributed[f"device_id:{PLACEHOLDER_DEVICE_ID}"] = "placeholder"

    # -- malformed records --------------------------------------------------------------
    def _malformed(self, ev: dict[str, Any], kind: str) -> tuple[str, bytes]:
        topic = topic_for(ev["event_type"])
        bad = json.loads(json.dumps(ev))
        bad["event_id"] = self._uuid()
        if kind == "not_json":
            return topic, encode(bad)[:-7]
        if kind == "missing_event_id":
            del bad["event_id"]
        elif kind == "channel_mismatch":
            bad["channel"] = "email" if bad["channel"] != "email" else "social"
        elif kind == "naive_timestamp":
            bad["occurred_at"] = bad["occurred_at"][:19]
        elif kind == "empty_identities":
            bad["identities"] = {}
        elif kind == "consent_without_purpose":
            bad.update(event_type="consent.granted", channel="consent", properties={"scope": "email"})
            topic = "consent"
        elif kind == "unknown_event_type":
            bad["event_type"] = f"{bad['channel']}.teleported"
        elif kind == "wrong_schema_version":
            bad["schema_version"] = 2
        elif kind == "wrong_topic":
            topic = "identity" if topic != "identity" else "consent"
        elif kind == "bad_email":
            bad["identities"] = {"email": "not-an-email"}
        return topic, encode(bad)

    # -- all together -----------------------------------------------------------------
    def build(self) -> SimulationResult:
        for i in range(self.people_n):
            p = self._make_person(i)
            self.people.append(p)
            self._journey(p)
        self._plant_traps()
        rng = self.rng
        records: list[Record] = []
        for ev, _ in self.events:
            at = datetime.fromisoformat(ev["occurred_at"])
            if rng.random() < self.late_rate:  # arrives late, after events that happened later
                at = at + timedelta(hours=rng.randint(6, 24 * 7))
            value = encode(ev)
            rec = Record(at, topic_for(ev["event_type"]), partition_key(ev["identities"]), value, ev)
            records.append(rec)
            if rng.random() < self.dup_rate:  # delivered twice
                records.append(Record(at + timedelta(seconds=rng.randint(1, 3600)), rec.topic, rec.key, value, ev))
        bad: list[dict[str, Any]] = []
        n_bad = max(1, round(len(self.events) * self.bad_rate)) if self.bad_rate > 0 else 0
        for j in range(n_bad):
            ev, _ = rng.choice(self.events)
            kind = BAD_KINDS[j % len(BAD_KINDS)]
            topic, value = self._malformed(ev, kind)
            records.append(Record(datetime.fromisoformat(ev["occurred_at"]), topic, None, value, None))
            bad.append({"kind": kind, "topic": topic, "raw": value.decode("utf-8")})
        records.sort(key=lambda r: r.publish_at)
        return SimulationResult(records, self._truth(records, bad))

    def _truth(self, records: list[Record], bad: list[dict[str, Any]]) -> dict[str, Any]:
        person_of_event = {ev["event_id"]: p.truth_id for ev, p in self.events}
        identifiers: dict[str, str] = {}
        for ev, p in self.events:
            for key in node_keys(ev):
                if key not in self.unattributed:
                    identifiers[key] = p.truth_id
        valid = [ev for ev, _ in self.events]
        consent_ok = marketing_violations(valid, lambda e: person_of_event[e["event_id"]])
        audience = marketing_audience(valid, lambda e: person_of_event[e["event_id"]])
        seen: set[str] = set()
        duplicates = []
        for r in records:
            if r.event is None:
                continue
            if r.event["event_id"] in seen:
                duplicates.append(r.event["event_id"])
            seen.add(r.event["event_id"])
        return {
            "seed": self.seed, "people": self.people_n, "days": self.days,
            "start": self.start.isoformat(), "end": self.end.isoformat(),
            "records_published": len(records),
            "valid_events": len(self.events),
            "persons": len({p.truth_id for _, p in self.events}),
            "identifiers": identifiers,
            # planted traps: identifiers that belong to nobody ('shared' by several people,
            # or a 'placeholder'); the events carrying them belong to their other identifiers
            "unattributed_identifiers": dict(sorted(self.unattributed.items())),
            "marketing_sends": len(consent_ok),
            "violations": sorted(eid for eid, ok in consent_ok.items() if not ok),
            "audience": sorted([p, s] for p, s in audience),
            "duplicates": duplicates,
            "bad_records": bad,
            "normalisation": {"default_phone_region": default_region()},
        }


def publish(settings: Settings, result: SimulationResult, progress: bool = True) -> int:
    """Publish the records in arrival order; return how many were sent."""
    producer = make_producer(settings)
    failures: list[BaseException] = []
    try:
        with Progress("simulate: publish", total=len(result.records), unit="records", enabled=progress) as bar:
            for i, rec in enumerate(result.records):
                producer.send(rec.topic, key=rec.key, value=rec.value).add_errback(failures.append)
                if i % 1000 == 999:
                    bar.advance(1000)
            producer.flush(timeout=120)
            bar.advance(len(result.records) % 1000)
    finally:
        producer.close(timeout=30)
    if failures:
        raise RuntimeError(f"{len(failures)} records could not be published: {failures[0]}")
    return len(result.records)


def write_truth(path: Path, truth: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(truth, indent=1, ensure_ascii=False))
    tmp.replace(path)


def land(warehouse: Path, records: list[Record], received_at: datetime | None = None,
         batch_seconds: float = 3600.0, partitions: int = 3) -> int:
    """Land simulated records straight into the warehouse's landing tables,
    without a broker: each record goes through ingest's own validation and
    landing code (:class:`omnivue.ingester.Batch`, :func:`insert_batch`), with
    Kafka coordinates made up the way a broker would (partition by key, offsets
    in arrival order, continuing those already landed). ``received_at`` None:
    records are landed in batches of ``batch_seconds`` of their arrival time
    (``publish_at``), each batch received at its last arrival, like an ingester
    following the stream. For tests and benchmarks; returns the records landed
    or dead-lettered."""
    import zlib
    from collections import Counter

    from .config import load_settings
    from .ingester import Batch, insert_batch
    from .warehouse import ensure_landing, session

    keep_raw = load_settings().keep_raw

    ensure_landing(warehouse)
    with session(warehouse) as con:
        next_offset = {(t, p): o + 1 for t, p, o in con.execute(
            'select topic, "partition", max("offset") from landed_events group by 1, 2 union all '
            'select topic, "partition", max("offset") from dead_letter group by 1, 2').fetchall()}

        def flush(batch: Batch, at: datetime) -> None:
            landed, dead = batch.tables()
            con.begin()
            insert_batch(con, landed, dead, at, keep_raw)
            con.commit()

        batch, batch_start, last_at = Batch(), None, None
        reasons: Counter = Counter()
        for rec in sorted(records, key=lambda r: r.publish_at):
            at = received_at or rec.publish_at
            if batch.count and received_at is None and (at - batch_start).total_seconds() >= batch_seconds:
                flush(batch, last_at)
                batch = Batch()
            if not batch.count:
                batch_start = at
            last_at = at
            partition = zlib.crc32(rec.key) % partitions if rec.key else 0
            offset = next_offset.get((rec.topic, partition), 0)
            next_offset[(rec.topic, partition)] = offset + 1
            batch.add_raw(rec.topic, partition, offset, rec.key, rec.value,
                          int(rec.publish_at.timestamp() * 1000), reasons)
        if batch.count:
            flush(batch, last_at)
    return len(records)
