"""Dead letters you can act on: list them grouped by reason, show one whole,
and replay them after a contract fix.

Replay re-validates each dead letter of an input topic against the current
contracts; what now passes is moved, in ONE transaction, from ``dead_letter``
to ``landed_events`` (with its original topic, partition and offset) and
recorded in ``dead_letter_replays``: it lands once, however often replay runs.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from .config import Settings
from .envelope import INPUT_TOPICS
from .ingester import Batch, insert_batch
from .warehouse import ensure_landing, session

log = logging.getLogger(__name__)

REPLAYS_DDL = """
create table if not exists dead_letter_replays (
    topic varchar not null,
    "partition" integer not null,
    "offset" bigint not null,
    event_id varchar not null,
    original_reason varchar not null,
    replayed_at timestamptz not null
)
"""


class NotFound(LookupError):
    """No dead letter at that place."""


def summary(settings: Settings, limit: int = 20) -> dict[str, Any]:
    """Reasons grouped and counted, and the most recent dead letters."""
    ensure_landing(settings.warehouse)
    with session(settings.warehouse, read_only=True) as con:
        groups = con.execute(
            "select split_part(reason, ':', 1) as code, topic, count(*), min(received_at), max(received_at) "
            "from dead_letter group by all order by 3 desc, 1, 2").fetchall()
        recent = con.execute(
            'select topic, "partition", "offset", received_at, reason from dead_letter '
            'order by received_at desc, topic, "partition", "offset" limit ?', [limit]).fetchall()
        total = con.execute("select count(*) from dead_letter").fetchone()[0]
    return {"total": total, "groups": groups, "recent": recent}


def render_summary(data: dict[str, Any]) -> str:
    if not data["total"]:
        return "no dead letters"
    lines = [f"{data['total']} dead letters", "", f"{'reason':<14} {'topic':<22} {'count':>7}  last received"]
    for code, topic, n, _first, last in data["groups"]:
        lines.append(f"{code:<14} {topic:<22} {n:>7}  {last:%Y-%m-%d %H:%M:%S}")
    lines += ["", "most recent (topic:partition:offset  reason):"]
    for topic, part, off, _at, reason in data["recent"]:
        lines.append(f"  {topic}:{part}:{off}  {reason[:110]}")
    lines.append("\n`omnivue deadletter show TOPIC:PARTITION:OFFSET` shows one whole")
    return "\n".join(lines)


def parse_place(text: str) -> tuple[str, int, int]:
    """``topic:partition:offset`` (the topic may contain dots and slashes)."""
    topic, sep1, rest = text.rpartition(":")
    topic2, sep2, part = topic.rpartition(":")
    try:
        if not (sep1 and sep2 and topic2):
            raise ValueError
        return topic2, int(part), int(rest)
    except ValueError:
        raise ValueError(f"expected TOPIC:PARTITION:OFFSET, got {text!r}") from None


def show(settings: Settings, topic: str, partition: int, offset: int) -> dict[str, Any]:
    ensure_landing(settings.warehouse)
    with session(settings.warehouse, read_only=True) as con:
        cur = con.execute('select reason, topic, "partition", "offset", record_key, received_at, raw '
                          'from dead_letter where topic = ? and "partition" = ? and "offset" = ?',
                          [topic, partition, offset])
        row = cur.fetchone()
        cols = [d[0] for d in cur.description]
    if row is None:
        raise NotFound(f"no dead letter at {topic}:{partition}:{offset}")
    return dict(zip(cols, row))


@dataclass
class ReplayResult:
    examined: int = 0
    replayed: int = 0
    still_failing: Counter = field(default_factory=Counter)
    dry_run: bool = False

    def render(self) -> str:
        verb = "would land" if self.dry_run else "landed"
        text = f"replay: {self.examined} dead letters re-validated, {verb} {self.replayed}"
        if self.still_failing:
            text += "; still failing: " + ", ".join(f"{k}={v}" for k, v in self.still_failing.most_common())
        return text


def replay(settings: Settings, reason_code: str | None = None, dry_run: bool = False) -> ReplayResult:
    """Re-validate dead letters of the input topics; land what now passes, once."""
    ensure_landing(settings.warehouse)
    result = ReplayResult(dry_run=dry_run)
    now = datetime.now(timezone.utc)
    with session(settings.warehouse) as con:
        con.execute(REPLAYS_DDL)
        con.begin()
        params: list[Any] = list(INPUT_TOPICS)
        where = f"topic in ({', '.join('?' for _ in INPUT_TOPICS)}) and \"partition\" >= 0"
        if reason_code:
            where += " and split_part(reason, ':', 1) = ?"
            params.append(reason_code)
        rows = con.execute(f'select topic, "partition", "offset", record_key, raw_bytes, raw, reason '
                           f'from dead_letter where {where} order by topic, "partition", "offset"', params).fetchall()
        batch = Batch()
        replayed: list[tuple[str, int, int, str]] = []
        for topic, part, off, key, raw_bytes, raw, reason in rows:
            result.examined += 1
            value = bytes(raw_bytes) if raw_bytes is not None else (raw.encode("utf-8") if raw is not None else None)
            codes: Counter = Counter()
            if batch.add_raw(topic, part, off, key.encode() if key else None, value, None, codes):
                replayed.append((topic, part, off, reason))
            else:
                result.still_failing.update(codes)
        landed, _ = batch.tables()
        result.replayed = landed.num_rows
        if dry_run or not replayed:
            con.rollback()
            return result
        insert_batch(con, landed, batch.tables()[1].slice(0, 0), now, settings.keep_raw)
        topics, partitions, offsets, reasons = (list(column) for column in zip(*replayed))
        con.register("replayed_batch", pa.table({  # set-based: one statement each, not one per record
            "topic": pa.array(topics, pa.string()), "partition": pa.array(partitions, pa.int32()),
            "offset": pa.array(offsets, pa.int64()), "event_id": landed.column("event_id"),
            "original_reason": pa.array(reasons, pa.string())}))
        try:
            con.execute('insert into dead_letter_replays select topic, "partition", "offset", event_id, '
                        "original_reason, $now from replayed_batch", {"now": now})
            con.execute('delete from dead_letter as d using replayed_batch as r '
                        'where d.topic = r.topic and d."partition" = r."partition" and d."offset" = r."offset"')
        finally:
            con.unregister("replayed_batch")
        con.commit()
    log.info("replayed %d dead letters into landed_events", result.replayed)
    return result
