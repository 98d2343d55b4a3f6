"""The DuckDB warehouse file: connections that wait politely for the lock,
and the landing tables that ingest owns.

DuckDB allows one writer process per file and no reader while it writes, so
every writer here opens the file for one short unit of work and closes it.
"""

from __future__ import annotations

import logging
import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

log = logging.getLogger(__name__)

LANDING_DDL = """
create table if not exists landed_events (
    topic varchar not null,
    "partition" integer not null,
    "offset" bigint not null,
    record_key varchar,
    kafka_timestamp timestamptz,
    -- random UUIDs: compressing them (FSST) cost ~0.27 µs a record at checkpoint, a quarter of
    -- the landing's checkpoint CPU, to save ~18 bytes; uncompressed, lookups by event_id are
    -- faster too (docs/benchmarks.md)
    event_id varchar not null using compression uncompressed,
    event_type varchar not null,
    channel varchar not null,
    occurred_at timestamptz not null,
    source varchar not null,
    schema_version integer not null,
    customer_id varchar,
    email varchar,
    phone varchar,
    device_id varchar,
    anonymous_id varchar,
    social_handle varchar,
    properties json,
    raw varchar using compression zstd,  -- the original text, only with OMNIVUE_INGEST_KEEP_RAW=1; not read by dbt
    received_at timestamptz not null
);
create table if not exists dead_letter (
    reason varchar not null,
    raw varchar using compression zstd,
    topic varchar not null,
    "partition" integer not null,
    "offset" bigint not null,
    record_key varchar,
    received_at timestamptz not null,
    raw_bytes blob
);
create table if not exists social_sentiment (
    event_id varchar primary key,
    lang varchar,
    score double not null,
    label varchar not null,
    scored_at timestamptz not null
);
create table if not exists ingest_offsets (
    consumer_group varchar not null,
    topic varchar not null,
    "partition" integer not null,
    next_offset bigint not null,
    updated_at timestamptz not null,
    primary key (consumer_group, topic, "partition")
);
"""

IDENTITY_COLUMNS = ("customer_id", "email", "phone", "device_id", "anonymous_id", "social_handle")


class WarehouseBusy(RuntimeError):
    """The warehouse file stayed locked by another process for too long."""


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set lock" in text)


def connect(path: Path, read_only: bool = False, wait_s: float = 600.0) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting (with a log line) while another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    delay, warned = 0.05, False
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.ConnectionException as exc:
            if read_only and "different configuration" in str(exc):
                # this process already holds the file read-write (dbt in an Airflow task): share that
                return duckdb.connect(str(path))
            raise
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() > deadline:
                raise WarehouseBusy(f"{path} is locked by another process (waited {wait_s:.0f}s): {exc}") from None
            if not warned:
                log.warning("warehouse %s is busy (another process writes it); waiting", path)
                warned = True
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 2.0)


@contextmanager
def session(path: Path, read_only: bool = False, wait_s: float = 600.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """One short unit of work on the warehouse; the lock is released on exit."""
    con = connect(path, read_only=read_only, wait_s=wait_s)
    try:
        yield con
    finally:
        con.close()


def ensure_landing(path: Path) -> None:
    from .compliance.store import ensure_compliance_tables

    with session(path) as con:
        con.execute(LANDING_DDL)
        # warehouses made before raw became optional (docs/benchmarks.md) kept it not null
        if con.execute("select count(*) from duckdb_constraints() where table_name = 'landed_events' "
                       "and constraint_type = 'NOT NULL' and constraint_column_names = ['raw']").fetchone()[0]:
            con.execute("alter table landed_events alter column raw drop not null")
        ensure_compliance_tables(con)


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'main' and table_name = ?", [name]
    ).fetchone()
    return bool(row and row[0])
