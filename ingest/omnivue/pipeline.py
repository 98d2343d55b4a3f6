"""Run the ``customer_view`` Airflow DAG once, in process, without a server
(``dag.test()``), and report what happened.

Airflow reads its configuration when first imported, so the environment is
prepared here before any Airflow import: AIRFLOW_HOME under OMNIVUE_HOME, a
SQLite metadata database, examples off, the project's dags folder, and every
telemetry off (the machine may be offline).
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from .config import Settings, dags_dir, dbt_project_dir

log = logging.getLogger(__name__)

DAG_ID = "customer_view"


@dataclass
class RunOutcome:
    ok: bool
    run_id: str
    state: str
    tasks: list[tuple[str, str, float | None]] = field(default_factory=list)
    seconds: float = 0.0
    summary: str = ""
    log_file: Path | None = None
    started_at: datetime | None = None

    def render(self) -> str:
        lines = [f"DAG {DAG_ID} run {self.run_id}: {self.state} in {self.seconds:.1f}s"]
        not_run = [t for t, state, _ in self.tasks if state in NOT_RUN]
        for task_id, state, dur in self.tasks:
            if state not in NOT_RUN:
                lines.append(f"  {task_id:<45} {state:<16} {'' if dur is None else f'{dur:.1f}s'}")
        if not_run:
            lines.append(f"  ... {len(not_run)} tasks not run (after a failed one)")
        failed = [t for t, state, _ in self.tasks if state == "failed"]
        if failed:
            reasons = failure_reasons(self.log_file) if self.log_file else {}
            lines.extend(f"failed: {t}" + (f": {reasons[t]}" if t in reasons else "") for t in failed)
            if self.log_file:
                lines.append(f"details in {self.log_file}")
        elif self.log_file:
            lines.append(f"Airflow log: {self.log_file}")
        if self.summary:
            lines.append(self.summary)
        return "\n".join(lines)


#: states of the tasks a failure upstream kept from running
NOT_RUN = ("upstream_failed", "None", "skipped")

_TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+)")
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Rejected|Shared|Unavailable)\b[^:\n]*: (.+)$")


def failure_reasons(log_file: Path) -> dict[str, str]:
    """The message of the last exception each task raised, from the run's Airflow log (``dag.test()``
    writes each task's traceback between its start and end lines)."""
    reasons: dict[str, str] = {}
    task = None
    try:
        with open(log_file, encoding="utf-8", errors="replace") as f:
            for line in f:
                if (m := _TASK_START.search(line)) is not None:
                    task = m.group(1)
                elif task is not None and (m := _EXCEPTION.match(line)) is not None:
                    reasons[task] = m.group(1).strip()
    except OSError:
        return {}
    return reasons


def airflow_environment(settings: Settings) -> dict[str, str]:
    home = settings.airflow_home
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_dir()),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "1",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos_cache"),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "omnivue",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(settings.logs_dir / "airflow"),
        "DO_NOT_TRACK": "1",
        "SCARF_NO_ANALYTICS": "true",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DBT_VERSION_CHECK": "False",
        "DBT_USE_COLORS": "False",
        "SODA_CORE_TELEMETRY_ENABLED": "false",
        "OMNIVUE_WAREHOUSE": str(settings.warehouse),
    }


