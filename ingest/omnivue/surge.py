"""E-reputation surge alerts, streaming: negative social posts per sliding
window of event time against a trailing baseline, one alert per surge.

``run_surge_detector`` consumes ``interactions.social`` with its own
consumer group, scores each public post with :mod:`omnivue.sentiment`, and
feeds a :class:`SurgeDetector`. A surge starts when the window (e.g. 1 hour)
holds at least ``min_count`` negative posts and at least ``ratio`` times the
baseline (mean of the ``baseline_windows`` windows before it). Its start
publishes ONE alert on the ``alerts`` topic; the detector stays quiet until
the surge ends (hysteresis: the window falls back to ``end_count`` or
``end_ratio`` x the baseline frozen at the start).

Event time, not arrival: records are released in event-time order through a
per-partition watermark (the smallest of the partitions' latest event times,
less ``allowed_lateness``; partitions that are caught up do not hold it
back), so a catch-up that reads one partition far ahead of another still
sees the traffic as it happened. A post arriving later than that is still
counted (it enters the windows it belongs to) but never raises an alert for
a window already past.

The state lives in memory. On start the detector re-reads the social topic
from the beginning (the baseline needs history) and the surge alerts already
on ``alerts``, so that a restart never repeats an alert for a surge it (or
another instance) already reported. Its group's Kafka offsets are committed
for lag tools only.

Who acts comes from ``config/alert_routing.yml``: customer_service when most
people concerned are known customers (looked up by keyed hash in the
published snapshot's identity_map and customer_360), otherwise the
communication team. See docs/social_listening.md.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import heapq
import itertools
import json
import logging
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, TextIO

from .config import PROJECT_DIR, Settings
from .envelope import ALERTS_TOPIC, TOPIC_BY_CHANNEL

log = logging.getLogger(__name__)

SOCIAL_TOPIC = TOPIC_BY_CHANNEL["social"]
ALERT_TYPE = "ereputation_surge"
DEFAULT_CONFIG_PATH = PROJECT_DIR / "config" / "alert_routing.yml"


# --- configuration ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SurgeConfig:
    window: timedelta = timedelta(hours=1)
    baseline_windows: int = 24
    ratio: float = 3.0
    min_count: int = 10
    end_ratio: float = 1.5
    end_count: int = 4
    warmup_windows: int = 1  # history (in windows) needed before the first alert: no baseline, no verdict
    event_types: tuple[str, ...] = ("social.mention", "social.comment")
    allowed_lateness: timedelta = timedelta(seconds=60)
    sample_posts: int = 5
    max_people_listed: int = 50
    consumer_group: str = "omnivue-surge"


@dataclass(frozen=True)
class Owner:
    team: str
    action: str
    channel: str | None = None


@dataclass(frozen=True)
class RoutingConfig:
    known_customer_share: float = 0.5
    owners: Mapping[str, Owner] = field(default_factory=lambda: {
        "customer_service": Owner("customer_service", "Answer the known customers directly and look for a common cause."),
        "communication": Owner("communication", "Prepare a public holding statement and monitor the thread."),
    })
    refresh_lookup_seconds: float = 300.0


@dataclass(frozen=True)
class AlertConfig:
    surge: SurgeConfig = SurgeConfig()
    routing: RoutingConfig = RoutingConfig()
    source: str | None = None  # the file it was read from


def load_config(path: str | Path | None = None, **surge_overrides: Any) -> AlertConfig:
    """Read config/alert_routing.yml (or ``path``); keyword arguments override
    the surge settings (``window=timedelta(...)``, ``min_count=...``)."""
    import yaml

    p = Path(path) if path else DEFAULT_CONFIG_PATH
    raw: dict[str, Any] = {}
    if p.exists():
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    elif path:
        raise FileNotFoundError(f"alert routing config not found: {p}")
    s = dict(raw.get("surge") or {})
    kwargs: dict[str, Any] = {}
    if "window_minutes" in s:
        kwargs["window"] = timedelta(minutes=float(s["window_minutes"]))
    if "allowed_lateness_seconds" in s:
        kwargs["allowed_lateness"] = timedelta(seconds=float(s["allowed_lateness_seconds"]))
    for name, cast in (("baseline_windows", int), ("ratio", float), ("min_count", int), ("end_ratio", float),
                       ("end_count", int), ("warmup_windows", int), ("sample_posts", int), ("max_people_listed", int),
                       ("consumer_group", str)):
        if name in s:
            kwargs[name] = cast(s[name])
    if "event_types" in s:
        kwargs["event_types"] = tuple(s["event_types"])
    kwargs.update(surge_overrides)
    surge = SurgeConfig(**kwargs)
    _check(surge)
    r = dict(raw.get("routing") or {})
    routing = RoutingConfig()
    owners = dict(routing.owners)
    for key, o in (r.get("owners") or {}).items():
        owners[key] = Owner(team=str(o.get("team", key)), action=" ".join(str(o.get("action", "")).split()),
                            channel=o.get("channel"))
    routing = RoutingConfig(known_customer_share=float(r.get("known_customer_share", routing.known_customer_share)),
                            owners=owners,
                            refresh_lookup_seconds=float(r.get("refresh_lookup_seconds",
                                                               routing.refresh_lookup_seconds)))
    return AlertConfig(surge, routing, str(p) if p.exists() else None)


def _check(c: SurgeConfig) -> None:
    if c.window <= timedelta(0):
        raise ValueError("surge window must be positive")
    if c.baseline_windows < 1 or c.min_count < 1 or c.ratio <= 0:
        raise ValueError("baseline_windows and min_count must be >= 1 and ratio > 0")
    if c.end_count >= c.min_count:
        raise ValueError("end_count must be below min_count (hysteresis)")


# --- who the people concerned are -------------------------------------------------------------

class CustomerLookup:
    """Social handle -> lifecycle stage (customer / prospect), from the
    analysts' published snapshot: identity_map holds the keyed hash of every
    identifier (sha256 of ``key:social_handle:platform:handle``) and
    customer_360 the person's lifecycle_stage. Unknown handles: 'unknown'."""

    def __init__(self, stages_by_hash: Mapping[str, str] | None = None, key: str = "") -> None:
        self.stages_by_hash = dict(stages_by_hash or {})
        self.key = key
        self.loaded_at = time.monotonic()

    @classmethod
    def from_snapshot(cls, settings: Settings) -> "CustomerLookup":
        import duckdb

        path = settings.published
        if not path.exists():
            log.info("no published snapshot at %s yet: every handle counts as unknown", path)
            return cls({}, settings.pseudonym_key)
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            log.warning("cannot read the published snapshot %s (%s): every handle counts as unknown", path, exc)
            return cls({}, settings.pseudonym_key)
        try:
            rows = con.execute(
                "select m.identifier_hash, c.lifecycle_stage from identity_map m "
                "join customer_360 c on c.person_id = m.person_id where m.identifier_type = 'social_handle'"
            ).fetchall()
        except duckdb.Error as exc:
            log.warning("published snapshot lacks identity_map/customer_360 (%s): every handle counts as unknown", exc)
            rows = []
        finally:
            con.close()
        return cls({h: s for h, s in rows}, settings.pseudonym_key)

    def hash_handle(self, handle: str) -> str:
        return hashlib.sha256(f"{self.key}:social_handle:{handle}".encode()).hexdigest()

    def stage(self, handle: str) -> str:
        return self.stages_by_hash.get(self.hash_handle(handle), "unknown")


