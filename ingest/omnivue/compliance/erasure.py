"""Right to erasure: remove a person from every store omnivue owns under
``OMNIVUE_HOME``, prove it, and tell other consumers.

One erasure, in order (the publish lock, then the warehouse, are held from
the first step to the last, so neither ingest nor publish interleaves):

1. resolve the person from the identifier (``subject.resolve_subject``);
2. suppress: the keyed hashes of all their identifiers go to
   ``suppressed_identifiers`` (ingest drops their records from now on) and
   the request is recorded (``subject_requests``, hashes only);
3. the published snapshot: a copy without their rows (person_id, event ids,
   identifier hashes) is rebuilt into a fresh file and renamed over it;
4. other DuckDB files under OMNIVUE_HOME: the same;
5. text files under OMNIVUE_HOME (logs, truth.json, exports, ...): lines that
   mention any of their values are removed, JSON entries dropped, access
   exports about them deleted;
6. the warehouse: rows deleted from every table by person_id, event id,
   identifier value, node key or keyed hash, plus dead letters and any other
   text that mentions one of their values (in the audit tables the value is
   redacted instead, the row kept); then the database is rewritten into a
   new file (``COPY FROM DATABASE``) renamed over the old one, so no value
   survives in free pages;
7. verification: every file under OMNIVUE_HOME is scanned byte by byte for
   their values (usual spellings included) and every table of the warehouse
   and snapshot is queried: the hits (expected: none) are recorded;
8. an erasure notice (keyed hashes, person ids, never values) is published on
   the ``erasure`` topic for other consumers; if the broker is down it stays
   pending and ``omnivue subject serve`` / the ``subject_requests`` DAG
   retries it.

An erasure killed half-way stays ``in_progress`` (its identifiers suppressed);
served again under the same request id (``omnivue subject serve``), it redoes
every step on what is left, deletes the copies the killed process left, and
names the hashes and person ids that attempt recorded (``resume_interrupted``).

A repeated request (the identifier was erased by an earlier erasure that was
served, and is still suppressed; see ``suppression.erased_by``) that finds
nothing held and no value left in the verification scan is recorded as
``already_erased``, pointing at the earlier request, and nothing is done again:
no database or file rewritten, no second notice. If anything of theirs turned
up again, it is erased in full as above.

Kafka topics may still hold the person's old records: the local broker cannot
delete records. Re-ingesting them is prevented by the suppression list.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from ..config import Settings
from ..warehouse import session
from .matching import IDENTIFIER_TYPES, Matcher
from .store import AUDIT_TABLES, ComplianceError, ensure_compliance_tables, fetch_dicts
from .subject import DEFAULT_MAX_IDENTIFIERS, Seed, Subject, resolve_subject
from .suppression import add_suppressions, erased_by

log = logging.getLogger(__name__)

ERASURE_TOPIC = "erasure"
HASH_FORMULA = "sha256(OMNIVUE_PSEUDONYM_KEY + ':' + identifier_type + ':' + normalised value), hex"

#: Tables whose rows that merely mention the person are deleted (not redacted): they are the person's records.
DELETE_ON_MENTION = frozenset({"dead_letter"})

_NON_TEXT_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                   "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL", "BOOLEAN", "DATE", "TIME", "TIMESTAMP",
                   "INTERVAL", "DECIMAL", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S",
                   "TIME WITH TIME ZONE", "UUID")


def new_request_id(kind: str) -> str:
    return f"{'era' if kind == 'erasure' else 'acc'}_{datetime.now(timezone.utc):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:8]}"


@dataclass
class ErasureResult:
    request_id: str
    subject: Subject
    dry_run: bool = False
    suppressed_new: int = 0
    warehouse: dict[str, dict[str, int]] = field(default_factory=dict)
    snapshot: dict[str, Any] = field(default_factory=dict)
    databases: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)
    notice: dict[str, Any] = field(default_factory=dict)
    #: the earlier served erasure that already erased the identifier (see :func:`erased_before`), when nothing
    #: was done again
    already_erased: dict[str, Any] | None = None

    @property
    def clean(self) -> bool:
        return not self.verification.get("file_hits") and not self.verification.get("table_hits")

    @property
    def status(self) -> str:
        """The request's status in ``subject_requests`` once served."""
        if self.already_erased:
            return "already_erased"
        return "served" if self.clean else "served_with_residue"

    def details(self, key: str) -> dict[str, Any]:
        """What was erased where: counts and keyed hashes, never a value."""
        return {
            "identifiers": [{"type": t, "hash": h} for t, h in self.subject.hashes(key)],
            "persons": len(self.subject.person_ids), "events": len(self.subject.event_ids),
            "found": self.subject.found, "notes": self.subject.notes, "suppression": {"added": self.suppressed_new},
            "warehouse": self.warehouse, "snapshot": self.snapshot, "databases": self.databases,
            "files": self.files, "verification": self.verification, "notice": self.notice,
        } | ({"already_erased_by": self.already_erased} if self.already_erased else {})

    def _render_already_erased(self) -> str:
        e, seed = self.already_erased or {}, self.subject.seeds[0]
        at = datetime.fromisoformat(e["served_at"]).isoformat(timespec="seconds")
        if e["same_identifier"]:
            what = f"already erased by request {e['request_id']} at {at} (the {seed.type} given is the one it named)"
        else:
            persons = ", ".join(e["person_ids"])
            what = (f"already erased: the {seed.type} given was erased" + (f" with person {persons}" if persons else "")
                    + f" by request {e['request_id']} (which named their {e['identifier_type']}) at {at}")
        done = ("nothing would be done again" if self.dry_run else
                "nothing was done again (no snapshot, database or file rewritten, no second erasure notice)")
        v = self.verification
        lines = [f"request {self.request_id}: {what}: {done}",
                 f"  checked again: {v.get('files_scanned', 0)} files and {v.get('tables_scanned', 0)} tables "
                 "scanned, no value left"]
        if not self.dry_run:
            lines.append(f"  recorded in subject_requests as already_erased, pointing at {e['request_id']}")
        return "\n".join(lines)

    def render(self) -> str:
        if self.already_erased:
            return self._render_already_erased()
        verb = "would erase" if self.dry_run else "erased"
        s = self.subject
        lines = [f"request {self.request_id}: {verb} {len(s.identifiers)} identifiers of {len(s.person_ids)} "
                 f"person(s) ({', '.join(s.person_ids) or 'not in identity_map'}), {len(s.event_ids)} events"]
        for note in s.notes:
            lines.append(f"  note: {note}")
        if not s.found:
            lines.append("  nothing held on this identifier" + ("" if self.dry_run else
                                                                  " (its hash is suppressed all the same)"))
        rows = {t: c for t, c in self.warehouse.items() if c.get("deleted") or c.get("redacted")}
        if rows:
            lines.append("  warehouse: " + ", ".join(
                f"{t} {c.get('deleted', 0)}" + (f" (+{c['redacted']} redacted)" if c.get("redacted") else "")
                for t, c in sorted(rows.items())))
        if self.snapshot:
            snap_rows = {t: c for t, c in self.snapshot.get("tables", {}).items() if c.get("deleted")}
            lines.append(f"  snapshot: {self.snapshot.get('action', '-')}" + (
                ": " + ", ".join(f"{t} {c['deleted']}" for t, c in sorted(snap_rows.items())) if snap_rows else ""))
        for name, info in sorted(self.databases.items()):
            lines.append(f"  {name}: {info.get('action')}")
        if self.files:
            lines.append("  files: " + ", ".join(f"{p} ({f['action']} {f.get('count', '')})".replace(" )", ")")
                                                 for p, f in sorted(self.files.items())))
        if not self.dry_run:
            v = self.verification
            lines.append(f"  verification: {v.get('files_scanned', 0)} files and {v.get('tables_scanned', 0)} tables "
                         f"scanned, " + ("no value left" if self.clean else
                                         f"VALUES LEFT in {sorted(v.get('file_hits', {})) + sorted(v.get('table_hits', {}))}"))
            n = self.notice
            lines.append(f"  erasure notice on topic {ERASURE_TOPIC!r}: "
                         + ("published" if n.get("published") else f"PENDING ({n.get('error', 'not sent')}); "
                            "`omnivue subject serve` retries it"))
            lines.append(f"  {self.suppressed_new} identifier hashes added to the suppression list")
        return "\n".join(lines)


