"""Provider webhooks over HTTP: ``POST /webhooks/<provider>`` -> canonical events on Kafka.

    omnivue webhook serve --host 127.0.0.1 --port 8085

Each request body is converted by the provider's adapter (omnivue.adapters),
the events are published (topic by event type, key = the best identity) and
flushed before the answer, so a 200 means the broker has them:

- 200 ``{"accepted", "skipped", "rejected", "events", "reasons"}``: items
  that produced events, items understood but without a canonical event
  (e.g. SendGrid ``deferred``), malformed items (dead-lettered);
- 400 not JSON, 404 unknown provider, 411 no Content-Length, 413 too large,
  422 wrong shape: the body is dead-lettered, the answer says why;
- 503 Kafka unreachable (nothing dead-lettered: the provider retries, and
  the deterministic event ids make the retry harmless) or the warehouse
  stayed locked while a rejection was being recorded.

Rejections go to the warehouse table ``dead_letter`` (topic
``webhook/<provider>``, partition -1, a unique increasing offset), written in
one short session per request: the DuckDB file is never held between requests.
The server binds to localhost by default and does not verify provider
signatures: expose it through a proxy that does (docs/adapters.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .config import Settings, load_settings
from .rejections import item_text as _item_json
from .rejections import raw_text as _text
from .cli_types import port as _port
from .cli_types import positive_int as _positive

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8085
#: Largest accepted request body (SendGrid batches stay well under it).
MAX_BODY_BYTES = 5 * 1024 * 1024
#: How much of a too-large body is kept in its dead letter.
TOO_LARGE_KEEP_BYTES = 64 * 1024
#: How long a rejection waits for the warehouse lock before answering 503.
WAREHOUSE_WAIT_S = 20.0
#: How long publishing may take before answering 503.
PUBLISH_TIMEOUT_S = 10.0
_PROVIDER_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
#: The registered adapters' names, for help texts (here, and in `omnivue backfill`) without importing
#: the adapters; a test keeps it equal to ``omnivue.adapters.ADAPTERS``.
PROVIDER_NAMES: tuple[str, ...] = ("sendgrid", "x", "segment", "mailgun", "amplitude", "facebook", "instagram")


class _Unavailable(Exception):
    """A dependency (Kafka, the warehouse) is unavailable: answer 503."""


_offset_lock = threading.Lock()
_last_offset = 0


def next_offset() -> int:
    """A unique, increasing offset for a webhook dead letter (nanoseconds since the epoch)."""
    global _last_offset
    with _offset_lock:
        _last_offset = max(time.time_ns(), _last_offset + 1)
        return _last_offset


def _providers() -> dict[str, Any]:
    from .adapters import ADAPTERS

    return ADAPTERS


# --- the server ---------------------------------------------------------------------------------

def _close_producer(producer: Any, timeout_s: float) -> None:
    try:
        producer.close(timeout=timeout_s)
    except Exception:  # closing a broken producer must not fail anything
        log.debug("closing the webhook producer failed", exc_info=True)


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, settings: Settings, host: str, port: int, max_body_bytes: int = MAX_BODY_BYTES,
                 publish_timeout_s: float = PUBLISH_TIMEOUT_S, warehouse_wait_s: float = WAREHOUSE_WAIT_S) -> None:
        self.settings = settings
        self.max_body_bytes = max_body_bytes
        self.publish_timeout_s = publish_timeout_s
        self.warehouse_wait_s = warehouse_wait_s
        self.adapters = _providers()
        self._producer: Any = None
        self._producer_lock = threading.Lock()
        super().__init__((host, port), WebhookHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    # -- Kafka --------------------------------------------------------------------------------
    def producer(self) -> Any:
        with self._producer_lock:
            if self._producer is None:
                from .kafka_io import BrokerUnavailable, make_producer

                try:  # BrokerUnavailable at once when no bootstrap server answers (kafka_io.require_reachable)
                    timeout_ms = int(self.publish_timeout_s * 1000)
                    self._producer = make_producer(
                        self.settings, client_id="omnivue-webhook", linger_ms=5, bootstrap_timeout_ms=timeout_ms,
                        max_block_ms=timeout_ms, request_timeout_ms=timeout_ms // 2,
                        delivery_timeout_ms=timeout_ms, retries=3)
                except BrokerUnavailable as exc:
                    raise _Unavailable(f"kafka_unavailable: {exc}") from None
            return self._producer

    def _drop_producer(self, wait: bool = False) -> None:
        """Forget the producer and close it. kafka-python's close() flushes first, and while a batch of
        a failed publish is still pending it raises instead of closing: the producer's sender thread
        and sockets stayed open for good, one more after each failure. So after a failure it is closed
        in the background once its batches have expired (delivery_timeout_ms: they fail, the client
        was answered 503 and sends again); ``wait``: close now (shutdown: nothing is pending)."""
        with self._producer_lock:
            producer, self._producer = self._producer, None
        if producer is None:
            return
        if wait:
            _close_producer(producer, 2.0)
            return
        expiry_s = producer.config.get("delivery_timeout_ms", 120_000) / 1000 + 1
        threading.Thread(target=_close_producer, args=(producer, expiry_s), name="omnivue-webhook-producer-close",
                         daemon=True).start()

    def publish(self, events: list[dict[str, Any]]) -> None:
        """Send and flush; _Unavailable when the broker does not take them all."""
        if not events:
            return
        from kafka.errors import KafkaError

        try:
            from .kafka_io import send_event

            producer = self.producer()
            futures = [send_event(producer, ev) for ev in events]
            producer.flush(timeout=self.publish_timeout_s)
            for future in futures:
                future.get(timeout=0)
        except _Unavailable:
            raise
        except Exception as exc:  # KafkaError, a timeout, a producer closed under us: all mean "retry later"
            if not isinstance(exc, (KafkaError, OSError)):
                log.warning("publishing failed", exc_info=True)
            self._drop_producer()
            raise _Unavailable(f"kafka_unavailable: publishing failed: {type(exc).__name__}: {exc}") from None

    # -- the warehouse ----------------------------------------------------------------------------
    def dead_letter(self, provider: str, rows: list[tuple[str, str | None, bytes | None]], request_id: str) -> None:
        """Write rejections (reason, raw text, raw bytes) in one short session."""
        if not rows:
            return
        from . import warehouse
        from .rejections import write_dead_letters

        topic = f"webhook/{provider}"
        try:  # one short session with a bounded wait for the lock
            write_dead_letters(
                self.settings.warehouse, [(reason, raw, topic, -1, next_offset(), request_id, raw_bytes)
                                          for reason, raw, raw_bytes in rows], wait_s=self.warehouse_wait_s)
        except warehouse.WarehouseBusy as exc:
            raise _Unavailable(f"warehouse_busy: {exc}") from None
        except Exception as exc:  # a rejection that cannot be recorded must be retried, not lost
            log.exception("webhook %s: writing %d dead letters failed", provider, len(rows))
            raise _Unavailable(f"warehouse_unavailable: {type(exc).__name__}: {exc}") from None

    def server_close(self) -> None:
        super().server_close()
        self._drop_producer(wait=True)  # every answered request was flushed: nothing is pending


class WebhookHandler(BaseHTTPRequestHandler):
    server: WebhookServer
    server_version = "omnivue-webhook"
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a client may stall while sending; a stalled request is dropped, not answered

    # -- plumbing -----------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("%s %s", self.address_string(), format % args)

    def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, reason: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        code = reason.split(":", 1)[0]
        self._answer(status, {"error": code, "reason": reason, **extra},
                     {**({"Retry-After": "30"} if status == 503 else {}), **(headers or {})})

    def _not_allowed(self) -> None:
        self.close_connection = True
        self._error(405, "method_not_allowed: use POST /webhooks/<provider> or GET /healthz",
                    headers={"Allow": "GET, HEAD, POST"})

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed  # noqa: N815 - http.server's naming

    def do_HEAD(self) -> None:  # noqa: N802
        self.send_response(200 if self.path.split("?", 1)[0] == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        if self.path.split("?", 1)[0] == "/healthz":
            self._answer(200, {"status": "ok", "providers": sorted(self.server.adapters)})
        else:
            self._error(404, "not_found: GET /healthz, POST /webhooks/<provider>")

    # -- POST /webhooks/<provider> ----------------------------------------------------------------
    def do_POST(self) -> None:  # noqa: N802
        started = time.monotonic()
        path = self.path.split("?", 1)[0].rstrip("/")
        parts = path.split("/")
        if len(parts) != 3 or parts[1] != "webhooks" or not parts[2]:
            self.close_connection = True
            self._error(404, "not_found: POST /webhooks/<provider>")
            return
        name = parts[2].lower()
        provider = name if _PROVIDER_RE.match(name) else "invalid"
        request_id = str(uuid.uuid4())
        status, counts = 500, {"accepted": 0, "skipped": 0, "rejected": 0, "events": 0}
        try:
            status, counts = self._handle(provider, name, request_id)
        except _Unavailable as exc:
            status = 503
            self.close_connection = True
            self._error(503, str(exc), request_id=request_id)
        except (TimeoutError, ConnectionError) as exc:  # the client stalled or went away: nothing to answer
            status = 408
            self.close_connection = True
            log.warning("webhook %s: client connection lost while reading the request: %s", provider, exc)
        except Exception as exc:  # a bug, not bad input: say so, keep serving
            log.exception("webhook %s: internal error", provider)
            status = 500
            self.close_connection = True
            try:
                self._error(500, f"internal: {type(exc).__name__}: {exc}", request_id=request_id)
            except OSError:
                pass
        finally:
            log.info("webhook %s %s -> %d accepted=%d skipped=%d rejected=%d events=%d (%.0f ms)", provider,
                     request_id[:8], status, counts["accepted"], counts["skipped"], counts["rejected"],
                     counts["events"], (time.monotonic() - started) * 1000)

    def _handle(self, provider: str, name: str, request_id: str) -> tuple[int, dict[str, int]]:
        server = self.server
        rejected_whole = {"accepted": 0, "skipped": 0, "rejected": 1, "events": 0}

        body, too_large = self._read_body()
        if body is None:  # answered already (no or bad Content-Length)
            return too_large or 400, rejected_whole
        if too_large is not None:
            reason = (f"too_large: body is {too_large} bytes, the limit is {server.max_body_bytes} "
                      f"(first {len(body)} bytes kept)")
            server.dead_letter(provider, [(reason, _text(body), body)], request_id)
            self._error(413, reason, request_id=request_id, dead_lettered=True)
            return 413, rejected_whole

        adapter = server.adapters.get(name)
        if adapter is None:
            reason = f"unknown_provider: {name[:64]!r}; known: {', '.join(sorted(server.adapters))}"
            server.dead_letter(provider, [(reason, _text(body), body)], request_id)
            self._error(404, reason, request_id=request_id, dead_lettered=True)
            return 404, rejected_whole

        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            reason = f"not_json: {exc}"
            server.dead_letter(provider, [(reason, _text(body), body)], request_id)
            self._error(400, reason, request_id=request_id, dead_lettered=True)
            return 400, rejected_whole

        from .adapters import AdapterError

        try:
            result = adapter.convert(payload)
        except AdapterError as exc:
            server.dead_letter(provider, [(exc.reason, _text(body), body)], request_id)
            self._error(422, exc.reason, request_id=request_id, dead_lettered=True)
            return 422, rejected_whole

        # publish first: when Kafka is down nothing is dead-lettered and the provider retries the whole body
        server.publish(result.events)
        server.dead_letter(provider, [(reason, _item_json(item), None) for item, reason in result.errors],
                           request_id)
        counts = result.counts()
        reasons = sorted({r for _, r in result.errors} | {r for _, r in result.skipped})
        self._answer(200, {**counts, "reasons": reasons[:20], "request_id": request_id})
        return 200, counts

    def _read_body(self) -> tuple[bytes | None, int | None]:
        """(body, None), or (kept prefix, full size) when too large, or (None, status) after answering."""
        limit = self.server.max_body_bytes
        length_header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length_header is None:
            self.close_connection = True
            self._error(411, "length_required: send the body with a Content-Length header")
            return None, 411
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._error(400, f"bad_request: Content-Length {length_header!r} is not a size")
            return None, 400
        if length > limit:
            keep = self.rfile.read(min(length, TOO_LARGE_KEEP_BYTES))
            remaining = length - len(keep)
            if remaining <= 4 * limit:  # drain so the client reads the answer; a huge body just gets closed
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 1 << 20))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            self.close_connection = True
            return keep, length
        body = self.rfile.read(length)
        encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
        if encoding in ("gzip", "deflate"):
            inflater = zlib.decompressobj(wbits=47)  # gzip or zlib, auto-detected
            try:
                data = inflater.decompress(body, limit + 1)
            except zlib.error:
                return body, None  # left as is: json.loads rejects it as not_json, the raw bytes are kept
            if len(data) > limit:
                self.close_connection = True
                return data[:TOO_LARGE_KEEP_BYTES], len(data)
            body = data
        return body, None


# --- entry points ---------------------------------------------------------------------------------

def make_server(settings: Settings | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                **options: Any) -> WebhookServer:
    """A bound, not yet serving server (port 0 picks a free port; see ``server.url``)."""
    return WebhookServer(settings or load_settings(), host, port, **options)


def serve(settings: Settings | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          **options: Any) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM)."""
    server = make_server(settings, host, port, **options)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    log.info("webhook receiver on %s/webhooks/<provider> (%s); Kafka %s; dead letters in %s", server.url,
             ", ".join(sorted(server.adapters)), server.settings.bootstrap, server.settings.warehouse)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        log.info("webhook receiver stopped")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``omnivue webhook serve``; sets ``func`` to :func:`run_command`."""
    parser.description = ("Receive provider webhooks on POST /webhooks/<provider> (" + ", ".join(
        PROVIDER_NAMES) + "), convert them to "
        "canonical events and publish them to Kafka; rejected bodies and items go to the warehouse's "
        "dead_letter table. GET /healthz answers 200.")
    parser.add_argument("action", choices=["serve"], help="run the receiver until interrupted")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--max-body-bytes", type=_positive, default=MAX_BODY_BYTES,
                        help=f"largest request body accepted (default {MAX_BODY_BYTES})")
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    try:
        serve(load_settings(), args.host, args.port, max_body_bytes=args.max_body_bytes)
    except OSError as exc:
        print(f"omnivue: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