def route(stages: Mapping[str, str], routing: RoutingConfig) -> tuple[str, dict[str, int]]:
    """(owner key, counts by stage) for the people concerned (handle -> stage)."""
    counts = Counter(stages.values())
    people = {k: counts.get(k, 0) for k in ("customer", "prospect", "unknown")}
    total = sum(people.values())
    owner = "customer_service" if total and people["customer"] / total >= routing.known_customer_share \
        else "communication"
    return owner, people


# --- the detector (pure, no Kafka) ---------------------------------------------------------------

@dataclass(frozen=True)
class Post:
    event_id: str
    occurred_at: datetime
    event_type: str
    handle: str | None
    platform: str | None
    text: str | None
    lang: str | None
    score: float
    label: str

    @property
    def negative(self) -> bool:
        return self.label == "negative"


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat()


class SurgeDetector:
    """Feed posts in event-time order (late ones are accepted); collect alerts."""

    def __init__(self, config: AlertConfig, lookup: CustomerLookup | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 already_alerted: Iterable[tuple[datetime, datetime]] = ()) -> None:
        self.config = config
        self.c = config.surge
        self.lookup = lookup or CustomerLookup()
        self.clock = clock
        self._neg_times: list[datetime] = []  # sorted
        self._neg_posts: deque[Post] = deque()  # in arrival order, pruned by time
        self._all_times: list[datetime] = []  # sorted, every counted post
        self.first_seen: datetime | None = None
        self.now: datetime | None = None  # event-time clock: the latest time processed
        self.active = False
        self.active_baseline = 0.0
        self.alerts: list[dict[str, Any]] = []
        self.suppressed = 0  # surges already alerted before a restart
        self.late = 0
        self.duplicates = 0
        self._seen: dict[str, datetime] = {}  # event_id -> time, for redelivered events
        self._previous = sorted(already_alerted)

    # -- counting --------------------------------------------------------------------------------
    @staticmethod
    def _count(times: list[datetime], lo: datetime, hi: datetime) -> int:
        """Number of times in (lo, hi]."""
        return bisect.bisect_right(times, hi) - bisect.bisect_right(times, lo)

    def window_count(self, at: datetime) -> int:
        return self._count(self._neg_times, at - self.c.window, at)

    def baseline(self, at: datetime) -> float:
        """Mean negative count of the baseline windows before the window ending at ``at``
        (only as many windows as there is history for)."""
        w = self.c.window
        start = at - w
        if self.first_seen is None or self.first_seen > start:
            return 0.0
        span = min(self.c.baseline_windows, max(1, int((start - self.first_seen) / w) + 1))
        return self._count(self._neg_times, start - span * w, start) / span

    def _prune(self) -> None:
        horizon = self.now - self.c.window * (self.c.baseline_windows + 2)
        for times in (self._neg_times, self._all_times):
            cut = bisect.bisect_right(times, horizon)
            if cut > 1000:  # amortised
                del times[:cut]
        while self._neg_posts and self._neg_posts[0].occurred_at < self.now - self.c.window * 2:
            self._neg_posts.popleft()
        if len(self._seen) > 200_000:
            self._seen = {e: t for e, t in self._seen.items() if t >= horizon}

    # -- feeding -----------------------------------------------------------------------------------
    def add(self, post: Post | None, at: datetime | None = None) -> dict[str, Any] | None:
        """Process one post (``None`` only advances the clock to ``at``); return the alert it raised."""
        t = post.occurred_at if post is not None else at
        if t is None:
            return None
        if post is not None:
            if post.event_id in self._seen:
                self.duplicates += 1
                return None
            self._seen[post.event_id] = t
        late = self.now is not None and t < self.now
        if post is not None and post.event_type in self.c.event_types:
            if self.first_seen is None or t < self.first_seen:
                self.first_seen = t
            bisect.insort(self._all_times, t)
            if post.negative:
                bisect.insort(self._neg_times, t)
                self._neg_posts.append(post)
        if late:
            self.late += 1
            return self._evaluate(self.now) if self.now - t < self.c.window else None
        self.now = t
        alert = self._evaluate(t)
        self._prune()
        return alert

    def _evaluate(self, at: datetime) -> dict[str, Any] | None:
        count = self.window_count(at)
        if self.active:
            if count <= max(self.c.end_count, self.c.end_ratio * self.active_baseline):
                self.active = False
                log.info("e-reputation surge ended at %s (%d negative posts in the window)", _iso(at), count)
            return None
        if self.first_seen is None or self.first_seen > at - self.c.window * (1 + self.c.warmup_windows):
            return None  # warming up: not enough history for a baseline yet
        base = self.baseline(at)
        if count >= self.c.min_count and count >= self.c.ratio * base:
            self.active = True
            self.active_baseline = base
            if self._seen_before(at):
                self.suppressed += 1
                log.info("surge at %s was already alerted (before a restart): not repeated", _iso(at))
                return None
            alert = self._alert(at, count, base)
            self.alerts.append(alert)
            return alert
        return None

    def _seen_before(self, at: datetime) -> bool:
        return any(abs(end - at) <= self.c.window for _start, end in self._previous)

    def _alert(self, at: datetime, count: int, base: float) -> dict[str, Any]:
        c = self.c
        start = at - c.window
        posts = [p for p in self._neg_posts if start < p.occurred_at <= at]
        handles = sorted({p.handle for p in posts if p.handle})
        stages = {h: self.lookup.stage(h) for h in handles}
        owner_key, people = route(stages, self.config.routing)
        owner = self.config.routing.owners.get(owner_key) or Owner(owner_key, "")
        samples = sorted(posts, key=lambda p: (p.score, p.occurred_at))[:c.sample_posts]
        total = self._count(self._all_times, start, at)
        ratio = (count / base) if base > 0 else None
        by_platform = Counter(p.platform or "unknown" for p in posts)
        by_lang = Counter(p.lang or "unknown" for p in posts)
        return {
            "type": ALERT_TYPE,
            "time": self.clock().isoformat(),
            "severity": "critical" if count >= 3 * c.min_count else "warning",
            "summary": (f"{count} negative social posts in {_minutes(c.window)} (window ending {_iso(at)}), "
                        f"baseline {base:.2f} per window" + (f", x{ratio:.1f}" if ratio else "")
                        + f"; {people['customer']} known customers, {people['prospect']} prospects, "
                        f"{people['unknown']} unknown; owner {owner.team}"),
            "window_start": _iso(start),
            "window_end": _iso(at),
            "window_minutes": _minutes_value(c.window),
            "negative_posts": count,
            "posts": total,
            "baseline": round(base, 3),
            "ratio": round(ratio, 2) if ratio is not None else None,
            "thresholds": {"ratio": c.ratio, "min_count": c.min_count, "baseline_windows": c.baseline_windows},
            "platforms": dict(by_platform.most_common()),
            "langs": dict(by_lang.most_common()),
            "sample_posts": [{"event_id": p.event_id, "handle": p.handle, "platform": p.platform,
                              "occurred_at": _iso(p.occurred_at), "lang": p.lang, "score": p.score,
                              "text": p.text} for p in samples],
            "people_concerned": handles[:c.max_people_listed],
            "people_concerned_count": len(handles),
            "people": people,
            "owner": owner.team,
            "notify": owner.channel,
            "action": owner.action,
        }


