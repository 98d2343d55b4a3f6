"""Backfills: history kept in files -> Kafka, like any producer.

    omnivue backfill events.jsonl                       # canonical events, one per line
    omnivue backfill --provider sendgrid dump.json      # provider payloads, through the webhook's adapters

A file is JSON Lines (one JSON value per line) or one JSON document (an array
or an object, possibly spread over many lines): a file whose content is one
JSON value is a document, anything else is read line by line, streaming.

- Without ``--provider`` every line is a canonical event (a one-document file:
  an event, or an array of events). It is published as written to the topic of
  its event_type, keyed by its best identity (:func:`omnivue.kafka_io.send_event`,
  as the webhook and the simulator do); ingest validates it and dead-letters
  what its contract rejects. A line that cannot even be routed (not JSON, not an
  object, no or an unknown event_type, too large for Kafka) is dead-lettered here.
- With ``--provider NAME`` every line (or the document) is one payload as the
  provider sends it, converted by the webhook's adapter (:mod:`omnivue.adapters`);
  adapter errors are dead-lettered with their reasons, skipped items counted.

Dead letters written here: topic ``backfill/<file name>`` (``backfill/stdin``),
partition -1, offset = the line number (of the document's first line for a
document; ``record_key`` says ``line N`` or ``line N, item I``). Events are sent
in chunks; a chunk's dead letters are written only after its events were
flushed to Kafka, and a dead letter equal to one already recorded is not
written again: a re-run after a failure publishes everything again (ingest
lands it, staging deduplicates on event_id) and records each rejection once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from .config import Settings, load_settings
from .envelope import ALL_EVENT_TYPES, encode, route
from .progress import Progress
from .rejections import DeadLetterRow, item_text, raw_text

log = logging.getLogger(__name__)

#: Records sent between two flushes (a flush confirms them before the chunk's dead letters are written).
CHUNK_RECORDS = 20_000
#: A file whose first line is not JSON may be one pretty-printed document: up to this much is read to try.
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
#: How long one flush may take before Kafka counts as unreachable.
FLUSH_TIMEOUT_S = 60.0
STDIN = "-"


class BackfillError(RuntimeError):
    """Kafka failed mid-way: what was confirmed, and what a re-run does."""


# --- reading ----------------------------------------------------------------------------------------

@dataclass
class Unit:
    """One JSON value of a file: a line, or the whole document."""

    line: int
    raw: bytes
    lines: int = 1  # lines of the file it covers (for the progress bar)
    value: Any = None
    error: str | None = None  # not_json: ...
    document: bool = False


def _parse(raw: bytes) -> tuple[Any, str | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not_json: not UTF-8 text: {exc}"
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, f"not_json: {exc}"


def units(stream: BinaryIO, counts: Counter) -> Iterator[Unit]:
    """The JSON values of a stream, detecting a one-document file; blank lines are counted in
    ``counts['blank']``."""
    lines = iter(stream)
    number = 0

    def next_nonblank() -> tuple[int, bytes] | None:
        nonlocal number
        for raw in lines:
            number += 1
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
                raw = raw[3:]
            stripped = raw.strip()
            if stripped:
                return number, stripped
            counts["blank"] += 1
        return None

    first = next_nonblank()
    if first is None:
        return
    head = _unit(*first)
    if head.error is None:
        second = next_nonblank()
        if second is None:  # the whole file is this one value
            head.document = True
            yield head
            return
        yield head
        pending = [second]
    else:
        # perhaps one document over several lines: read on (up to a limit) and try the whole
        buffered, size = [first], len(first[1])
        while size <= MAX_DOCUMENT_BYTES and (nxt := next_nonblank()) is not None:
            buffered.append(nxt)
            size += len(nxt[1]) + 1
        if size <= MAX_DOCUMENT_BYTES and len(buffered) > 1:
            whole = b"\n".join(raw for _, raw in buffered)
            value, error = _parse(whole)
            if error is None:
                yield Unit(head.line, whole, lines=len(buffered), value=value, document=True)
                return
        yield head
        pending = buffered[1:]
    for line, raw in pending:
        yield _unit(line, raw)
    while (nxt := next_nonblank()) is not None:
        yield _unit(*nxt)


def _unit(line: int, raw: bytes) -> Unit:
    value, error = _parse(raw)
    return Unit(line, raw, value=value, error=error)


def count_lines(path: Path) -> int | None:
    """Lines of a regular file (a fast pass over its bytes), for the progress bar; None when unknown."""
    try:
        if not path.is_file():
            return None
        n, last = 0, b"\n"
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                n += chunk.count(b"\n")
                last = chunk[-1:]
        return n + (last != b"\n")
    except OSError:
        return None


# --- routing ---------------------------------------------------------------------------------------

def route_canonical(value: Any) -> str | None:
    """None when a decoded value can be published as a canonical event, else why not (``code: detail``).
    Only what routing needs is checked: the ingester validates the rest against the contracts."""
    if not isinstance(value, dict):
        return f"not_object: a canonical event is a JSON object, got {type(value).__name__}"
    event_type = value.get("event_type")
    if event_type is None:
        return "no_event_type: the object has no event_type, so no topic"
    if not isinstance(event_type, str) or event_type not in ALL_EVENT_TYPES:
        return f"unknown_event_type: {str(event_type)[:80]!r} is not a DESIGN.md event type, so no topic"
    return None


def _encoded(value: Any) -> bytes:
    try:
        return encode(value)
    except UnicodeEncodeError:  # a lone surrogate: published as its \\u escape, the ingester judges it
        return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii")


# --- publishing ------------------------------------------------------------------------------------

@dataclass
class Summary:
    files: list[str] = field(default_factory=list)
    provider: str | None = None
    dry_run: bool = False
    lines: int = 0
    blank: int = 0
    published: Counter = field(default_factory=Counter)  # topic -> events
    dead: Counter = field(default_factory=Counter)  # reason code -> dead letters
    skipped: Counter = field(default_factory=Counter)  # reason code -> provider items without an event
    already_recorded: int = 0  # dead letters an earlier run of the same file wrote already
    dead_topics: list[str] = field(default_factory=list)

    def render(self) -> str:
        would = "would be " if self.dry_run else ""
        n_pub, n_dead = sum(self.published.values()), sum(self.dead.values())
        what = f"{self.provider} payloads" if self.provider else "canonical events"
        out = [f"backfill{' (dry run)' if self.dry_run else ''}: {_n(len(self.files), 'file')} of {what}, "
               f"{_n(self.lines, 'line')}" + (f" ({self.blank} blank)" if self.blank else "")
               + f": {_n(n_pub, 'event')} {would}published, {n_dead} {would}dead-lettered"
               + (f", {_n(sum(self.skipped.values()), 'provider item')} skipped" if self.skipped else "")]
        if self.published:
            out.append("  events per topic:      " + ", ".join(f"{t}={n}" for t, n in sorted(self.published.items())))
        if self.dead:
            out.append("  dead letters by reason: " + ", ".join(f"{r}={n}" for r, n in self.dead.most_common())
                       + ("" if self.dry_run else f"  (dead_letter, topic {', '.join(self.dead_topics)}; "
                          "offset = line number)"))
        if self.already_recorded:
            out.append(f"  {self.already_recorded} of them were recorded by an earlier backfill of the same "
                       "file: not written again")
        if self.skipped:
            out.append("  skipped by reason:     " + ", ".join(f"{r}={n}" for r, n in self.skipped.most_common())
                       + "  (understood, no canonical event: docs/adapters.md)")
        if self.dry_run:
            out.append("nothing was published or written; run it without --dry-run to publish")
        elif n_pub:
            out.append("next: run `omnivue run` to land and build them (ingest validates every event; what "
                       "its contracts reject goes to dead_letter too)")
        return "\n".join(out)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


class _Publisher:
    """Sends records in chunks; ``checkpoint`` flushes and confirms them, then writes the chunk's dead
    letters. Dry run: counts only."""

    def __init__(self, settings: Settings, summary: Summary, dry_run: bool) -> None:
        self.settings = settings
        self.summary = summary
        self.dry_run = dry_run
        self.producer: Any = None
        self.futures: list[tuple[str, Any]] = []
        self.dead: list[DeadLetterRow] = []
        self.confirmed_up_to = ""  # "line N of FILE": everything before was published or dead-lettered

    def _producer(self) -> Any:
        if self.producer is None:
            from .kafka_io import make_producer

            timeout_ms = int(FLUSH_TIMEOUT_S * 1000)
            self.producer = make_producer(self.settings, client_id="omnivue-backfill", max_block_ms=timeout_ms,
                                          request_timeout_ms=timeout_ms // 2, delivery_timeout_ms=timeout_ms)
        return self.producer

    def send(self, event: dict[str, Any], value: bytes | None = None) -> str | None:
        """Publish one routable event (None), or say why Kafka refuses it as a record (too large)."""
        topic, _key = route(event)
        if self.dry_run:
            self.summary.published[topic] += 1
            return None
        from kafka.errors import KafkaError, MessageSizeTooLargeError

        from .kafka_io import send_event

        try:
            future = send_event(self._producer(), event, value)
        except MessageSizeTooLargeError as exc:
            size = len(value) if value is not None else len(encode(event))
            return f"too_large: the event is {size} bytes, more than the producer sends ({exc})"
        except KafkaError as exc:  # e.g. no metadata within max_block_ms: the broker went away
            raise BackfillError(self._failure(f"{type(exc).__name__}: {exc}")) from None
        self.futures.append((topic, future))
        return None

    def dead_letter(self, row: DeadLetterRow) -> None:
        self.summary.dead[row[0].split(":", 1)[0]] += 1
        if not self.dry_run:
            self.dead.append(row)

    @property
    def pending(self) -> int:
        return len(self.futures) + len(self.dead)

    def checkpoint(self, where: str) -> None:
        if self.dry_run:
            return
        if self.futures:
            from kafka.errors import KafkaError

            try:
                self.producer.flush(timeout=FLUSH_TIMEOUT_S)
                for _topic, future in self.futures:
                    future.get(timeout=0)
            except (KafkaError, OSError) as exc:
                raise BackfillError(self._failure(f"{type(exc).__name__}: {exc}")) from None
            self.summary.published.update(topic for topic, _ in self.futures)
            self.futures.clear()
        if self.dead:
            from .rejections import write_dead_letters

            written = write_dead_letters(self.settings.warehouse, self.dead, skip_existing=True)
            self.summary.already_recorded += len(self.dead) - written
            self.dead.clear()
        self.confirmed_up_to = where

    def _failure(self, error: str) -> str:
        done = sum(self.summary.published.values())
        return (f"Kafka failed while publishing ({error}); {done} events were confirmed"
                + (f" (everything up to {self.confirmed_up_to})" if self.confirmed_up_to else "")
                + ", and nothing after that was dead-lettered. Fix Kafka and run the same command again: "
                "events published twice are deduplicated on event_id, dead letters are not recorded twice")

    def close(self) -> None:
        if self.producer is not None:
            try:
                self.producer.close(timeout=5)
            except Exception:  # a producer left with failed batches: nothing more to deliver
                log.debug("closing the backfill producer failed", exc_info=True)


def _item_row(unit: Unit, value: Any, reason: str, topic: str, item: int | None = None,
              raw: str | None = None) -> DeadLetterRow:
    key = f"line {unit.line}" + (f", item {item}" if item is not None else "")
    return (reason, raw if raw is not None else item_text(value), topic, -1, unit.line, key, None)


def _canonical(pub: _Publisher, unit: Unit, topic: str) -> None:
    if unit.error is not None:
        pub.dead_letter((unit.error, raw_text(unit.raw), topic, -1, unit.line, f"line {unit.line}", unit.raw))
        return
    if unit.document and isinstance(unit.value, list):
        values = [(i, v, None) for i, v in enumerate(unit.value, start=1)]
    else:
        values = [(None, unit.value, unit.raw)]
    for item, value, as_written in values:
        reason = route_canonical(value)
        if reason is None:
            data = as_written if as_written is not None else _encoded(value)
            reason = pub.send(value, data)
        if reason is not None:
            text = raw_text(as_written) if as_written is not None else None
            pub.dead_letter(_item_row(unit, value, reason, topic, item, raw=text))


def _provider(pub: _Publisher, unit: Unit, topic: str, adapter: Any) -> None:
    from .adapters import AdapterError

    if unit.error is not None:
        pub.dead_letter((unit.error, raw_text(unit.raw), topic, -1, unit.line, f"line {unit.line}", unit.raw))
        return
    try:
        result = adapter.convert(unit.value)
    except AdapterError as exc:
        pub.dead_letter((exc.reason, raw_text(unit.raw), topic, -1, unit.line, f"line {unit.line}", unit.raw))
        return
    for event in result.events:
        reason = pub.send(event)
        if reason is not None:
            pub.dead_letter(_item_row(unit, event, reason, topic))
    for item, reason in result.errors:
        pub.dead_letter(_item_row(unit, item, reason, topic))
    pub.summary.skipped.update(reason.split(":", 1)[0] for _, reason in result.skipped)


def dead_letter_topic(name: str) -> str:
    return "backfill/" + ("stdin" if name == STDIN else Path(name).name)


def backfill(files: list[str], provider: str | None = None, dry_run: bool = False, progress: bool = True,
             settings: Settings | None = None) -> Summary:
    """Publish the files' events (see the module's docstring); BrokerUnavailable when Kafka cannot be
    reached at the start, BackfillError when it fails mid-way."""
    settings = settings or load_settings()
    adapter = None
    if provider is not None:
        from .adapters import ADAPTERS

        adapter = ADAPTERS[provider]
    summary = Summary(files=list(files), provider=provider, dry_run=dry_run)
    pub = _Publisher(settings, summary, dry_run)
    if not dry_run:
        from .kafka_io import require_reachable

        require_reachable(settings)  # one line at once, before anything is read or written
    try:
        for name in files:
            topic = dead_letter_topic(name)
            summary.dead_topics.append(topic)
            total = None if name == STDIN else count_lines(Path(name))
            counts: Counter = Counter()
            stream = sys.stdin.buffer if name == STDIN else open(name, "rb")
            try:
                with Progress(f"backfill {Path(name).name if name != STDIN else 'stdin'}", total=total,
                              unit="lines", enabled=progress) as bar:
                    for unit in units(stream, counts):
                        summary.lines += unit.lines
                        if adapter is None:
                            _canonical(pub, unit, topic)
                        else:
                            _provider(pub, unit, topic, adapter)
                        bar.advance(unit.lines)
                        if pub.pending >= CHUNK_RECORDS:
                            pub.checkpoint(f"line {unit.line} of {name}")
                    pub.checkpoint(f"the end of {name}")
                    bar.advance(counts["blank"])
            finally:
                if stream is not sys.stdin.buffer:
                    stream.close()
            summary.lines += counts["blank"]
            summary.blank += counts["blank"]
    finally:
        pub.close()
    summary.dead_topics = sorted(set(summary.dead_topics))
    return summary


# --- the command -----------------------------------------------------------------------------------

def _input_file(text: str) -> str:
    """``-`` (stdin) or a readable regular file; anything else is one line from argparse."""
    if text == STDIN:
        return text
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"not a regular file: {text}")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"cannot read {text}: permission denied")
    return text


def _provider_name(text: str) -> str:
    from .adapters import ADAPTERS

    name = text.strip().lower()
    if name not in ADAPTERS:
        raise argparse.ArgumentTypeError(f"unknown provider {text!r}; known: {', '.join(sorted(ADAPTERS))}")
    return name


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``omnivue backfill``; sets ``func`` to :func:`run_command`."""
    from .webhook import PROVIDER_NAMES
    parser.description = (
        "Publish history kept in files to Kafka, as any producer would, for `omnivue run` to land: JSON Lines "
        "(one JSON value per line, streamed) or one JSON document (an array or an object), detected. Without "
        "--provider each line is a canonical event (DESIGN.md), published as written to the topic of its "
        "event_type, keyed by its best identity; ingest validates it and dead-letters what its contract rejects. "
        "Lines that cannot be routed (not JSON, not an object, no or an unknown event_type) go straight to the "
        "warehouse's dead_letter (topic backfill/<file name>, offset = line number) with their reason. "
        "Old events are fine: the models judge events by when they happened. Safe to re-run, e.g. after Kafka "
        "failed half-way: events published twice are deduplicated on event_id downstream, and a dead letter "
        "already recorded is not recorded again (records ingest rejects are rejected again, once per run).")
    parser.add_argument("files", nargs="+", type=_input_file, metavar="FILE",
                        help="JSON Lines or JSON file to read; - reads standard input")
    parser.add_argument("--provider", type=_provider_name, default=None, metavar="NAME",
                        help="each line (or the document) is one payload as this provider sends it, converted "
                        f"by the webhook's adapter ({', '.join(PROVIDER_NAMES)}); malformed items are dead-lettered "
                        "with their reason, items without a canonical event are counted (docs/adapters.md)")
    parser.add_argument("--dry-run", action="store_true",
                        help="read, convert and route every line and print the counts; publish nothing, write nothing")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from .kafka_io import BrokerUnavailable

    if args.files.count(STDIN) > 1:
        print("omnivue backfill: error: - (standard input) can be read once", file=sys.stderr)
        return 2
    try:
        summary = backfill(args.files, provider=args.provider, dry_run=args.dry_run, progress=not args.quiet)
    except BackfillError as exc:
        raise BrokerUnavailable(str(exc)) from None
    except OSError as exc:  # a file that vanished or cannot be read half-way
        print(f"omnivue: error: cannot read {exc.filename or 'the input'}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(summary.render())
    return 0
