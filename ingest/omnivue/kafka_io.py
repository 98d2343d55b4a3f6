"""Kafka clients (kafka-python), configured in one place from Settings.

Code talks Kafka protocol only; the bootstrap servers come from
``OMNIVUE_KAFKA_BOOTSTRAP`` so a real cluster is one setting.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from .config import Settings
from .envelope import ALERTS_TOPIC, INPUT_TOPICS, encode, route

log = logging.getLogger(__name__)

#: Partitions per topic when omnivue creates them.
PARTITIONS: dict[str, int] = {topic: 4 for topic in INPUT_TOPICS} | {ALERTS_TOPIC: 1, "erasure": 1}


class BrokerUnavailable(RuntimeError):
    """No Kafka broker answered at the configured bootstrap servers."""


class GroupShared(RuntimeError):
    """An ingest until caught up, and other members of its consumer group hold partitions of the
    input topics: it cannot land them, so it could never finish."""


def session_timeout_ms() -> int:
    # A group join on the local broker takes half the session timeout: keep it short locally.
    return int(os.environ.get("OMNIVUE_KAFKA_SESSION_TIMEOUT_MS", "6000"))


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    config: dict[str, Any] = dict(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        linger_ms=20,
        batch_size=512 * 1024,
        max_request_size=2 * 1024 * 1024,
        retries=10,
        request_timeout_ms=30_000,
        client_id="omnivue-producer",
    )
    config.update(overrides)
    require_reachable(settings)
    try:
        return KafkaProducer(**config)
    except KafkaError:
        raise BrokerUnavailable(_unavailable(settings)) from None


def send_event(producer: KafkaProducer, event: Any, value: bytes | None = None) -> Any:
    """Publish one canonical event where DESIGN.md puts it (:func:`omnivue.envelope.route`: the topic of its
    event_type, keyed by its best identity); ``value``: its bytes as they are already written (default
    :func:`omnivue.envelope.encode`). Returns the send's future; ValueError for an unknown event_type."""
    topic, key = route(event)
    return producer.send(topic, key=key, value=encode(event) if value is None else value)


def make_consumer(settings: Settings, group_id: str | None, **overrides: Any) -> KafkaConsumer:
    session = session_timeout_ms()
    config: dict[str, Any] = dict(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=session,
        heartbeat_interval_ms=max(500, session // 3),
        max_poll_records=5000,
        max_poll_interval_ms=300_000,
        fetch_max_bytes=32 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        client_id="omnivue-consumer",
    )
    config.update(overrides)
    require_reachable(settings)
    try:
        return KafkaConsumer(**config)
    except KafkaError:
        raise BrokerUnavailable(_unavailable(settings)) from None


def make_admin(settings: Settings) -> KafkaAdminClient:
    require_reachable(settings)
    try:
        return KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id="omnivue-admin",
                                request_timeout_ms=15_000)
    except KafkaError:
        raise BrokerUnavailable(_unavailable(settings)) from None


def _unavailable(settings: Settings) -> str:
    return (f"no Kafka broker answers at {settings.bootstrap} (OMNIVUE_KAFKA_BOOTSTRAP); "
            "start the local one with `omnivue broker start`")


def ensure_topics(settings: Settings, partitions: dict[str, int] | None = None) -> list[str]:
    """Create the DESIGN.md topics that do not exist yet; return the ones created."""
    wanted = partitions or PARTITIONS
    admin = make_admin(settings)
    try:
        existing = set(admin.list_topics())
        created = []
        for topic, n in wanted.items():
            if topic in existing:
                continue
            try:
                admin.create_topics([NewTopic(topic, n, 1)])
                created.append(topic)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_broker(settings: Settings, timeout_s: float = 30.0) -> None:
    """Block until the bootstrap servers answer a metadata request."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while not bootstrap_reachable(settings):
        if time.monotonic() > deadline:
            raise BrokerUnavailable(_unavailable(settings))
        time.sleep(0.3)
    while time.monotonic() < deadline:
        try:
            admin = make_admin(settings)
            admin.list_topics()
            admin.close()
            return
        except (BrokerUnavailable, KafkaError, OSError) as exc:
            last = exc
            time.sleep(0.3)
    raise BrokerUnavailable(f"{_unavailable(settings)} (waited {timeout_s:.0f}s; last error: {last})")


def bootstrap_reachable(settings: Settings) -> bool:
    """True when at least one bootstrap server accepts a TCP connection."""
    return any(port_open(host, port or 9092) for host, port in map(split_host_port, settings.bootstrap_servers))


def require_reachable(settings: Settings) -> None:
    """BrokerUnavailable at once when no bootstrap server accepts a TCP connection (the clients above
    check it first): kafka-python's own bootstrap retries silently, with a random backoff of up to
    ~25 s, for 30 s before it gives up."""
    if not bootstrap_reachable(settings):
        raise BrokerUnavailable(_unavailable(settings))


def split_host_port(server: str) -> tuple[str, int | None]:
    """``host:port`` (``[v6]:port``, ``:port`` = 127.0.0.1) as (host, port); port None when absent."""
    host, sep, port = server.rpartition(":")
    if not sep or not port.isdigit():
        return server.strip("[]") or "127.0.0.1", None
    return host.strip("[]") or "127.0.0.1", int(port)
