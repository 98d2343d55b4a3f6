"""Dead letters recorded outside ingest: the webhook receiver's and the backfills' rejections.

Ingest dead-letters Kafka records in its own landing transactions; producers
that reject something before it reaches Kafka (a body that is not JSON, an
item an adapter cannot convert, a backfill line that cannot be routed) write
it here, in the same ``dead_letter`` table, with ``partition`` -1 and a topic
that names where it came from (``webhook/<provider>``, ``backfill/<file>``).
Light to import: DuckDB loads on the first write.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

#: reason, raw text, topic, partition, offset, record_key, raw bytes (or None)
DeadLetterRow = tuple[str, "str | None", str, int, int, "str | None", "bytes | None"]

_INSERT = ('insert into {} (reason, raw, topic, "partition", "offset", record_key, received_at, raw_bytes) '
           'values (?, ?, ?, ?, ?, ?, ?, ?)')


def write_dead_letters(path: Path, rows: Sequence[DeadLetterRow], wait_s: float = 600.0,
                       skip_existing: bool = False) -> int:
    """Record rejections, received now, in one short session and one transaction (creating the landing
    tables if needed); return how many rows were written. ``skip_existing``: a row equal to one already
    there (topic, partition, offset, record_key, reason, raw) is not written again, so running the same
    work twice records each rejection once. WarehouseBusy when the file stays locked ``wait_s``."""
    if not rows:
        return 0
    from .warehouse import LANDING_DDL, session

    received_at = datetime.now(timezone.utc)
    values = [(reason, raw, topic, part, off, key, received_at, raw_bytes)
              for reason, raw, topic, part, off, key, raw_bytes in rows]
    with session(path, wait_s=wait_s) as con:
        con.execute(LANDING_DDL)
        con.begin()
        if not skip_existing:
            con.executemany(_INSERT.format("dead_letter"), values)
            written = len(values)
        else:
            con.execute("create temp table new_dead_letters as select * from dead_letter limit 0")
            con.executemany(_INSERT.format("new_dead_letters"), values)
            (written,) = con.execute("""
                insert into dead_letter select * from new_dead_letters as n where not exists (
                    select 1 from dead_letter as d
                    where d.topic = n.topic and d."partition" = n."partition" and d."offset" = n."offset"
                      and d.record_key is not distinct from n.record_key and d.reason = n.reason
                      and d.raw is not distinct from n.raw)""").fetchone()
        con.commit()
    return written


def raw_text(body: bytes) -> str:
    """Bytes as a dead letter's ``raw`` text: UTF-8, any other byte kept as its escape."""
    return body.decode("utf-8", errors="backslashreplace")


def item_text(item: Any) -> str:
    """A decoded JSON value (an adapter's item) as a dead letter's ``raw`` text."""
    text = json.dumps(item, ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: keep it as its \\u escape, or DuckDB refuses the row
        return json.dumps(item, ensure_ascii=True, default=str)
    return text
