"""Reading the warehouse back, for the end-to-end tests."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import duckdb


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def partition(mapping: dict[str, str]) -> set[frozenset[str]]:
    """identifier -> group  ==>  the set of groups (as sets of identifiers)."""
    groups: dict[str, set[str]] = defaultdict(set)
    for identifier, group in mapping.items():
        groups[group].add(identifier)
    return {frozenset(g) for g in groups.values()}


def warehouse_identity(path: Path) -> dict[str, str]:
    return {f"{t}:{v}": p for t, v, p in query(path, "select identifier_type, identifier_value, person_id from identity_map")}


def warehouse_violations(path: Path) -> set[str]:
    return {e for (e,) in query(path, "select event_id from consent_audit where not consent_ok")}
