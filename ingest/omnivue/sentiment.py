"""Sentiment of social mentions, comments and direct messages, French and
English, computed inside the pipeline (no hosted service, nothing downloaded).

- English: VADER (``vaderSentiment``), its compound score as is.
- French: a VADER-style scorer written here, on the French VADER lexicon that
  ships in the ``vaderSentiment-fr`` 1.3.4 package (MIT; a manual translation
  of VADER's lexicon, copied into ``lexicons/`` with its licence) plus our own
  overlay ``lexicons/fr_overrides.tsv`` (customer-service and social-media
  vocabulary, idioms such as "pas mal" or "rien à redire"). The rules are
  VADER's, adapted to French: booster and dampener adverbs ("très",
  "vraiment", "peu"), negation before the word ("pas content") and around
  the verb ("ne marche pas", "n'est jamais"), contrast ("mais"), capitals,
  exclamation marks, emoticons and emojis. See docs/social_listening.md.

``score(text, lang=None)`` returns a :class:`Sentiment` (score in [-1, 1],
label negative / neutral / positive, language used); ``score_new(settings)``
scores every social text landed in the warehouse and not scored yet.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Iterable

log = logging.getLogger(__name__)

LEXICON_DIR = Path(__file__).with_name("lexicons")

#: Event types whose text is scored.
SCORED_EVENT_TYPES: tuple[str, ...] = ("social.mention", "social.comment", "social.direct_message")
LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
LANGS: tuple[str, ...] = ("en", "fr")

#: VADER's customary thresholds on the compound score.
POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05


@dataclass(frozen=True)
class Sentiment:
    score: float  # compound score in [-1, 1]
    label: str  # negative / neutral / positive
    lang: str | None  # language the text was scored as (en / fr); None for an empty text


def label_for(score: float) -> str:
    if score >= POSITIVE_THRESHOLD:
        return "positive"
    if score <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


# --- language ------------------------------------------------------------------------------

_FR_WORDS = frozenset("""
le la les un une des du de au aux et est sont je tu il elle nous vous ils elles on ce cet cette ces mon ma mes
ton ta tes son sa ses notre votre vos leur leurs que qui quoi dans pour par sur avec sans pas ne plus très trop
mais ou où donc car ça cela c'est j'ai suis es était été être avoir avez ont fait rien jamais toujours encore
merci bonjour aussi bien mal tout tous toute toutes comme quand chez moi toi lui eux y en si même déjà vraiment
""".split())
_EN_WORDS = frozenset("""
the a an and is are was were be been being i you he she we they it this that these those my your his her our
their of in on at to for with without not no but or so very too just what who when where why how do does did
have has had can can't don't i'm it's im thanks thank please love great good bad hate my me from about all
""".split())
_FR_CHARS = re.compile(r"[àâçéèêëîïôûùüÿœæ]")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)


def normalize_lang(lang: str | None) -> str | None:
    """'fr', 'FR', 'fr-FR', 'fr_CA' -> 'fr'; None or '' -> None; other codes kept (lower-cased)."""
    if not lang or not isinstance(lang, str) or not lang.strip():
        return None
    return re.split(r"[-_]", lang.strip().lower(), maxsplit=1)[0] or None


def detect_lang(text: str) -> str:
    """French or English, cheaply: stopword counts (+ French accented letters)."""
    lowered = text.lower().replace("’", "'")
    words = _WORD.findall(lowered)
    fr = sum(1 for w in words if w in _FR_WORDS or w.split("'")[0] in {"j", "l", "d", "n", "c", "qu", "m", "s", "t"})
    en = sum(1 for w in words if w in _EN_WORDS)
    fr += 0.5 * len(_FR_CHARS.findall(lowered))
    return "fr" if fr > en else "en"


# --- English: VADER --------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def _score_en(text: str) -> float:
    return float(_vader().polarity_scores(text)["compound"])


# --- French: a VADER-style scorer -------------------------------------------------------------

B_INCR, B_DECR = 0.293, -0.293  # VADER's booster increments
C_INCR = 0.733  # VADER's ALL-CAPS emphasis
N_SCALAR = -0.74  # VADER's negation scalar
ALPHA = 15  # VADER's normalisation constant

FR_BOOSTERS: dict[str, float] = {w: B_INCR for w in """
absolument archi beaucoup carrément complètement considérablement extrêmement extrême franchement grave grandement
hyper incroyablement infiniment particulièrement profondément rudement sacrément super superbement tellement
terriblement totalement trop très ultra vachement vraiment énormément si tant bien
""".split()} | {w: B_DECR for w in """
assez guère légèrement moyennement peu plutôt presque quasi quasiment relativement
""".split()}
#: Negators that act on the next few words ("pas content", "jamais satisfait", "sans souci").
FR_NEGATORS = frozenset("pas jamais rien aucun aucune aucunement nullement sans ni".split())
#: Negators that close a "ne ... X" around a verb ("ne marche pas", "n'est plus").
FR_NEG_CLOSERS = FR_NEGATORS | {"plus"}
FR_CONTRAST = frozenset({"mais", "cependant", "pourtant", "toutefois", "néanmoins"})

_ELISION = re.compile(r"\b(j|l|d|n|c|qu|m|t|s|jusqu|lorsqu|puisqu)'", re.UNICODE)
_EMOTICON = re.compile(r"(?:(?<=\s)|^)(?:[:;=8xX][-'^o]?[)(\]\[DPp/\\|*3oO]+|<3+|</3|\^\^|\^_\^|:'\()(?=\s|$|[.,!?])")
_TOKEN = re.compile(r"__phr\d+__|[^\W\d_]+(?:-[^\W\d_]+)*|\d+|[,.;:!?()]+", re.UNICODE)
_BOUNDARY = "|"  # punctuation: negation and boosters do not reach across it


def _fold(word: str) -> str:
    """Accent-insensitive key: 'déçue' -> 'decue'."""
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


# the rules' word lists, accent-folded like the tokens
_F_BOOSTERS = {_fold(k): v for k, v in FR_BOOSTERS.items()}
_F_NEGATORS = frozenset(_fold(w) for w in FR_NEGATORS)
_F_CLOSERS = frozenset(_fold(w) for w in FR_NEG_CLOSERS)
_F_CONTRAST = frozenset(_fold(w) for w in FR_CONTRAST)


def _read_lexicon(path: Path, sep: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        term, _, value = line.rpartition(sep)
        try:
            out[term.strip().lower()] = float(value)
        except ValueError:
            continue
    return out


@dataclass
class _FrenchLexicon:
    words: dict[str, float]  # exact (lower-cased) and accent-folded keys
    phrases: list[tuple[re.Pattern[str], float]]  # multi-word expressions, longest first
    emoticons: dict[str, float]


@lru_cache(maxsize=2)
def _french(overlay: bool = True) -> _FrenchLexicon:
    """The French lexicon; ``overlay=False``: the vaderSentiment-fr lexicon alone (for the benchmark)."""
    base = _read_lexicon(LEXICON_DIR / "vader_fr_lexicon.txt", "->")
    overrides = _read_lexicon(LEXICON_DIR / "fr_overrides.tsv", "\t") if overlay else {}
    merged = {**base, **overrides}
    words: dict[str, float] = {}
    phrases: dict[str, float] = {}
    emoticons: dict[str, float] = {}
    for term, value in merged.items():
        if not any(ch.isalpha() for ch in term):
            emoticons[term] = value
        elif " " in term or "'" in term:
            phrases[_fold(term)] = value
        else:
            words.setdefault(_fold(term), value)
            words[term] = value
    for term, value in overrides.items():  # our overlay wins on the folded key too
        if " " not in term and "'" not in term and any(ch.isalpha() for ch in term):
            words[_fold(term)] = value
    ordered = sorted(phrases.items(), key=lambda kv: -len(kv[0]))
    compiled = [(re.compile(r"(?<![\w'])" + re.escape(p).replace(r"\ ", r"\s+") + r"(?![\w'])"), v) for p, v in ordered]
    return _FrenchLexicon(words, compiled, emoticons)


@lru_cache(maxsize=1)
def _emoji_valence() -> dict[str, float]:
    """Emoji -> valence: VADER's emoji descriptions scored with VADER's lexicon."""
    vader = _vader()
    out: dict[str, float] = {}
    for emoji, description in vader.emojis.items():
        words = description.lower().split()
        vals = [vader.lexicon[w] for w in words if w in vader.lexicon]
        if vals:
            out[emoji] = max(-4.0, min(4.0, sum(vals)))
    return out


def _lookup(lex: _FrenchLexicon, word: str) -> float | None:
    words = lex.words
    if word in words:
        return words[word]
    folded = _fold(word)
    if folded in words:
        return words[folded]
    # light inflection: plural, feminine, a few common suffixes
    for cand in _variants(folded):
        if cand in words:
            return words[cand]
    return None


def _variants(w: str) -> Iterable[str]:
    if len(w) < 4:
        return
    stems = [w]
    if w.endswith(("s", "x")):
        stems.append(w[:-1])
    for s in list(stems):
        if s.endswith("e"):
            stems.append(s[:-1])
        if s.endswith("euse"):
            stems.append(s[:-4] + "eux")
        if s.endswith("ive"):
            stems.append(s[:-3] + "if")
        if s.endswith("ienne"):
            stems.append(s[:-2])
        if s.endswith("elle"):
            stems.append(s[:-2])
    yield from stems[1:]


def _window(tokens: list[str], i: int, size: int = 3) -> list[str]:
    """The up to ``size`` tokens before ``i``, not reaching back across punctuation."""
    window = tokens[max(0, i - size):i]
    while _BOUNDARY in window:
        window = window[window.index(_BOUNDARY) + 1:]
    return window


def _has_valence(lex: _FrenchLexicon, token: str, extra: dict[str, float]) -> bool:
    if token in extra:
        return bool(extra[token])
    return bool(_lookup(lex, token))


def _tokens(text: str, lex: _FrenchLexicon) -> tuple[list[str], list[bool], dict[str, float]]:
    """Tokens (lower-cased), whether each was written in capitals, and the
    valences of the phrase placeholders substituted into the text."""
    text = text.replace("’", "'").replace("`", "'")
    extra: dict[str, float] = {}
    # emoticons and emojis become placeholders with their valence
    emoji_val = _emoji_valence()

    def sub_emoticon(m: re.Match[str]) -> str:
        e = m.group(0)
        v = lex.emoticons.get(e.lower(), lex.emoticons.get(e))
        if v is None:
            return " "
        key = f"__phr{len(extra)}__"
        extra[key] = v
        return f" {key} "

    text = _EMOTICON.sub(sub_emoticon, text)
    chars = []
    for ch in text:
        if ch in emoji_val:
            key = f"__phr{len(extra)}__"
            extra[key] = emoji_val[ch]
            chars.append(f" {key} ")
        else:
            chars.append(ch)
    text = "".join(chars)
    caps_source = text
    lowered = _fold(text.lower())
    for pattern, value in lex.phrases:
        if pattern.search(lowered):
            def sub(_m: re.Match[str], v: float = value) -> str:
                key = f"__phr{len(extra)}__"
                extra[key] = v
                return f" {key} "
            lowered = pattern.sub(sub, lowered)
    lowered = _ELISION.sub(lambda m: ("ne" if m.group(1) == "n" else m.group(1)) + " ", lowered)
    tokens = [_BOUNDARY if not (t[0].isalnum() or t.startswith("__")) else t for t in _TOKEN.findall(lowered)]
    caps_words = {_fold(w.lower()) for w in _TOKEN.findall(caps_source) if len(w) > 1 and w.isupper()}
    caps = [not t.startswith("__phr") and t in caps_words for t in tokens]
    return tokens, caps, extra


def _score_fr(text: str, overlay: bool = True) -> float:
    lex = _french(overlay)
    tokens, caps, extra = _tokens(text, lex)
    if not tokens and not extra:
        return 0.0
    folded_boosters, folded_negators = _F_BOOSTERS, _F_NEGATORS
    folded_closers, folded_contrast = _F_CLOSERS, _F_CONTRAST
    word_tokens = [t for t in tokens if not t.startswith("__phr") and t != _BOUNDARY]
    is_cap_diff = 0 < sum(caps) < len(word_tokens)
    sentiments: list[float] = []
    for i, tok in enumerate(tokens):
        if tok in extra:
            valence: float | None = extra[tok]
        elif len(tok) < 2 or tok in folded_negators or tok in ("ne", "plus"):
            valence = None
        elif tok in folded_boosters and i + 1 < len(tokens) and _has_valence(lex, tokens[i + 1], extra):
            valence = None  # a booster of the next word ("super rapide"), not a word of its own ("Super !")
        else:
            valence = _lookup(lex, tok)
        if valence is None or valence == 0:
            sentiments.append(0.0)
            continue
        if caps[i] and is_cap_diff:
            valence += C_INCR if valence > 0 else -C_INCR
        # boosters / dampeners in the 3 preceding tokens (VADER's decay)
        window = _window(tokens, i)
        for dist, damp in ((1, 1.0), (2, 0.95), (3, 0.9)):
            j = i - dist
            if dist <= len(window) and tokens[j] in folded_boosters:
                b = folded_boosters[tokens[j]]
                valence += (b if valence > 0 else -b) * damp
        # negation: "pas content", "jamais satisfait", "sans souci" (a negator in the 3 tokens before),
        # "ne ... plus X" / "plus jamais X", and "ne marche pas" (ne before, the closer just after)
        negated = any(t in folded_negators for t in window)
        if not negated and "plus" in window:
            k = i - len(window) + (len(window) - 1 - window[::-1].index("plus"))
            negated = (k > 0 and tokens[k - 1] == "ne") or (k + 1 < len(tokens) and tokens[k + 1] == "jamais")
        if not negated and "ne" in window:
            after = tokens[i + 1:i + 3]
            after = after[:after.index(_BOUNDARY)] if _BOUNDARY in after else after
            negated = any(t in folded_closers for t in after)
        if negated:
            valence *= N_SCALAR
        sentiments.append(valence)
    # contrast: what follows "mais" weighs more
    for ci, tok in enumerate(tokens):
        if tok in folded_contrast:
            sentiments = [s * 0.5 if k < ci else (s * 1.5 if k > ci else s) for k, s in enumerate(sentiments)]
            break
    total = sum(sentiments)
    if total:
        ep = min(text.count("!"), 4) * 0.292
        qm = text.count("?")
        qm_amp = 0.0 if qm <= 1 else (min(qm * 0.18, 0.96))
        total += (ep + qm_amp) if total > 0 else -(ep + qm_amp)
    return max(-1.0, min(1.0, total / math.sqrt(total * total + ALPHA)))


# --- public API ----------------------------------------------------------------------------

def score(text: str | None, lang: str | None = None) -> Sentiment:
    """Score one text. ``lang`` (e.g. the event's properties.lang) picks the
    scorer when it is French or English; otherwise the language is detected."""
    if not text or not text.strip():
        return Sentiment(0.0, "neutral", normalize_lang(lang))
    code = normalize_lang(lang)
    if code not in LANGS:
        code = detect_lang(text)
    value = _score_fr(text) if code == "fr" else _score_en(text)
    value = round(float(value), 4)
    return Sentiment(value, label_for(value), code)


SELECT_UNSCORED = """
select e.event_id,
       json_extract_string(e.properties, '$.text') as text,
       json_extract_string(e.properties, '$.lang') as lang
from landed_events e
anti join social_sentiment s on s.event_id = e.event_id
where e.event_type in ({types})
qualify row_number() over (partition by e.event_id order by e.received_at, e."offset") = 1
"""


def score_new(settings, batch_wait_s: float = 600.0) -> int:
    """Score every social mention / comment / direct message landed and not
    scored yet, in one short warehouse session; insert them in bulk (Arrow).
    Returns how many were scored."""
    import pyarrow as pa

    from .warehouse import LANDING_DDL, session

    types = ", ".join(f"'{t}'" for t in SCORED_EVENT_TYPES)
    with session(settings.warehouse, wait_s=batch_wait_s) as con:
        con.execute(LANDING_DDL)
        rows = con.execute(SELECT_UNSCORED.format(types=types)).fetchall()
        if not rows:
            return 0
        now = datetime.now(timezone.utc)
        ids, langs, scores, labels = [], [], [], []
        for event_id, text, lang in rows:
            s = score(text, lang)
            ids.append(event_id)
            langs.append(s.lang)
            scores.append(s.score)
            labels.append(s.label)
        table = pa.table({
            "event_id": pa.array(ids, pa.string()),
            "lang": pa.array(langs, pa.string()),
            "score": pa.array(scores, pa.float64()),
            "label": pa.array(labels, pa.string()),
            "scored_at": pa.array([now] * len(ids), pa.timestamp("us", tz="UTC")),
        })
        con.register("sentiment_batch", table)
        try:
            con.execute("insert or ignore into social_sentiment (event_id, lang, score, label, scored_at) "
                        "select event_id, lang, score, label, scored_at from sentiment_batch")
        finally:
            con.unregister("sentiment_batch")
    log.info("scored the sentiment of %d social texts", len(ids))
    return len(ids)