# --- the publish lock ------------------------------------------------------------------------

def _publish_lock(settings: Settings):
    from ..publish import publish_lock

    return publish_lock(settings)


# --- databases -------------------------------------------------------------------------------

def _classify(column: str) -> str | None:
    n = column.lower()
    if n == "person_id" or n.endswith("_person_id"):
        return "person"
    if n == "event_id" or n.endswith("_event_id"):
        return "event"
    if n.endswith("_event_ids"):  # a comma-separated list (ereputation_daily.top_negative_event_ids)
        return "event_list"
    if n in IDENTIFIER_TYPES or n.endswith("identifier_value"):
        return "value"
    if "node_key" in n or n == "component_key":
        return "node"
    if n.endswith("identifier_hash"):
        return "hash"
    return None


def _is_text(data_type: str) -> bool:
    t = data_type.upper()
    return not (t in _NON_TEXT_TYPES or t.startswith("DECIMAL") or t.startswith("TIMESTAMP"))


def _base_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return [(s, t) for s, t in con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = current_database() "
        "and not internal and not temporary order by schema_name, table_name").fetchall()]


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    return con.execute("select column_name, data_type from duckdb_columns() where database_name = current_database() "
                       "and schema_name = ? and table_name = ? order by column_index", [schema, table]).fetchall()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def erase_in_database(con: duckdb.DuckDBPyConnection, subject: Subject, key: str, apply: bool = True,
                      audit_tables: frozenset[str] = AUDIT_TABLES) -> dict[str, dict[str, int]]:
    """Delete the person's rows from every base table of the open database;
    redact their values from the text of other rows. Returns counts per table."""
    keysets = {
        "person": sorted(subject.person_ids),
        "event": sorted(subject.event_ids),
        "value": sorted({i.value for i in subject.identifiers} | {s.value for s in subject.seeds if s.value}),
        "node": sorted({i.node_key for i in subject.identifiers}),
        "hash": sorted({h for _, h in subject.hashes(key)}),
    }
    matcher = subject.matcher
    out: dict[str, dict[str, int]] = {}
    for schema, table in _base_tables(con):
        name = table if schema == "main" else f"{schema}.{table}"
        fq = f"{_q(schema)}.{_q(table)}"
        cols = _columns(con, schema, table)
        doomed: set[int] = set()
        if table not in audit_tables:
            conds, params = [], []
            for col, _ in cols:
                kind = _classify(col)
                if kind == "event_list":
                    # a row quoting one of their events (its id, and beside it the text they wrote) is theirs
                    # too: deleted here; the next run rebuilds it without them (its inputs changed)
                    if keysets["event"]:
                        conds.append(f"list_has_any(?::varchar[], string_split(cast({_q(col)} as varchar), ','))")
                        params.append(keysets["event"])
                elif kind and keysets[kind]:
                    conds.append(f"list_contains(?::varchar[], cast({_q(col)} as varchar))")
                    params.append(keysets[kind])
            if conds:
                doomed |= {r for (r,) in con.execute(f"select rowid from {fq} where {' or '.join(conds)}",
                                                     params).fetchall()}
        redactions: list[tuple[str, str, int]] = []
        if matcher.re2:
            for col in [c for c, t in cols if _is_text(t)]:
                for rowid, text in con.execute(
                        f"select rowid, cast({_q(col)} as varchar) from {fq} "
                        f"where regexp_matches(cast({_q(col)} as varchar), ?)", [matcher.re2]).fetchall():
                    if rowid in doomed or not matcher.search(text):
                        continue
                    if table in DELETE_ON_MENTION:
                        doomed.add(rowid)
                    else:
                        redactions.append((col, matcher.redact(text), rowid))
        redactions = [r for r in redactions if r[2] not in doomed]
        counts = {"deleted": len(doomed), "redacted": len({r[2] for r in redactions})}
        if apply:
            for col, text, rowid in redactions:
                con.execute(f"update {fq} set {_q(col)} = ? where rowid = ?", [text, rowid])
            if doomed:
                con.execute(f"delete from {fq} where list_contains(?::bigint[], rowid)", [sorted(doomed)])
        if counts["deleted"] or counts["redacted"]:
            out[name] = counts
    return out


