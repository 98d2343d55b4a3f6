"""``omnivue query``: SQL on the published snapshot, read-only."""

from __future__ import annotations

import contextlib
import io

import duckdb

from .config import Settings
from .warehouse import session


class QueryError(ValueError):
    """The SQL or the file to run it on is not usable."""


def run_query(settings: Settings, sql: str, warehouse: bool = False, limit: int = 50) -> str:
    path = settings.warehouse if warehouse else settings.published
    if not path.exists():
        raise QueryError(f"{path} does not exist yet: run `omnivue run` (or `omnivue demo`) first")
    if not sql.strip().strip(";").strip():
        raise QueryError("no SQL given, e.g. omnivue query \"select * from customer_360 limit 5\"")
    try:
        # DuckDB's parser counts: a ';' in a string literal or a trailing ';' does not make two. Several
        # would all run and only the last be shown (a partial answer, or a write before it)
        statements = len(duckdb.extract_statements(sql))
        if statements > 1:
            raise QueryError(f"omnivue query runs one statement; got {statements}")
        with session(path, read_only=True) as con:
            # read-only means the file system too: no COPY ... TO, no ATTACH of the warehouse (clear-text
            # identifiers), no read_csv('/any/file'); it cannot be switched back on in this connection
            con.execute("set enable_external_access = false")
            rel = con.sql(sql)
            if rel is None:
                return "ok"
            # the query runs once: one row more than shown says whether the result was cut
            rows = rel.limit(limit + 1).to_arrow_table()
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):  # every column, every row fetched (DuckDB's default: 20, ~120 chars)
                con.from_arrow(rows.slice(0, limit)).show(max_rows=limit, max_width=10_000)
            text = buf.getvalue().rstrip("\n")
            if rows.num_rows > limit:
                text += f"\n(the first {limit} rows only: the result has more; raise --limit or aggregate)"
            return text
    except duckdb.Error as exc:
        raise QueryError(str(exc).splitlines()[0]) from None