def ensure_manifest(settings: Settings) -> Path:
    """``dbt parse`` when the manifest is missing or older than any project file,
    so the DAG renders from it without calling dbt at parse time. Several processes
    may share the project (runs on other data directories, a scheduler parsing the
    DAG): one parses at a time, into a directory of its own, and the new manifest
    replaces the old in one rename, so a reader never sees half a file."""
    import fcntl
    import shutil

    project = dbt_project_dir()
    target = project / "target"
    manifest = target / "manifest.json"

    def up_to_date() -> bool:
        newest = max((p.stat().st_mtime for p in project.rglob("*")
                      if p.is_file() and not {"target", "logs"} & set(p.relative_to(project).parts)), default=0)
        return manifest.exists() and manifest.stat().st_mtime >= newest

    if up_to_date():
        return manifest
    target.mkdir(exist_ok=True)
    with open(target / ".parse.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if up_to_date():  # another process parsed it while this one waited
            return manifest
        work = target / f".parse-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            if (target / "partial_parse.msgpack").exists():  # dbt re-parses only what changed
                shutil.copy2(target / "partial_parse.msgpack", work / "partial_parse.msgpack")
            dbt = str(Path(sys.executable).with_name("dbt"))
            log.info("dbt parse (the project changed since the last manifest)")
            proc = subprocess.run([dbt, "parse", "--project-dir", str(project), "--profiles-dir", str(project),
                                   "--profile", "omnivue", "--target", "dev", "--target-path", str(work), "--quiet"],
                                  cwd=project, capture_output=True, text=True,
                                  env={**os.environ, **airflow_environment(settings)})
            if proc.returncode != 0:
                raise RuntimeError(f"dbt parse failed:\n{proc.stdout}\n{proc.stderr}")
            if (work / "partial_parse.msgpack").exists():
                os.replace(work / "partial_parse.msgpack", target / "partial_parse.msgpack")
            os.replace(work / "manifest.json", manifest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return manifest


class _TaskProgress(threading.Thread):
    """Reports the run's task states every few seconds (read from Airflow's SQLite metadata
    database) on the terminal, while Airflow's own output goes to the log file."""

    def __init__(self, db_file: Path, total: int, out_fd: int) -> None:
        super().__init__(daemon=True)
        self.db_file, self.total, self.out_fd = db_file, total, out_fd
        self.stop = threading.Event()
        self.tty = os.isatty(out_fd)

    def run(self) -> None:
        last = ""
        while not self.stop.wait(2.0 if self.tty else 10.0):
            try:
                con = sqlite3.connect(f"file:{self.db_file}?mode=ro", uri=True, timeout=1)
                rows = con.execute(
                    "select ti.task_id, ti.state from task_instance ti join dag_run dr on dr.run_id = ti.run_id "
                    "and dr.dag_id = ti.dag_id where ti.dag_id = ? and dr.id = (select max(id) from dag_run "
                    "where dag_id = ?)", (DAG_ID, DAG_ID)).fetchall()
                con.close()
            except sqlite3.Error:
                continue
            done = sum(1 for _, st in rows if st in ("success", "failed", "upstream_failed", "skipped"))
            running = [t for t, st in rows if st == "running"]
            line = f"  [{done}/{self.total}] tasks done" + (f", running {running[0]}" if running else "")
            if line != last:
                os.write(self.out_fd, ((("\r\033[K" if self.tty else "") + line) + ("" if self.tty else "\n")).encode())
                last = line
        if self.tty and last:
            os.write(self.out_fd, b"\r\033[K")


@contextmanager
def _output_to(path: Path, enabled: bool = True) -> Iterator[int]:
    """Send this process's stdout/stderr (Airflow's own logging) to a file; yields the
    terminal's stderr for progress lines."""
    if not enabled:
        yield 2
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield saved[1]
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


class RunInProgress(RuntimeError):
    """Another pipeline run holds the data directory."""


@contextmanager
def single_run(settings: Settings) -> Iterator[None]:
    """Hold ``OMNIVUE_HOME/.run.lock`` for one run: two runs would share the consumer group's
    partitions, and neither ingest could ever count itself caught up (each would wait, then fail:
    kafka_io.GroupShared)."""
    import fcntl

    settings.home.mkdir(parents=True, exist_ok=True)
    with open(settings.home / ".run.lock", "a+") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise RunInProgress(f"another pipeline run (`omnivue run` or `omnivue demo`, pid {lock.read().strip() or '?'}) "
                                f"is in progress on {settings.home}: run one at a time") from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield  # the lock goes with the file


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the run (the task it was in failed; nothing after it ran)."""


@contextmanager
def _stops_on_signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM stop the whole run. In ``dag.test()`` Airflow runs each task in this
    process: it takes a KeyboardInterrupt inside a task for a task failure (and retries the
    task), and its own SIGTERM handler, installed for every task, only calls the operator's
    on_kill: the run went on. Here the signal interrupts the task it lands in, Airflow's SIGTERM
    handler still runs first, and no task starts after it."""
    import signal

    from airflow.sdk.definitions import dag as dag_module

    stopped_by: list[str] = []  # the signal's name, once one came

    def on_signal(signum: int, frame) -> None:
        if not stopped_by:
            stopped_by.append(signal.Signals(signum).name)
            raise RunInterrupted(stopped_by[0])

    real_signal, real_run_task = signal.signal, dag_module._run_task

    def chained_signal(signum, handler):
        if signum != signal.SIGTERM or not callable(handler):
            return real_signal(signum, handler)

        def both(sig, frame):  # e.g. Airflow's handler for a task (the operator's on_kill), then ours
            try:
                handler(sig, frame)
            finally:
                on_signal(sig, frame)

        return real_signal(signum, both)

    def run_task(**kwargs):  # Airflow took the interrupt for the task's failure: stop the run here
        if stopped_by:
            raise RunInterrupted(stopped_by[0])
        result = real_run_task(**kwargs)
        if stopped_by:
            raise RunInterrupted(stopped_by[0])
        return result

    saved = {sig: real_signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal, dag_module._run_task = chained_signal, run_task
    try:
        yield
    finally:
        signal.signal, dag_module._run_task = real_signal, real_run_task
        for sig, handler in saved.items():
            real_signal(sig, handler)


@contextmanager
def _survivors_frozen_between_tasks() -> Iterator[None]:
    """Every cosmos dbt task ends with a full ``gc.collect()`` (its dbt adapter clean-up). In this
    process, which holds Airflow, dbt and the DAG, such a collect walked ~0.6 M live objects: 0.45 s
    per task, a fifth of a small run. After each task the objects still alive are frozen (out of the
    collector's reach), so the next collect walks only what that task made; all thawed at the end."""
    import gc

    from airflow.sdk.definitions import dag as dag_module

    real_run_task = dag_module._run_task

    def run_task(**kwargs):
        try:
            return real_run_task(**kwargs)
        finally:
            gc.collect()
            gc.freeze()

    dag_module._run_task = run_task
    try:
        yield
    finally:
        dag_module._run_task = real_run_task
        gc.unfreeze()


def run_pipeline(settings: Settings, verbose: bool = False, full_refresh: bool = False) -> RunOutcome:
    """One DAG run; never raises for a failed task (the outcome says so). RunInProgress when
    another run holds the data directory; RunInterrupted on Ctrl-C or SIGTERM. ``full_refresh``:
    the dbt models are rebuilt from all landed events (the DAG's param ``full_refresh``)."""
    with single_run(settings):
        return _run_pipeline(settings, verbose, full_refresh)


def _run_pipeline(settings: Settings, verbose: bool, full_refresh: bool = False) -> RunOutcome:
    os.environ.update(airflow_environment(settings))
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    ensure_manifest(settings)
    start = time.monotonic()
    started_at = datetime.now(timezone.utc)

    log_file = settings.logs_dir / f"airflow-{time.strftime('%Y%m%dT%H%M%S')}.log"
    log.info("running DAG %s in process; Airflow's log: %s", DAG_ID, log_file)
    with _output_to(log_file, enabled=not verbose) as terminal:
        import airflow  # noqa: F401  (reads the environment above)
        from airflow import settings as af_settings
        from airflow.dag_processing.dagbag import DagBag
        from airflow.utils.db import upgradedb
        from airflow.utils.session import create_session

        db_file = Path(af_settings.SQL_ALCHEMY_CONN.removeprefix("sqlite:///"))
        if not db_file.exists():
            upgradedb()
        bag = DagBag(dag_folder=str(dags_dir()))
        if bag.import_errors:
            errors = "; ".join(f"{k}: {v}" for k, v in bag.import_errors.items())
            raise RuntimeError(f"the DAG files do not import: {errors}")
        dag = bag.dags[DAG_ID]
        progress = _TaskProgress(db_file, len(dag.tasks), terminal)
        progress.start()
        try:
            with _stops_on_signals(), _survivors_frozen_between_tasks():
                dag_run = dag.test(run_conf={"full_refresh": full_refresh})
        finally:
            progress.stop.set()
            progress.join(timeout=5)
        with create_session() as s:
            tis = sorted(dag_run.get_task_instances(session=s),
                         key=lambda ti: ti.start_date.timestamp() if ti.start_date else float("inf"))
            tasks = [(ti.task_id, str(ti.state), ti.duration) for ti in tis]
    state = str(dag_run.state)
    return RunOutcome(ok=state == "success", run_id=dag_run.run_id, state=state, tasks=tasks,
                      seconds=time.monotonic() - start, log_file=None if verbose else log_file, started_at=started_at)
