"""Shared fixtures: a real local broker (Tansu) per test, isolated data dirs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
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


@contextmanager
def other_group_member(settings, keep_polling: bool) -> Iterator[list[set]]:
    """A second real kafka-python consumer in ingest's group, subscribed to the input topics, that
    holds every partition once it joined. ``keep_polling``: it goes on polling (another ingester
    running), so it gives up part of them when someone joins; otherwise it stops polling (busy or
    stuck) and keeps them all. Yields its assignments so far, oldest first."""
    from omnivue.envelope import INPUT_TOPICS
    from omnivue.kafka_io import make_consumer

    consumer = make_consumer(settings, settings.consumer_group, client_id="other-member")
    consumer.subscribe(list(INPUT_TOPICS))
    held: list[set] = []

    def poll() -> None:
        consumer.poll(timeout_ms=200)
        if consumer.assignment() != (held[-1] if held else set()):
            held.append(set(consumer.assignment()))

    deadline = time.monotonic() + 30
    while len(held[-1] if held else ()) < 4 * len(INPUT_TOPICS) and time.monotonic() < deadline:
        poll()
    assert held and len(held[-1]) == 4 * len(INPUT_TOPICS), "the other member got no partitions"
    stop = threading.Event()

    def follow() -> None:
        while not stop.is_set():
            poll()

    poller = threading.Thread(target=follow, daemon=True)
    if keep_polling:
        poller.start()
    try:
        yield held
    finally:
        stop.set()
        if keep_polling:
            poller.join(timeout=10)
        consumer.close(autocommit=False)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the real ``omnivue`` console script."""
    full_env = {**os.environ, **(env or {})}
    exe = Path(sys.executable).with_name("omnivue")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=full_env, timeout=timeout,
                          cwd=ROOT)
