"""Publish: copy the verified marts into the analysts' snapshot,
``$OMNIVUE_HOME/published/customer_view.duckdb``, replaced atomically.

Analysts open the snapshot read-only while the next run builds; a reader that
has the old file open keeps reading it (the new one is renamed over it).
Identifier values are replaced by keyed hashes (``OMNIVUE_PSEUDONYM_KEY``):
the snapshot holds no clear-text email, phone, handle or device id.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .config import Settings
from .warehouse import session, table_exists

log = logging.getLogger(__name__)

#: Marts copied as they are (they hold person ids, never identifier values).
PUBLISHED_TABLES = ("customer_360", "fct_interactions", "consent_audit", "marketing_audience",
                    "channel_engagement", "contract_results")


def publish_snapshot(settings: Settings) -> Path:
    target = settings.published
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    # read-write like dbt: in the Airflow process dbt keeps a handle with that configuration
    with session(settings.warehouse) as con:
        con.execute(f"attach '{tmp}' as snap (read_only false)")
        copied = []
        for name in PUBLISHED_TABLES:
            if table_exists(con, name):
                con.execute(f"create table snap.main.{name} as select * from main.{name}")
                copied.append(name)
        if table_exists(con, "identity_map"):
            # identifier values become keyed hashes: analysts can join and count, not read them
            con.execute(
                "create table snap.main.identity_map as select identifier_type, "
                "sha256(? || ':' || identifier_type || ':' || identifier_value) as identifier_hash, "
                "* exclude (identifier_type, identifier_value, identifier_hash) from main.identity_map", [settings.pseudonym_key])
            copied.append("identity_map")
        if table_exists(con, "dead_letter"):
            con.execute("create table snap.main.dead_letter_summary as select split_part(reason, ':', 1) as reason_code, "
                        "topic, count(*) as records, min(received_at) as first_received_at, "
                        "max(received_at) as last_received_at from main.dead_letter group by all")
            copied.append("dead_letter_summary")
        con.execute("detach snap")
    os.replace(tmp, target)
    log.info("published %s (%s)", target, ", ".join(copied))
    return target