def remaining_in_database(con: duckdb.DuckDBPyConnection, subject: Subject, key: str) -> dict[str, int]:
    """Rows still holding one of the person's values or keys (audit tables: values only)."""
    hits = erase_in_database(con, subject, key, apply=False)
    return {t: c["deleted"] + c["redacted"] for t, c in hits.items() if c["deleted"] or c["redacted"]}


def compact_into(con: duckdb.DuckDBPyConnection, target: Path) -> None:
    """Write the open database into a fresh file (no free pages, no old values)."""
    catalog = con.execute("select current_database()").fetchone()[0]
    target.unlink(missing_ok=True)
    Path(f"{target}.wal").unlink(missing_ok=True)
    con.execute("checkpoint")
    con.execute("attach '" + str(target).replace("'", "''") + "' as omnivue_compact")
    try:
        con.execute(f"copy from database {_q(catalog)} to omnivue_compact")
    finally:
        con.execute("detach omnivue_compact")


def remove_work_files(path: Path) -> None:
    """Delete the copies of a DuckDB file that a killed erasure or publish left beside it (``.<name>.*.tmp``
    and their WALs). Call it holding the publish lock: nobody else works on them then."""
    for stale in path.parent.glob(f".{path.name}.*.tmp*"):
        stale.unlink(missing_ok=True)


