"""Progress reporting for long work: a rich bar on a terminal, periodic log
lines otherwise (CI, Airflow task logs)."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType

log = logging.getLogger("omnivue.progress")


class Progress:
    """``with Progress("ingest", total=n) as p: p.advance(k)``"""

    def __init__(self, description: str, total: int | None = None, unit: str = "events",
                 every_s: float = 5.0, enabled: bool = True) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.done = 0
        self._every = every_s
        self._last = 0.0
        self._start = time.monotonic()
        self._bar = None
        self._task = None
        self._enabled = enabled

    def __enter__(self) -> "Progress":
        if self._enabled and sys.stderr.isatty():
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress,
                                       TextColumn, TimeElapsedColumn, TimeRemainingColumn)

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn(self.unit), TimeElapsedColumn(), TimeRemainingColumn(),
                                     transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total)
        return self

    def set_total(self, total: int) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
        elif self._enabled:
            now = time.monotonic()
            if now - self._last >= self._every:
                self._last = now
                of = f"/{self.total}" if self.total else ""
                rate = self.done / max(now - self._start, 1e-9)
                log.info("%s: %d%s %s (%.0f/s)", self.description, self.done, of, self.unit, rate)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
