"""``omnivue query``: SQL on the published snapshot, read-only."""

from __future__ import annotations

import duckdb

from .config import Settings
from .warehouse import session


class QueryError(ValueError):
    """The SQL or the file to run it on is not usable."""


def run_query(settings: Settings, sql: str, warehouse: bool = False, limit: int = 50) -> str:
    path = settings.warehouse if warehouse else settings.published
    if not path.exists():
        raise QueryError(f"{path} does not exist yet: run `omnivue run` (or `omnivue demo`) first")
    try:
        with session(path, read_only=True) as con:
            rel = con.sql(sql)
            if rel is None:
                return "ok"
            return rel.limit(limit).__str__() if hasattr(rel, "limit") else str(rel)
    except duckdb.Error as exc:
        raise QueryError(str(exc).splitlines()[0]) from None