def erase_duckdb_copy(path: Path, subject: Subject, key: str, apply: bool = True) -> dict[str, Any]:
    """Erase from a DuckDB file others may be reading: work on a copy, rename a fresh file over it."""
    if not apply:
        with closing(duckdb.connect(str(path), read_only=True)) as con:
            return {"action": "would rewrite", "tables": erase_in_database(con, subject, key, apply=False)}
    work = path.with_name(f".{path.name}.erase-{os.getpid()}.tmp")
    fresh = path.with_name(f".{path.name}.fresh-{os.getpid()}.tmp")
    shutil.copyfile(path, work)
    try:
        with closing(duckdb.connect(str(work))) as con:
            tables = erase_in_database(con, subject, key)
            compact_into(con, fresh)
        os.replace(fresh, path)
    finally:
        for p in (work, Path(f"{work}.wal"), fresh, Path(f"{fresh}.wal")):
            p.unlink(missing_ok=True)
    return {"action": "rewritten", "tables": tables}


# --- files -----------------------------------------------------------------------------------

def _is_binary(data: bytes) -> bool:
    return data.startswith(b"SQLite format 3\x00") or b"\x00" in data[:8192]


def _scrub_json(obj: Any, matcher: Matcher) -> tuple[Any, int]:
    removed = 0
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if matcher.search(str(k)) or (isinstance(v, str) and matcher.search(v)):
                removed += 1
                continue
            if isinstance(v, (dict, list)):
                v, n = _scrub_json(v, matcher)
                removed += n
            out[k] = v
        return out, removed
    if isinstance(obj, list):
        out_list = []
        for item in obj:
            if matcher.search(item if isinstance(item, str) else json.dumps(item, ensure_ascii=False, default=str)):
                removed += 1
                continue
            out_list.append(item)
        return out_list, removed
    return obj, 0


def _write_in_place(path: Path, data: bytes) -> None:
    """Rewrite a file's content in place (same inode: writers appending to it keep working)."""
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())


