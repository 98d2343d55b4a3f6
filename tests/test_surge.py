"""E-reputation surge alerts: the detector's rules in isolation, then the
streaming detector against the real local broker (a planted crisis raises
exactly one alert; calm traffic raises none; a restart repeats nothing)."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from omnivue.config import load_settings
from omnivue.crisis import CRISIS_TEXTS, apply_crisis, plant_crisis
from omnivue.sentiment import score
from omnivue.simulator import Simulation, publish
from omnivue.surge import (ALERT_TYPE, AlertConfig, CustomerLookup, Post, SurgeConfig, SurgeDetector,
                           _EventTimeOrder, format_alert, load_config, post_from_event, read_alerts, route,
                           run_surge_detector, tail_alerts)

T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def _post(i: int, at: datetime, negative: bool = True, handle: str | None = None) -> Post:
    return Post(event_id=f"e{i}", occurred_at=at, event_type="social.mention",
                handle=handle or f"twitter:user{i}", platform="twitter", text="nul" if negative else "top",
                lang="fr", score=-0.5 if negative else 0.5, label="negative" if negative else "positive")


def _config(**kw) -> AlertConfig:
    return AlertConfig(surge=SurgeConfig(**{"window": HOUR, "baseline_windows": 24, "ratio": 3.0,
                                            "min_count": 10, "end_count": 4, **kw}))


def _burst(start: datetime, n: int, minutes: float, first_id: int) -> list[Post]:
    return [_post(first_id + k, start + timedelta(minutes=minutes * k / n)) for k in range(n)]


def test_detector_alerts_once_per_surge_with_hysteresis():
    posts = [_post(i, T0 + i * HOUR) for i in range(30)]  # one negative post an hour: the baseline
    posts += [_post(1000 + i, T0 + i * HOUR + timedelta(minutes=30), negative=False) for i in range(30)]
    posts += _burst(T0 + 30 * HOUR, 60, 120, 2000)  # a 2-hour storm: one surge, one alert
    posts += [_post(3000 + i, T0 + (33 + i) * HOUR) for i in range(5)]  # back to calm: the surge ends
    posts += _burst(T0 + 40 * HOUR, 15, 20, 4000)  # a second, separate surge
    detector = SurgeDetector(_config())
    alerts = [a for a in (detector.add(p) for p in sorted(posts, key=lambda p: p.occurred_at)) if a]
    assert len(alerts) == 2
    first, second = alerts
    assert first["type"] == ALERT_TYPE and first["negative_posts"] == 10
    assert datetime.fromisoformat(first["window_end"]) - (T0 + 30 * HOUR) < timedelta(minutes=25)
    assert 0.5 <= first["baseline"] <= 1.5
    assert datetime.fromisoformat(second["window_end"]) >= T0 + 40 * HOUR
    assert len(first["sample_posts"]) == 5 and all(s["event_id"].startswith("e2") for s in first["sample_posts"])
    assert first["owner"] == "communication" and first["people"]["unknown"] == first["people_concerned_count"]


def test_detector_ratio_guard_and_duplicates():
    # a busy brand: 12 negative posts an hour is normal; 14 in an hour is no surge (ratio 3)
    posts = [_post(h * 100 + k, T0 + h * HOUR + timedelta(minutes=5 * k)) for h in range(30) for k in range(12)]
    posts += [_post(9000 + k, T0 + 30 * HOUR + timedelta(minutes=4 * k)) for k in range(14)]
    detector = SurgeDetector(_config())
    assert not [a for a in (detector.add(p) for p in posts) if a]
    # nor does a fresh detector alert before it has a window of history (no baseline yet)
    cold = SurgeDetector(_config())
    assert not [a for a in (cold.add(p) for p in _burst(T0, 30, 30, 0)) if a]
    # the same event delivered twice counts once
    d2 = SurgeDetector(_config(min_count=3, end_count=1))
    twice = [_post(1, T0), _post(1, T0), _post(2, T0 + timedelta(minutes=1)), _post(2, T0 + timedelta(minutes=1))]
    assert not [a for a in (d2.add(p) for p in twice) if a]
    assert d2.duplicates == 2 and d2.window_count(T0 + timedelta(minutes=2)) == 2


def test_detector_does_not_repeat_an_alert_known_from_before_a_restart():
    burst = [_post(1000 + i, T0 + i * HOUR, negative=False) for i in range(30)] + _burst(T0 + 30 * HOUR, 20, 20, 0)
    first = SurgeDetector(_config())
    alerts = [a for a in (first.add(p) for p in burst) if a]
    assert len(alerts) == 1
    previous = [(datetime.fromisoformat(alerts[0]["window_start"]), datetime.fromisoformat(alerts[0]["window_end"]))]
    again = SurgeDetector(_config(), already_alerted=previous)
    assert not [a for a in (again.add(p) for p in burst) if a] and again.suppressed == 1


def test_event_time_order_waits_for_the_partition_behind():
    order = _EventTimeOrder(timedelta(seconds=0))
    for k in range(5):
        order.push("p0", _post(k, T0 + k * HOUR))
    order.push("p1", _post(10, T0 + timedelta(minutes=30)))
    released = order.release(["p1"])  # p1 still has data to read: only up to its time
    assert [p.event_id for p in released] == ["e0", "e10"]
    order.push("p1", _post(11, T0 + 2 * HOUR + timedelta(minutes=30)))
    assert [p.event_id for p in order.release(["p1"])] == ["e1", "e2", "e11"]
    assert [p.event_id for p in order.release(None)] == ["e3", "e4"]
    assert order.release(["p2"]) == []  # a partition that has shown nothing yet holds everything


def test_routing_uses_the_snapshot_hashes():
    lookup = CustomerLookup(key="k")
    lookup.stages_by_hash = {lookup.hash_handle("twitter:ann"): "customer", lookup.hash_handle("twitter:bob"): "customer",
                             lookup.hash_handle("twitter:cid"): "prospect"}
    routing = _config().routing
    stages = {h: lookup.stage(h) for h in ("twitter:ann", "twitter:bob", "twitter:cid", "twitter:dan")}
    assert stages["twitter:dan"] == "unknown"
    assert route(stages, routing) == ("customer_service", {"customer": 2, "prospect": 1, "unknown": 1})
    assert route({"x:a": "customer", "x:b": "unknown", "x:c": "unknown"}, routing)[0] == "communication"
    cfg = load_config()  # the repository's config/alert_routing.yml
    assert cfg.source and cfg.surge.min_count > cfg.surge.end_count
    assert {"customer_service", "communication"} <= set(cfg.routing.owners)


def test_plant_crisis_adds_a_sorted_burst_of_negative_mentions():
    result = Simulation(20, 2, seed=5, end=T0).build()
    start = T0 - 3 * HOUR
    records, truth = plant_crisis(result.records, start, timedelta(minutes=30), 25, seed=1)
    crisis = truth["crisis"]
    assert len(records) == len(result.records) + 25 == len(result.records) + crisis["n_posts"]
    assert [r.publish_at for r in records] == sorted(r.publish_at for r in records)
    planted = [r.event for r in records if r.event and r.event["event_id"] in set(crisis["event_ids"])]
    assert len(planted) == 25 and len(crisis["handles"]) >= 15
    for ev in planted:
        assert start <= datetime.fromisoformat(ev["occurred_at"]) <= start + timedelta(minutes=30)
        assert post_from_event(ev).label == "negative"
    assert all(score(t, lang).label == "negative" for lang, texts in CRISIS_TEXTS.items() for t in texts)
    whole = apply_crisis(result, start=start, n_posts=25, seed=1)
    assert whole.truth["valid_events"] == result.truth["valid_events"] + 25
    assert all(f"social_handle:{h}" in whole.truth["identifiers"] for h in whole.truth["crisis"]["handles"])


def test_cli_wiring_parses_tail_and_watch():
    import argparse

    from omnivue.surge import add_alerts_command, run_tail_command, run_watch_command

    parser = argparse.ArgumentParser(prog="omnivue")
    add_alerts_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["alerts", "watch", "--until-caught-up", "--window-minutes", "30", "--dry-run"])
    assert args.func is run_watch_command and args.until_caught_up and args.window_minutes == 30 and args.dry_run
    args = parser.parse_args(["alerts", "tail", "-f", "-n", "3"])
    assert args.func is run_tail_command and args.follow and args.limit == 3


# --- against the real local broker ---------------------------------------------------------------------

def test_planted_crisis_raises_exactly_one_alert(broker):
    settings = load_settings()
    end = datetime.now(timezone.utc).replace(microsecond=0)
    start = end - 3 * HOUR
    result = apply_crisis(Simulation(60, 2, seed=3, end=end).build(), start=start,
                          duration=timedelta(minutes=30), n_posts=40, seed=9)
    publish(settings, result, progress=False)
    cfg = load_config()  # window 60 min, min 10, ratio 3

    alerts = run_surge_detector(settings, until_caught_up=True, max_seconds=90, config=cfg)

    assert len(alerts) == 1
    on_topic = [a for a in read_alerts(settings) if a.get("type") == ALERT_TYPE]
    assert len(on_topic) == 1
    alert = on_topic[0]
    window_end = datetime.fromisoformat(alert["window_end"])
    assert start < window_end <= start + cfg.surge.window  # raised within the window after the start
    crisis = result.truth["crisis"]
    assert alert["negative_posts"] >= cfg.surge.min_count
    assert {s["event_id"] for s in alert["sample_posts"]} <= set(crisis["event_ids"])
    assert set(alert["people_concerned"]) <= set(crisis["handles"])
    assert alert["owner"] == "communication"  # unknown people posting in public
    json.dumps(alert)  # plain JSON

    # a restart re-reads the topic but does not repeat the alert
    assert run_surge_detector(settings, until_caught_up=True, max_seconds=90, config=cfg) == []
    assert len([a for a in read_alerts(settings) if a.get("type") == ALERT_TYPE]) == 1

    out = io.StringIO()
    tail_alerts(settings, out=out)
    assert ALERT_TYPE in out.getvalue() and "communication" in out.getvalue()
    assert format_alert(alert).count("\n") >= 4


def test_calm_traffic_raises_no_alert(broker):
    settings = load_settings()
    result = Simulation(250, 3, seed=21).build()
    negatives = sum(1 for r in result.records if r.event and r.event["event_type"] in ("social.mention", "social.comment")
                    and score(r.event["properties"].get("text"), r.event["properties"].get("lang")).label == "negative")
    assert negatives >= 20  # the calm period does have complaints, just no burst
    publish(settings, result, progress=False)

    assert run_surge_detector(settings, until_caught_up=True, max_seconds=90) == []
    assert [a for a in read_alerts(settings) if a.get("type") == ALERT_TYPE] == []
