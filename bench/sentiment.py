"""Sentiment accuracy per language on the committed labelled samples, with
baselines measured in the same run, and scoring throughput.

    .venv/bin/python bench/sentiment.py

Samples (tests/data/sentiment/, see its README for sources and licences):
- fr_heldout.csv: French, never used to adapt the lexicon: THE French figure;
- fr_dev.csv: French, used to adapt lexicons/fr_overrides.tsv (reported for reference only);
- en_vader_tweets.csv: English tweets rated by humans (VADER's ICWSM-2014 set, MIT).

Baselines: the majority class, and for French the vaderSentiment-fr lexicon
without omnivue's overlay (same rules), so the overlay's effect is visible.
"""

from __future__ import annotations

import csv
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "ingest"))

from omnivue import sentiment  # noqa: E402

DATA = ROOT / "tests" / "data" / "sentiment"
SETS = [("fr_heldout.csv", "French, held out"), ("fr_dev.csv", "French, dev (lexicon adapted on it)"),
        ("en_vader_tweets.csv", "English tweets (VADER ground truth)")]
LABELS = sentiment.LABELS


def load(name: str) -> list[dict[str, str]]:
    with open(DATA / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def accuracy(rows: list[dict[str, str]], predict) -> tuple[float, Counter]:
    confusion: Counter = Counter()
    for r in rows:
        confusion[(r["label"], predict(r))] += 1
    ok = sum(n for (gold, pred), n in confusion.items() if gold == pred)
    return ok / len(rows), confusion


def table(confusion: Counter) -> str:
    head = "gold \\ predicted " + " ".join(f"{lab:>9}" for lab in LABELS)
    lines = [head] + [f"{gold:>17} " + " ".join(f"{confusion[(gold, p)]:>9}" for p in LABELS) for gold in LABELS]
    return "\n".join("    " + line for line in lines)


def main() -> int:
    results = {}
    for name, title in SETS:
        rows = load(name)
        lang = rows[0]["lang"]
        counts = Counter(r["label"] for r in rows)
        majority = counts.most_common(1)[0][1] / len(rows)
        acc, confusion = accuracy(rows, lambda r: sentiment.score(r["text"], r["lang"]).label)
        auto, _ = accuracy(rows, lambda r: sentiment.score(r["text"]).label)
        detected = sum(sentiment.detect_lang(r["text"]) == r["lang"] for r in rows) / len(rows)
        print(f"\n{title}: {name}, {len(rows)} texts ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})")
        print(f"  accuracy (3 classes, lang given)        {acc:.3f}")
        print(f"  accuracy (language detected from text)  {auto:.3f}   (language detection {detected:.3f})")
        print(f"  baseline: majority class                {majority:.3f}")
        if lang == "fr":
            base, _ = accuracy(rows, lambda r: sentiment.label_for(sentiment._score_fr(r["text"], overlay=False)))
            print(f"  baseline: vaderSentiment-fr lexicon alone (no omnivue overlay)  {base:.3f}")
            en, _ = accuracy(rows, lambda r: sentiment.label_for(sentiment._score_en(r["text"])))
            print(f"  baseline: English VADER on the French text                      {en:.3f}")
        print(table(confusion))
        results[name] = acc
    # throughput
    texts = [r["text"] for name, _ in SETS for r in load(name)]
    for lang in ("fr", "en"):
        sentiment.score("warm up", lang)
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < 2.0:
            for t in texts:
                sentiment.score(t, lang)
            n += len(texts)
        rate = n / (time.perf_counter() - start)
        print(f"\nthroughput {lang}: {rate:,.0f} texts/s on one core")
    print("\nsummary: " + ", ".join(f"{name} {acc:.3f}" for name, acc in results.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