def scrub_files(home: Path, matcher: Matcher, skip: set[Path], apply: bool = True) -> dict[str, dict[str, Any]]:
    """Remove the person's values from every text file under ``home``."""
    out: dict[str, dict[str, Any]] = {}
    if not matcher or not home.exists():
        return out
    for path in sorted(home.rglob("*")):
        if not path.is_file() or path.is_symlink() or path in skip or path.suffix == ".duckdb" \
                or path.name.endswith(".duckdb.wal"):
            continue
        try:
            with open(path, "rb") as f:
                head = f.read(8192)
                if not head or _is_binary(head):
                    continue  # databases and other binaries: the verification scan reports them
                data = head + f.read()
        except OSError:
            continue
        text = data.decode("utf-8", errors="surrogateescape")
        if not matcher.search(text):
            continue
        rel = str(path.relative_to(home))
        if path.relative_to(home).parts[0] == "exports":
            out[rel] = {"action": "deleted", "count": 1}
            if apply:
                path.unlink()
            continue
        new_text, action, count = None, "lines removed", 0
        if path.suffix == ".json":
            try:
                obj = json.loads(text)
            except ValueError:
                obj = None
            if obj is not None:
                cleaned, count = _scrub_json(obj, matcher)
                new_text = json.dumps(cleaned, indent=1 if "\n " in text else None, ensure_ascii=False)
                action = "entries removed"
                if matcher.search(new_text):  # a value in a scalar the JSON walk keeps: fall back to lines
                    new_text = None
        if new_text is None:
            lines = text.splitlines(keepends=True)
            kept = [line for line in lines if not matcher.search(line)]
            count, new_text, action = len(lines) - len(kept), "".join(kept), "lines removed"
        out[rel] = {"action": action, "count": count}
        if apply:
            _write_in_place(path, new_text.encode("utf-8", errors="surrogateescape"))
    return out


