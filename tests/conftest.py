"""Shared fixtures: a real local broker (Tansu) per test, isolated data dirs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The machine is offline: no telemetry anywhere.
os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def omnivue_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh OMNIVUE_HOME and a bootstrap address on a free loopback port."""
    env = {
        "OMNIVUE_HOME": str(tmp_path / "home"),
        "OMNIVUE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def broker(omnivue_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """A real local Kafka-protocol broker with the DESIGN.md topics."""
    from omnivue import broker as broker_mod
    from omnivue.config import load_settings

    settings = load_settings()
    broker_mod.start(settings)
    try:
        yield omnivue_env
    finally:
        broker_mod.stop(settings)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the real ``omnivue`` console script."""
    full_env = {**os.environ, **(env or {})}
    exe = Path(sys.executable).with_name("omnivue")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=full_env, timeout=timeout,
                          cwd=ROOT)
