"""Runtime settings, read from the environment in one place.

Every component takes the Kafka bootstrap servers from ``OMNIVUE_KAFKA_BOOTSTRAP``
and its data directory from ``OMNIVUE_HOME``; nothing else hard-codes a path
or an address, so a real cluster is one setting away.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_HOME = ".omnivue"
#: Records per ingest batch (one validation query, one landing transaction): docs/benchmarks.md
DEFAULT_BATCH_SIZE = 40_000

#: The repository root (dags/, dbt_project/, contracts/ live there).
PROJECT_DIR = Path(os.environ.get("OMNIVUE_PROJECT_DIR", Path(__file__).resolve().parents[2]))


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one process."""

    home: Path
    bootstrap: str
    consumer_group: str
    pseudonym_key: str
    keep_raw: bool = False  # landed_events.raw: the record's original text (OMNIVUE_INGEST_KEEP_RAW=1)

    # --- paths under OMNIVUE_HOME -------------------------------------------------
    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def published_dir(self) -> Path:
        return self.home / "published"

    @property
    def published(self) -> Path:
        return self.published_dir / "customer_view.duckdb"

    @property
    def broker_dir(self) -> Path:
        return self.home / "broker"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def truth_file(self) -> Path:
        return self.home / "truth.json"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap.split(",") if s.strip()]


def load_settings() -> Settings:
    """Read the settings from the environment (call again after changing it)."""
    home = Path(os.environ.get("OMNIVUE_HOME", DEFAULT_HOME)).expanduser().resolve()
    return Settings(
        home=home,
        bootstrap=os.environ.get("OMNIVUE_KAFKA_BOOTSTRAP") or DEFAULT_BOOTSTRAP,  # empty: the default
        consumer_group=os.environ.get("OMNIVUE_CONSUMER_GROUP", "omnivue-ingest"),
        pseudonym_key=os.environ.get("OMNIVUE_PSEUDONYM_KEY", "omnivue-local-dev-key"),
        keep_raw=os.environ.get("OMNIVUE_INGEST_KEEP_RAW", "0") not in ("", "0", "false", "no"),
    )


def contracts_dir() -> Path:
    return PROJECT_DIR / "contracts"


def dbt_project_dir() -> Path:
    return PROJECT_DIR / "dbt_project"


def dags_dir() -> Path:
    return PROJECT_DIR / "dags"