def scan_files(home: Path, matcher: Matcher) -> tuple[int, dict[str, int]]:
    """Byte-level scan of every file under ``home`` (databases included)."""
    hits: dict[str, int] = {}
    scanned = 0
    if not matcher or not home.exists():
        return 0, hits
    for path in sorted(home.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        n = 0
        try:
            with open(path, "rb") as f:
                tail = b""
                while chunk := f.read(8 << 20):
                    # overlap the chunks by the longest spelling a value can have
                    n += matcher.count((tail + chunk).decode("latin-1")) - matcher.count(tail.decode("latin-1"))
                    tail = chunk[-512:]
        except OSError:
            continue
        scanned += 1
        if n:
            hits[str(path.relative_to(home))] = n
    return scanned, hits


# --- the request log and the notice -----------------------------------------------------------

def record_request(con: duckdb.DuckDBPyConnection, request_id: str, kind: str, seed: Seed, requested_by: str | None,
                   reason: str | None, status: str, now: datetime, person_ids: list[str] | None = None,
                   details: dict[str, Any] | None = None, output_path: str | None = None,
                   served: bool = False) -> None:
    ensure_compliance_tables(con)
    exists = con.execute("select count(*) from subject_requests where request_id = ?", [request_id]).fetchone()[0]
    if not exists:
        con.execute("insert into subject_requests (request_id, kind, identifier_type, identifier_hash, requested_by, "
                    "reason, requested_at, status) values (?, ?, ?, ?, ?, ?, ?, ?)",
                    [request_id, kind, seed.type, seed.hash, requested_by, reason, now, status])
    con.execute("update subject_requests set status = ?, served_at = case when ? then ? else served_at end, "
                "person_ids = coalesce(?, person_ids), details = coalesce(?, details), "
                "output_path = coalesce(?, output_path) where request_id = ?",
                [status, served, now, json.dumps(person_ids) if person_ids is not None else None,
                 json.dumps(details, default=str) if details is not None else None, output_path, request_id])


def erasure_notice(request_id: str, hashes: list[tuple[str, str]], person_ids: list[str], now: datetime) -> dict:
    return {
        "type": "erasure", "version": 1, "request_id": request_id, "time": now.isoformat(),
        "identifiers": [{"type": t, "hash": h} for t, h in hashes], "person_ids": person_ids,
        "hash": HASH_FORMULA, "issued_by": "omnivue",
        "action": "erase every record of these identifiers and persons, and drop records carrying them from now on",
    }


def publish_notice(settings: Settings, notice: dict[str, Any]) -> None:
    """Send one erasure notice on the ``erasure`` topic (raises if the broker is unavailable)."""
    from ..kafka_io import ensure_topics, make_producer, wait_for_broker

    wait_for_broker(settings, timeout_s=5)
    ensure_topics(settings, {ERASURE_TOPIC: 1})
    producer = make_producer(settings, max_block_ms=15_000, request_timeout_ms=15_000, retries=3)
    try:
        producer.send(ERASURE_TOPIC, key=notice["request_id"].encode(),
                      value=json.dumps(notice).encode()).get(timeout=30)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


def send_notice(settings: Settings, request_id: str, hashes: list[tuple[str, str]], person_ids: list[str],
                now: datetime) -> dict[str, Any]:
    try:
        publish_notice(settings, erasure_notice(request_id, hashes, person_ids, now))
        return {"topic": ERASURE_TOPIC, "published": True, "published_at": datetime.now(timezone.utc).isoformat()}
    except Exception as exc:  # the erasure itself is done: the notice stays pending, retried later
        log.warning("erasure notice for %s not published (%s): pending", request_id, exc)
        return {"topic": ERASURE_TOPIC, "published": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


# --- the whole erasure -------------------------------------------------------------------------

def erased_before(con: duckdb.DuckDBPyConnection, seeds: list[Seed]) -> dict[str, Any] | None:
    """The served erasure that already erased every identifier the request names (the first one's), or None."""
    found = [erased_by(con, s.hash) for s in seeds]
    if not found or not all(found):
        return None
    e = found[0]
    return {"request_id": e["request_id"], "identifier_type": e["identifier_type"],
            "served_at": datetime.fromisoformat(e["served_at"]).astimezone(timezone.utc).isoformat(),
            "same_identifier": e["identifier_hash"] == seeds[0].hash, "person_ids": e.get("person_ids") or []}


def resume_interrupted(con: duckdb.DuckDBPyConnection, subject: Subject, key: str, request_id: str) -> None:
    """Serving again a request whose earlier attempt was killed or failed half-way (``in_progress`` or
    ``failed``): that attempt may have deleted the person's warehouse rows already, so the identifier hashes and
    person ids it recorded are added to the subject (the request and its notice name them all)."""
    rows = fetch_dicts(con, "select status, person_ids, details from subject_requests where request_id = ? "
                            "and status in ('in_progress', 'failed')", [request_id])
    if not rows:
        return
    known = {h for _, h in subject.hashes(key)}
    recorded = (rows[0].get("details") or {}).get("identifiers") or []
    subject.seeds += [Seed(i["type"], i["hash"]) for i in recorded if i["hash"] not in known]
    persons = set(rows[0].get("person_ids") or [])
    if persons and not subject.found:
        subject.notes[:] = [f"an earlier attempt at this request ({rows[0]['status']}) had already removed them "
                            "from identity_map: the identifier hashes and person ids it recorded are named again"]
    subject.person_ids = sorted(set(subject.person_ids) | persons)


def erase_subject(settings: Settings, seeds: list[Seed], requested_by: str | None = None, reason: str | None = None,
                  request_id: str | None = None, dry_run: bool = False,
                  max_identifiers: int = DEFAULT_MAX_IDENTIFIERS) -> ErasureResult:
    """Erase the person named by ``seeds`` from everything under OMNIVUE_HOME (see the module doc)."""
    if not settings.warehouse.exists():
        raise ComplianceError(f"{settings.warehouse} does not exist yet: nothing is held (run `omnivue run` first)")
    key = settings.pseudonym_key
    request_id = request_id or new_request_id("erasure")
    now = datetime.now(timezone.utc)
    home = settings.home
    skip = {settings.warehouse, Path(f"{settings.warehouse}.wal"), settings.published,
            Path(f"{settings.published}.wal")}
    with _publish_lock(settings):
        with session(settings.warehouse, read_only=dry_run) as con:
            if not dry_run:
                ensure_compliance_tables(con)
            subject = resolve_subject(con, key, seeds, max_identifiers=max_identifiers)
            if not dry_run:
                resume_interrupted(con, subject, key, request_id)
            result = ErasureResult(request_id, subject, dry_run=dry_run)
            earlier = erased_before(con, seeds)
            if earlier is not None:
                # asked again: done already, unless something of theirs turned up since (checked under the lock)
                verification = {} if subject.found else verify_erased(settings, subject, key)
                if not subject.found and not verification["file_hits"] and not verification["table_hits"]:
                    result.already_erased, result.verification = earlier, verification
                    subject.notes.clear()  # "not in identity_map yet": it was, until the earlier erasure
                    result.notice = {"topic": ERASURE_TOPIC, "published": False,
                                     "not_sent": f"already erased by request {earlier['request_id']}, whose notice "
                                                 "named these identifiers"}
                    if not dry_run:
                        record_request(con, request_id, "erasure", seeds[0], requested_by, reason, result.status,
                                       now, person_ids=earlier["person_ids"], details=result.details(key),
                                       served=True)
                    return result
                subject.notes.append(f"already erased by request {earlier['request_id']} at {earlier['served_at']}, "
                                     "but values of theirs were found again: erased again")
            matcher = subject.matcher
            if dry_run:
                result.warehouse = erase_in_database(con, subject, key, apply=False)
            else:
                con.begin()
                result.suppressed_new = add_suppressions(con, subject.hashes(key), request_id, "erasure", now)
                record_request(con, request_id, "erasure", seeds[0], requested_by, reason, "in_progress", now,
                               person_ids=subject.person_ids, details=result.details(key))  # resume_interrupted
                con.commit()
            # the analysts' snapshot, and any other DuckDB file under OMNIVUE_HOME
            if settings.published.exists():
                result.snapshot = erase_duckdb_copy(settings.published, subject, key, apply=not dry_run)
            if not dry_run:
                remove_work_files(settings.published)
            for path in sorted(home.rglob("*.duckdb")):
                if path in skip or path.name.startswith("."):
                    continue
                rel = str(path.relative_to(home))
                if not dry_run:
                    remove_work_files(path)
                try:
                    result.databases[rel] = erase_duckdb_copy(path, subject, key, apply=not dry_run)
                except duckdb.Error as exc:
                    result.databases[rel] = {"action": f"not processed ({type(exc).__name__})"}
            result.files = scrub_files(home, matcher, skip, apply=not dry_run)
            if dry_run:
                return result
            # the warehouse last (the values are still needed above), then a fresh file
            con.begin()
            result.warehouse = erase_in_database(con, subject, key)
            con.commit()
            remove_work_files(settings.warehouse)
            fresh = settings.warehouse.with_name(f".{settings.warehouse.name}.fresh-{os.getpid()}.tmp")
            try:
                compact_into(con, fresh)
                os.replace(fresh, settings.warehouse)  # still holding the old file: nobody writes in between
            finally:
                fresh.unlink(missing_ok=True)
                Path(f"{fresh}.wal").unlink(missing_ok=True)
    result.verification = verify_erased(settings, subject, key)
    result.notice = send_notice(settings, request_id, subject.hashes(key), subject.person_ids, now)
    with session(settings.warehouse) as con:
        record_request(con, request_id, "erasure", seeds[0], requested_by, reason, result.status,
                       datetime.now(timezone.utc), person_ids=subject.person_ids, details=result.details(key),
                       served=True)
        if result.notice.get("published"):
            con.execute("update subject_requests set notice_published_at = ? where request_id = ?",
                        [datetime.now(timezone.utc), request_id])
    log.info("erasure %s: %s", request_id, "verified clean" if result.clean else "values left, see the request")
    return result


def verify_erased(settings: Settings, subject: Subject, key: str) -> dict[str, Any]:
    """Scan every file and every table for the person's values (the proof recorded with the request).

    Tables are checked for the person's keys and values (audit tables, which keep
    pseudonymous ids and hashes by design, for values only); files byte by byte."""
    table_hits: dict[str, int] = {}
    tables = 0
    for label, path in (("warehouse", settings.warehouse), ("snapshot", settings.published)):
        if not path.exists():
            continue
        with session(path, read_only=True) as con:
            tables += len(_base_tables(con))
            for t, n in remaining_in_database(con, subject, key).items():
                table_hits[f"{label}.{t}"] = n
    scanned, file_hits = scan_files(settings.home, subject.matcher)
    return {"files_scanned": scanned, "file_hits": file_hits, "tables_scanned": tables, "table_hits": table_hits}
