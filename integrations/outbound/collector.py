"""A Segment-compatible collector: a small real HTTP server for local work and tests.

It takes what Segment's Tracking API takes (`POST /v1/batch`, `/v1/import`, and the single
calls `/v1/identify`, `/v1/track`, …), and checks what Segment checks: the write key (Basic auth,
the key as username), gzip bodies, the size limits (32 KB a message, 500 KB and 2,500 messages
a batch) and the payload's shape. What passes is recorded, in order, with the request it came
in (its X-Retry-Count among them). It can be told to answer 500, 429 (with Retry-After), 400,
or slowly, always or for a share of the calls, in this process (`Collector.set`) or over HTTP
(`POST /__collector/mode`), and it serves what it recorded (`GET /__collector/received`, or
only the counts: `GET /__collector/stats`).

    with Collector(write_keys={"wk"}) as collector:
        ...  # point an integration's endpoint at collector.url
        collector.message_ids()

`manage.py segment_collector` runs it in the foreground and prints what it receives.
"""

from __future__ import annotations

import base64
import binascii
import random
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_MESSAGES = 2500
SINGLE = ("identify", "track", "page", "screen", "group", "alias")
TYPES = (*SINGLE, "delete")
MODES = ("ok", "500", "429", "400", "slow")


class Invalid(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Request:
    """One request the collector answered."""

    at: datetime
    path: str
    status: int
    count: int
    retry_count: int | None
    gzip: bool
    size: int
    message_ids: list[str] = field(default_factory=list)
    error: str = ""


def check_message(message, where: str) -> None:
    """The payload's shape, as Segment's Tracking API requires it."""
    if not isinstance(message, dict):
        raise Invalid(400, "invalid_body", f"{where} must be an object")
    if len(orjson.dumps(message)) > MAX_MESSAGE_BYTES:
        raise Invalid(400, "too_large", f"{where} is over 32 KB")
    kind = message.get("type")
    if kind not in TYPES:
        raise Invalid(400, "invalid_field", f"{where}.type must be one of {', '.join(TYPES)}")
    if not message.get("userId") and not message.get("anonymousId"):
        raise Invalid(400, "missing_field", f"{where}: userId or anonymousId is required")
    for key in ("userId", "anonymousId", "messageId"):
        value = message.get(key)
        if value is not None and not isinstance(value, str):
            raise Invalid(400, "invalid_field", f"{where}.{key} must be a string")
    for key in ("traits", "properties", "context", "integrations"):
        if key in message and not isinstance(message[key], dict):
            raise Invalid(400, "invalid_field", f"{where}.{key} must be an object")
    if kind == "track" and not (isinstance(message.get("event"), str) and message["event"]):
        raise Invalid(400, "missing_field", f"{where}.event is required on track calls")
    if kind == "group" and not message.get("groupId"):
        raise Invalid(400, "missing_field", f"{where}.groupId is required on group calls")
    if kind == "alias" and not message.get("previousId"):
        raise Invalid(400, "missing_field", f"{where}.previousId is required on alias calls")
    for key in ("timestamp", "originalTimestamp"):
        value = message.get(key)
        if value is not None:
            try:
                datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise Invalid(400, "invalid_field", f"{where}.{key} must be an ISO 8601 time") from None


class Collector:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        write_keys: set[str] | None = None,
        fail_rate: float = 0.0,
        fail_statuses: tuple[int, ...] = (500, 429),
        retry_after: float = 1.0,
        delay: float = 0.0,
        seed: int | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.write_keys = set(write_keys) if write_keys else None
        self.fail_rate = fail_rate
        self.fail_statuses = fail_statuses
        self.retry_after = retry_after
        self.mode = "ok"
        self.delay = delay
        self.random = random.Random(seed)
        self.echo = echo
        self.messages: list[dict] = []
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.thread: threading.Thread | None = None

    # --- running ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Collector:
        self.thread = threading.Thread(target=self.server.serve_forever, name="segment-collector", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def serve_forever(self) -> None:
        self.server.serve_forever()

    # --- telling it what to do ---------------------------------------------------------------------
    def set(
        self,
        *,
        mode: str | None = None,
        fail_rate: float | None = None,
        delay: float | None = None,
        retry_after: float | None = None,
    ) -> None:
        """`mode`: "ok", "500", "429" (with Retry-After), "400", or "slow" (waits `delay` seconds,
        then answers 200). `fail_rate`: the share of calls answered 500 or 429 at random."""
        with self.lock:
            if mode is not None:
                if mode not in MODES:
                    raise ValueError(f"mode must be one of {', '.join(MODES)}")
                self.mode = mode
            if fail_rate is not None:
                self.fail_rate = float(fail_rate)
            if delay is not None:
                self.delay = float(delay)
            if retry_after is not None:
                self.retry_after = float(retry_after)

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()
            self.requests.clear()

    # --- what it received --------------------------------------------------------------------------
    def message_ids(self) -> Counter:
        with self.lock:
            return Counter(m.get("messageId") for m in self.messages)

    def received(self, *, type: str | None = None, event: str | None = None) -> list[dict]:
        with self.lock:
            return [
                m
                for m in self.messages
                if (type is None or m.get("type") == type) and (event is None or m.get("event") == event)
            ]

    def wait_for(self, check: Callable[[Collector], object], seconds: float = 60.0, every: float = 0.1):
        deadline = time.monotonic() + seconds
        while True:
            value = check(self)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(every)

    # --- answering --------------------------------------------------------------------------------
    def answer(self, path: str, headers, body: bytes) -> tuple[int, dict, dict]:
        """(status, JSON body, headers) for one request; records what it accepts."""
        retry_header = headers.get("X-Retry-Count")
        try:
            retry_count = int(retry_header) if retry_header is not None else None
        except ValueError:
            retry_count = None
        gzipped = headers.get("Content-Encoding", "").lower() in ("gzip", "x-gzip")
        record = Request(datetime.now(UTC), path, 0, 0, retry_count, gzipped, len(body))
        try:
            messages = self._parse(path, headers, body, gzipped)
            record.count = len(messages)
            status, extra = self._injected()
            if status:
                record.status = status
                record.error = "told to fail"
                return self._done(
                    record, status, {"success": False, "code": "injected", "message": "told to fail"}, extra
                )
            received_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            with self.lock:
                for message in messages:
                    self.messages.append({**message, "receivedAt": received_at})
                record.message_ids = [m.get("messageId") for m in messages]
            record.status = 200
            if self.echo:
                for message in messages:
                    self.echo(describe(message))
            return self._done(record, 200, {"success": True}, {})
        except Invalid as invalid:
            record.status, record.error = invalid.status, invalid.message
            return self._done(
                record, invalid.status, {"success": False, "code": invalid.code, "message": invalid.message}, {}
            )

    def _done(self, record: Request, status: int, body: dict, headers: dict):
        with self.lock:
            self.requests.append(record)
        if self.echo and status != 200:
            self.echo(
                f"-> {status} {record.path} ({record.count} messages, X-Retry-Count {record.retry_count}): {body.get('message')}"
            )
        return status, body, headers

    def _parse(self, path: str, headers, body: bytes, gzipped: bool) -> list[dict]:
        path = path.split("?", 1)[0].rstrip("/")
        kind = path.rsplit("/", 1)[-1]
        if not path.startswith("/v1/") or kind not in (*SINGLE, "batch", "import"):
            raise Invalid(404, "not_found", f"no endpoint at {path}")
        self._auth(headers, body)
        if gzipped:
            try:
                body = zlib.decompressobj(wbits=47).decompress(body, MAX_BATCH_BYTES + 1)
            except zlib.error:
                raise Invalid(400, "invalid_encoding", "the body is not valid gzip") from None
        if len(body) > MAX_BATCH_BYTES:
            raise Invalid(413, "too_large", "the request is over 500 KB")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Invalid(400, "invalid_json", "the body is not valid JSON") from None
        if kind in SINGLE:
            if not isinstance(data, dict):
                raise Invalid(400, "invalid_body", "the body must be an object")
            message = {**data, "type": kind}
            check_message(message, "the message")
            return [message]
        batch = data.get("batch") if isinstance(data, dict) else None
        if not isinstance(batch, list):
            raise Invalid(400, "missing_field", "batch is required and must be an array")
        if len(batch) > MAX_BATCH_MESSAGES:
            raise Invalid(400, "too_many_messages", f"a batch holds at most {MAX_BATCH_MESSAGES} messages")
        for index, message in enumerate(batch):
            check_message(message, f"batch[{index}]")
        return batch

    def _auth(self, headers, body: bytes) -> None:
        header = headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        key = ""
        if scheme.lower() == "basic":
            try:
                key = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")[0]
            except (binascii.Error, ValueError):
                raise Invalid(401, "unauthorized", "Authorization: Basic is not valid base64") from None
        elif scheme.lower() == "bearer":
            key = credentials.strip()
        if not key:
            raise Invalid(401, "unauthorized", "the write key is missing (Basic auth, the key as username)")
        if self.write_keys is not None and key not in self.write_keys:
            raise Invalid(401, "unauthorized", "the write key is not known")

    def _injected(self) -> tuple[int, dict]:
        with self.lock:
            mode, delay, rate, statuses = self.mode, self.delay, self.fail_rate, self.fail_statuses
            roll = self.random.random()
            pick = self.random.choice(statuses) if statuses else 500
        if mode == "slow" or (delay and mode == "ok"):
            time.sleep(delay)
        if mode in ("500", "429", "400"):
            status = int(mode)
        elif rate and roll < rate:
            status = pick
        else:
            return 0, {}
        return status, ({"Retry-After": f"{self.retry_after:g}"} if status == 429 else {})

    def stats(self) -> dict:
        """Counts only: cheap to ask for while a large sync runs."""
        with self.lock:
            return {
                "messages": len(self.messages),
                "unique": len({m.get("messageId") for m in self.messages}),
                "requests": len(self.requests),
                "failed_requests": sum(1 for r in self.requests if r.status != 200),
            }

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "messages": list(self.messages),
                "requests": [
                    {
                        "at": r.at.isoformat(),
                        "path": r.path,
                        "status": r.status,
                        "count": r.count,
                        "retry_count": r.retry_count,
                        "gzip": r.gzip,
                        "message_ids": r.message_ids,
                        "error": r.error,
                    }
                    for r in self.requests
                ],
                "mode": self.mode,
                "fail_rate": self.fail_rate,
            }

    def _handler(self):
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Segment's API

            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.startswith("/__collector/mode"):
                    try:
                        options = orjson.loads(body or b"{}")
                        collector.set(
                            **{k: options[k] for k in ("mode", "fail_rate", "delay", "retry_after") if k in options}
                        )
                    except (ValueError, TypeError) as error:
                        return self._send(400, {"success": False, "message": str(error)}, {})
                    return self._send(200, {"success": True}, {})
                if self.path.startswith("/__collector/clear"):
                    collector.clear()
                    return self._send(200, {"success": True}, {})
                status, answer, headers = collector.answer(self.path, self.headers, body)
                self._send(status, answer, headers)

            def do_GET(self):  # noqa: N802
                if self.path.startswith("/__collector/received"):
                    return self._send(200, collector.snapshot(), {})
                if self.path.startswith("/__collector/stats"):
                    return self._send(200, collector.stats(), {})
                self._send(404, {"success": False, "message": "POST to /v1/batch"}, {})

            def _send(self, status: int, body: dict, headers: dict) -> None:
                data = orjson.dumps(body)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    # The sender gave up waiting (a timeout): what it sent is recorded all the same.
                    self.close_connection = True

            def log_message(self, *args):
                pass

        return Handler


def describe(message: dict) -> str:
    """One line per message, for the command's output."""
    kind = message.get("type", "?")
    what = message.get("event") or message.get("groupId") or ""
    who = (
        message.get("email")
        or (message.get("traits") or {}).get("email")
        or message.get("userId")
        or message.get("anonymousId")
    )
    return f"{kind:8} {what[:40]:40} {str(who)[:40]:40} {message.get('messageId', '')}"
