"""Sentiment of social texts: accuracy per language on the committed labelled
samples (tests/data/sentiment/, see its README), the French rules, language
detection, and the warehouse step that scores what ingest landed."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from omnivue import sentiment
from omnivue.config import load_settings
from omnivue.envelope import encode, make_event
from omnivue.sentiment import Sentiment, detect_lang, score, score_new
from omnivue.warehouse import LANDING_DDL, session

DATA = Path(__file__).resolve().parent / "data" / "sentiment"

# measured (bench/sentiment.py): fr_heldout 0.918, fr_dev 0.975, en_vader_tweets 0.781
FLOORS = {"fr_heldout.csv": 0.88, "fr_dev.csv": 0.93, "en_vader_tweets.csv": 0.75}


def _rows(name: str) -> list[dict[str, str]]:
    with open(DATA / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_accuracy_per_language_on_the_labelled_samples(name):
    rows = _rows(name)
    assert len(rows) >= (200 if name != "fr_dev.csv" else 100)
    assert {r["label"] for r in rows} == {"negative", "neutral", "positive"}
    correct = sum(score(r["text"], r["lang"]).label == r["label"] for r in rows)
    assert correct / len(rows) >= FLOORS[name], f"{name}: accuracy {correct / len(rows):.3f}"


def test_held_out_and_dev_samples_do_not_overlap():
    held = {r["text"].strip().lower() for r in _rows("fr_heldout.csv")}
    dev = {r["text"].strip().lower() for r in _rows("fr_dev.csv")}
    assert not held & dev


@pytest.mark.parametrize("text,label", [
    ("Je suis content", "positive"),
    ("Je ne suis pas content", "negative"),
    ("Pas mal du tout", "positive"),
    ("Ça ne marche pas", "negative"),
    ("L'appli ne fonctionne plus depuis hier", "negative"),
    ("Livraison sans aucun souci, merci", "positive"),
    ("Plus jamais je ne commande ici", "negative"),
    ("Le magasin est ouvert dimanche ?", "neutral"),
    ("Super !", "positive"),
    ("Service client au top 👍", "positive"),
    ("Colis abîmé 😡", "negative"),
    ("Le produit est joli mais la livraison est catastrophique", "negative"),
])
def test_french_rules(text, label):
    assert score(text, "fr").label == label


def test_french_boosters_and_capitals_strengthen():
    assert score("très bien", "fr").score > score("bien", "fr").score > 0
    assert score("C'est NUL", "fr").score < score("C'est nul", "fr").score < 0
    assert score("C'est nul !!!", "fr").score < score("C'est nul", "fr").score


def test_scores_labels_and_languages():
    for text in ("", "   ", None):
        assert score(text) == Sentiment(0.0, "neutral", None)
    s = score("I love this brand, great support", None)
    assert s.lang == "en" and s.label == "positive" and -1 <= s.score <= 1
    assert score("Service client nul, je suis très déçu", "fr-FR").lang == "fr"
    assert score("Terrible service", "EN").lang == "en"
    assert score("Servicio horrible", "es").lang in ("en", "fr")  # other languages: best effort, detected
    assert detect_lang("Je ne recommande pas cette marque") == "fr"
    assert detect_lang("The app keeps crashing") == "en"


def _landed_row(ev: dict, offset: int) -> tuple:
    ids = ev["identities"]
    return ("interactions.social" if ev["channel"] == "social" else "interactions.email", 0, offset, None, None,
            ev["event_id"], ev["event_type"], ev["channel"], datetime.fromisoformat(ev["occurred_at"]), ev["source"],
            1, ids.get("customer_id"), ids.get("email"), None, None, None, ids.get("social_handle"),
            json.dumps(ev["properties"]), encode(ev).decode(), datetime.now(timezone.utc))


def test_score_new_scores_landed_social_texts_once(tmp_path, monkeypatch):
    monkeypatch.setenv("OMNIVUE_HOME", str(tmp_path))
    settings = load_settings()
    at = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    handle = {"social_handle": "twitter:ann"}
    events = [
        make_event("social.mention", at, "twitter", handle, {"text": "Service nul, colis jamais reçu", "lang": "fr"}),
        make_event("social.comment", at, "twitter", handle, {"text": "Love the new collection!"}),
        make_event("social.direct_message", at, "twitter", handle, {"text": "Bonjour, une question", "direction": "inbound"}),
        make_event("social.mention", at, "twitter", handle, {}),  # no text: scored neutral
        make_event("social.reaction", at, "twitter", handle, {"text": "like"}),  # not a text to score
        make_event("email.opened", at, "sendgrid", {"email": "a@example.com"}, {}),
    ]
    with session(settings.warehouse) as con:
        con.execute(LANDING_DDL)
        rows = [_landed_row(ev, i) for i, ev in enumerate(events)]
        rows.append(_landed_row(events[0], 99))  # the same event delivered twice
        con.executemany("insert into landed_events values (" + ", ".join("?" * 20) + ")", rows)

    assert score_new(settings) == 4
    assert score_new(settings) == 0  # nothing new

    with session(settings.warehouse, read_only=True) as con:
        got = {e: (lang, label) for e, lang, label, s in con.execute(
            "select event_id, lang, label, score from social_sentiment").fetchall()}
    assert got[events[0]["event_id"]] == ("fr", "negative")
    assert got[events[1]["event_id"]] == ("en", "positive")
    assert got[events[2]["event_id"]] == ("fr", "neutral")
    assert got[events[3]["event_id"]] == (None, "neutral")
    assert events[4]["event_id"] not in got and events[5]["event_id"] not in got

    with session(settings.warehouse) as con:  # a later batch is scored on the next call
        ev = make_event("social.mention", at + timedelta(hours=1), "twitter", handle, {"text": "Merci, au top", "lang": "fr"})
        con.executemany("insert into landed_events values (" + ", ".join("?" * 20) + ")", [_landed_row(ev, 100)])
    assert score_new(settings) == 1


def test_lexicon_provenance_ships_with_the_package():
    lex = Path(sentiment.__file__).with_name("lexicons")
    assert (lex / "vader_fr_lexicon.txt").stat().st_size > 100_000
    assert "MIT" in (lex / "LICENSE-vaderSentiment-fr.txt").read_text()
    assert (lex / "README.md").exists() and (lex / "fr_overrides.tsv").exists()
    assert (DATA / "README.md").exists()