def _minutes_value(w: timedelta) -> float:
    m = w.total_seconds() / 60
    return int(m) if m == int(m) else round(m, 2)


def _minutes(w: timedelta) -> str:
    return f"{_minutes_value(w)} min"


# --- from Kafka records to posts ----------------------------------------------------------------------

def post_from_event(event: Mapping[str, Any], scorer: Callable[..., Any] | None = None) -> Post | None:
    """A scored Post from one envelope, or None when it is not a usable social event."""
    from .identifiers import normalize_handle
    from .sentiment import score

    etype = event.get("event_type")
    if not isinstance(etype, str) or not etype.startswith("social."):
        return None
    try:
        occurred = datetime.fromisoformat(str(event["occurred_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    if occurred.tzinfo is None:
        return None
    props = event.get("properties") if isinstance(event.get("properties"), dict) else {}
    if str(props.get("direction", "")).strip().lower() == "outbound":
        return None  # the brand's own messages
    ids = event.get("identities") if isinstance(event.get("identities"), dict) else {}
    handle = ids.get("social_handle")
    if isinstance(handle, str):
        try:
            handle = normalize_handle(handle)
        except ValueError:
            handle = handle.strip().lower() or None
    else:
        handle = None
    text = props.get("text") if isinstance(props.get("text"), str) else None
    platform = props.get("platform") or (handle.split(":", 1)[0] if handle else None) or event.get("source")
    s = (scorer or score)(text, props.get("lang"))
    return Post(event_id=str(event.get("event_id")), occurred_at=occurred, event_type=etype, handle=handle,
                platform=str(platform) if platform else None, text=text, lang=s.lang, score=s.score, label=s.label)


class _EventTimeOrder:
    """Release posts in event-time order: a per-partition watermark (the
    smallest latest-event-time among partitions still catching up, less the
    allowed lateness)."""

    def __init__(self, lateness: timedelta) -> None:
        self.lateness = lateness
        self.heap: list[tuple[datetime, int, Post | None]] = []
        self.latest: dict[Any, datetime] = {}
        self._seq = itertools.count()

    def push(self, partition: Any, post: Post) -> None:
        heapq.heappush(self.heap, (post.occurred_at, next(self._seq), post))
        if partition not in self.latest or post.occurred_at > self.latest[partition]:
            self.latest[partition] = post.occurred_at

    def release(self, behind: Iterable[Any] | None) -> list[Post]:
        """Pop what is safe to process. ``behind``: partitions still catching
        up (None: everything is caught up, release all)."""
        if behind is None:
            limit = None
        else:
            marks = [self.latest.get(p) for p in behind]
            if any(m is None for m in marks):
                return []  # a partition with data still to read has not shown its time yet
            limit = (min(marks) - self.lateness) if marks else None
        out = []
        while self.heap and (limit is None or self.heap[0][0] <= limit):
            out.append(heapq.heappop(self.heap)[2])
        return out

    def __len__(self) -> int:
        return len(self.heap)


# --- Kafka -------------------------------------------------------------------------------------------------

def _previous_alerts(settings: Settings, timeout_s: float = 10.0) -> list[tuple[datetime, datetime]]:
    out = []
    for alert in read_alerts(settings, from_beginning=True, follow=False, timeout_s=timeout_s):
        if alert.get("type") == ALERT_TYPE:
            try:
                out.append((datetime.fromisoformat(alert["window_start"]), datetime.fromisoformat(alert["window_end"])))
            except (KeyError, ValueError, TypeError):
                continue
    return out


def run_surge_detector(settings: Settings, until_caught_up: bool = False, max_seconds: float | None = None,
                       config: AlertConfig | str | Path | None = None, lookup: CustomerLookup | None = None,
                       publish: bool = True) -> list[dict[str, Any]]:
    """Consume interactions.social and publish one alert per surge on ``alerts``.

    ``until_caught_up``: stop once every partition is read to its end (for
    tests and backfills); otherwise follow until ``max_seconds`` (or forever).
    Returns the alerts raised (and published unless ``publish=False``)."""
    from kafka import ConsumerRebalanceListener
    from kafka.structs import OffsetAndMetadata

    from .kafka_io import make_consumer, make_producer

    cfg = config if isinstance(config, AlertConfig) else load_config(config)
    c = cfg.surge
    started = time.monotonic()
    refresh_lookup = lookup is None
    lookup = lookup or CustomerLookup.from_snapshot(settings)
    detector = SurgeDetector(cfg, lookup, already_alerted=_previous_alerts(settings) if publish else ())
    order = _EventTimeOrder(c.allowed_lateness)
    producer = None
    published: list[dict[str, Any]] = []
    consumer = make_consumer(settings, c.consumer_group, client_id="omnivue-surge")
    done: dict[Any, int] = {}  # next offset already fed to the detector, per partition

    class _Rewind(ConsumerRebalanceListener):
        """The baseline needs history: rebuild the state from the topic's
        beginning; after a rebalance, records already fed are skipped."""

        def on_partitions_revoked(self, revoked: Any) -> None:
            pass

        def on_partitions_assigned(self, assigned: Any) -> None:
            if assigned:
                consumer.seek_to_beginning(*assigned)

    consumer.subscribe([SOCIAL_TOPIC], listener=_Rewind())
    log.info("surge detector: group %r on %s, window %s, baseline %d windows, ratio %.1f, min %d",
             c.consumer_group, SOCIAL_TOPIC, _minutes(c.window), c.baseline_windows, c.ratio, c.min_count)

    def emit(alerts: list[dict[str, Any]]) -> None:
        nonlocal producer
        if not alerts:
            return
        for alert in alerts:
            log.warning("e-reputation surge: %s", alert["summary"])
        published.extend(alerts)
        if not publish:
            return
        if producer is None:
            producer = make_producer(settings, client_id="omnivue-surge")
        for alert in alerts:
            producer.send(ALERTS_TOPIC, key=ALERT_TYPE.encode(), value=json.dumps(alert, ensure_ascii=False).encode())
        producer.flush(timeout=30)

    def process(posts: list[Post]) -> None:
        raised = [a for a in (detector.add(p) for p in posts) if a]
        emit(raised)

    def behind() -> list[Any] | None:
        pending = []
        for tp in consumer.assignment():
            hw = consumer.highwater(tp)
            if hw is None or consumer.position(tp) < hw:
                pending.append(tp)
        return pending or None

    last_refresh = time.monotonic()
    try:
        while True:
            polled = consumer.poll(timeout_ms=300, max_records=5000)
            got = 0
            for tp, records in polled.items():
                for record in records:
                    got += 1
                    if record.offset < done.get(tp, 0):
                        continue  # fed before a rebalance rewound the partition
                    done[tp] = record.offset + 1
                    try:
                        event = json.loads(record.value)
                    except (TypeError, ValueError):
                        continue
                    if not isinstance(event, dict):
                        continue
                    post = post_from_event(event)
                    if post is not None:
                        order.push(tp, post)
            pending: list[Any] | None = []
            if consumer.assignment():
                pending = behind()
                process(order.release(pending))
            if polled:
                try:
                    consumer.commit({tp: OffsetAndMetadata(consumer.position(tp), "", -1) for tp in polled})
                except Exception as exc:  # informational only
                    log.debug("surge offset commit failed (harmless): %s", exc)
            if until_caught_up and not got and pending is None and not len(order) and _all_assigned(consumer):
                break
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                if until_caught_up:
                    raise TimeoutError(f"surge detector did not catch up within {max_seconds:.0f}s")
                break
            if refresh_lookup and time.monotonic() - last_refresh > cfg.routing.refresh_lookup_seconds:
                detector.lookup = CustomerLookup.from_snapshot(settings)
                last_refresh = time.monotonic()
        process(order.release(None))
    finally:
        try:
            consumer.close(autocommit=False)
        except Exception:
            pass
        if producer is not None:
            producer.close(timeout=10)
    log.info("surge detector done: %d alerts (%d already alerted before), %d late posts, %.1fs",
             len(published), detector.suppressed, detector.late, time.monotonic() - started)
    return published


def _all_assigned(consumer: Any) -> bool:
    from kafka import TopicPartition

    parts = consumer.partitions_for_topic(SOCIAL_TOPIC)
    if not parts:
        return True
    return all(TopicPartition(SOCIAL_TOPIC, p) in consumer.assignment() for p in parts)


# --- reading the alerts topic -----------------------------------------------------------------------

def read_alerts(settings: Settings, from_beginning: bool = True, follow: bool = False, limit: int | None = None,
                timeout_s: float = 10.0, on_alert: Callable[[dict[str, Any]], None] | None = None
                ) -> list[dict[str, Any]]:
    """The alerts on the ``alerts`` topic (no consumer group: nothing is committed)."""
    from kafka import TopicPartition

    from .kafka_io import make_consumer

    consumer = make_consumer(settings, None, client_id="omnivue-alerts-reader", enable_auto_commit=False)
    out: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout_s
        parts = consumer.partitions_for_topic(ALERTS_TOPIC)
        while parts is None and time.monotonic() < deadline:
            consumer.topics()  # refresh metadata
            parts = consumer.partitions_for_topic(ALERTS_TOPIC)
            if parts is None:
                time.sleep(0.2)
        if not parts:
            return out
        tps = [TopicPartition(ALERTS_TOPIC, p) for p in sorted(parts)]
        consumer.assign(tps)
        if from_beginning:
            consumer.seek_to_beginning(*tps)
        else:
            consumer.seek_to_end(*tps)
        end = consumer.end_offsets(tps)
        while True:
            polled = consumer.poll(timeout_ms=300)
            for records in polled.values():
                for record in records:
                    try:
                        alert = json.loads(record.value)
                    except (TypeError, ValueError):
                        alert = {"type": "unreadable", "raw": repr(record.value)[:500]}
                    if not isinstance(alert, dict):
                        alert = {"type": "unreadable", "raw": repr(alert)[:500]}
                    out.append(alert)
                    if on_alert:
                        on_alert(alert)
                    if limit is not None and len(out) >= limit:
                        return out
            if not follow and all(consumer.position(tp) >= end[tp] for tp in tps):
                return out
            if not follow and time.monotonic() > deadline + 60:
                return out
    finally:
        consumer.close(autocommit=False)


def format_alert(alert: Mapping[str, Any]) -> str:
    """A readable rendering of one alert (any type)."""
    kind = alert.get("type", "?")
    head = f"{alert.get('time', '?')}  {kind}  [{alert.get('severity', '-')}]  owner: {alert.get('owner', '-')}"
    lines = [head, "  " + str(alert.get('summary') or alert.get('raw') or json.dumps(alert, ensure_ascii=False)[:300])]
    if kind == ALERT_TYPE:
        lines.append(f"  window {alert.get('window_start')} .. {alert.get('window_end')}: "
                     f"{alert.get('negative_posts')} negative of {alert.get('posts')} posts, "
                     f"baseline {alert.get('baseline')}")
        people = alert.get("people") or {}
        concerned = alert.get("people_concerned") or []
        more = (alert.get("people_concerned_count") or len(concerned)) - len(concerned)
        lines.append(f"  people: {people.get('customer', 0)} customers, {people.get('prospect', 0)} prospects, "
                     f"{people.get('unknown', 0)} unknown: " + ", ".join(concerned[:10])
                     + (f" (+{len(concerned) - 10 + more} more)" if len(concerned) > 10 or more > 0 else ""))
        for post in alert.get("sample_posts") or []:
            text = " ".join(str(post.get("text") or "").split())
            lines.append(f"    {post.get('score', 0):+.2f}  {post.get('handle') or '?'}: {text[:140]}  "
                         f"({post.get('event_id')})")
        if alert.get("action"):
            lines.append(f"  action ({alert.get('notify') or alert.get('owner')}): {alert['action']}")
    elif alert.get("action"):
        lines.append(f"  action: {alert['action']}")
    return "\n".join(lines)


def tail_alerts(settings: Settings, follow: bool = False, from_beginning: bool = True, limit: int | None = None,
                out: TextIO | None = None, as_json: bool = False) -> list[dict[str, Any]]:
    """Print the alerts on ``alerts`` readably (``omnivue alerts tail``); return them."""
    stream = out or sys.stdout

    def show(alert: dict[str, Any]) -> None:
        stream.write((json.dumps(alert, ensure_ascii=False) if as_json else format_alert(alert)) + "\n")
        stream.flush()

    alerts = read_alerts(settings, from_beginning=from_beginning, follow=follow, limit=limit, on_alert=show)
    if not alerts and not as_json:
        stream.write("no alerts\n")
    return alerts


# --- command line (wired by cli.py) --------------------------------------------------------------------

def add_tail_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``omnivue alerts tail``."""
    parser.description = ("Print the alerts on the `alerts` topic readably: consent violations and e-reputation "
                          "surges, with their evidence and who should act.")
    parser.add_argument("-f", "--follow", action="store_true", help="keep waiting for new alerts")
    parser.add_argument("--new", action="store_true", help="only alerts published from now on (implies --follow)")
    parser.add_argument("-n", "--limit", type=int, default=None, help="stop after this many alerts")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(func=run_tail_command)
    return parser


def run_tail_command(args: argparse.Namespace) -> int:
    from .config import load_settings

    settings = load_settings()
    follow = bool(args.follow or args.new)
    tail_alerts(settings, follow=follow, from_beginning=not args.new, limit=args.limit, as_json=args.json)
    return 0


def add_watch_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``omnivue alerts watch``."""
    parser.description = ("Watch interactions.social for e-reputation surges: negative posts per sliding window "
                          "of event time against a trailing baseline; one alert per surge on `alerts`. "
                          "Settings and routing: config/alert_routing.yml.")
    parser.add_argument("--config", default=None, help=f"routing/threshold file (default {DEFAULT_CONFIG_PATH})")
    parser.add_argument("--until-caught-up", action="store_true", help="stop once the topic is read to its end")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--window-minutes", type=float, default=None, help="override the window")
    parser.add_argument("--min-count", type=int, default=None, help="override the minimum negative count")
    parser.add_argument("--ratio", type=float, default=None, help="override the ratio to the baseline")
    parser.add_argument("--dry-run", action="store_true", help="print the alerts, do not publish them")
    parser.set_defaults(func=run_watch_command)
    return parser


def run_watch_command(args: argparse.Namespace) -> int:
    from .config import load_settings

    settings = load_settings()
    overrides: dict[str, Any] = {}
    if args.window_minutes is not None:
        overrides["window"] = timedelta(minutes=args.window_minutes)
    if args.min_count is not None:
        overrides["min_count"] = args.min_count
    if args.ratio is not None:
        overrides["ratio"] = args.ratio
    try:
        cfg = load_config(args.config, **overrides)
    except (OSError, ValueError, TypeError) as exc:
        print(f"omnivue: error: {exc}", file=sys.stderr)
        return 2
    alerts = run_surge_detector(settings, until_caught_up=args.until_caught_up, max_seconds=args.max_seconds,
                                config=cfg, publish=not args.dry_run)
    for alert in alerts:
        print(format_alert(alert))
    print(f"{len(alerts)} e-reputation surge alert(s)" + (" (dry run: not published)" if args.dry_run else ""))
    return 0


def add_alerts_command(subparsers: Any) -> argparse.ArgumentParser:
    """The whole ``omnivue alerts {tail,watch}`` group, for cli.build_parser."""
    p = subparsers.add_parser("alerts", help="read the alerts topic, or watch social posts for e-reputation surges",
                              description="Alerts: `tail` prints the alerts topic, `watch` runs the streaming "
                              "e-reputation surge detector.")
    sub = p.add_subparsers(dest="alerts_command", metavar="ACTION", parser_class=type(p))
    sub.required = True
    add_tail_arguments(sub.add_parser("tail", help="print the alerts readably"))
    add_watch_arguments(sub.add_parser("watch", help="stream interactions.social and alert on negative surges"))
    return p
