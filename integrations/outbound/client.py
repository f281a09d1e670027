"""Posting to a Segment-compatible `/v1/batch`, as Segment's own libraries now recommend.

- One `requests.Session` per endpoint and thread: keep-alive connections, reused across batches.
- Basic auth with the Write Key as the username, gzip bodies, and `X-Retry-Count` (how many
  times these messages were tried before).
- Segment's limits: each message under 32 KB, each request under 500 KB and 2,500 messages.
- Retryable: 408, 429 and 5xx except 501 and 505, connection errors and timeouts; `Retry-After`
  (seconds or an HTTP date) is honoured up to 300 s. Any other 4xx is permanent.

The client knows nothing of the queue: it posts encoded messages and says what came back.
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from django.conf import settings

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_MESSAGES = 2500
MAX_RETRY_AFTER = 300.0
# Room for the envelope ({"batch":[…],"sentAt":"…"}) under the batch limit.
ENVELOPE_BYTES = 64
USER_AGENT = "switchyard-outbound/1.0"
ANSWER_LIMIT = 2000

_local = threading.local()


def session_for(endpoint: str) -> requests.Session:
    sessions = getattr(_local, "sessions", None)
    if sessions is None:
        sessions = _local.sessions = {}
    session = sessions.get(endpoint)
    if session is None:
        session = sessions[endpoint] = requests.Session()
        session.headers.update({"User-Agent": USER_AGENT, "Content-Type": "application/json"})
    return session


def is_retryable(status_code: int) -> bool:
    return status_code in (408, 429) or (500 <= status_code < 600 and status_code not in (501, 505))


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date), capped at 300."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


@dataclass
class Answer:
    """What one request came to."""

    status_code: int | None
    body: str
    error: str
    retry_after: float | None
    started_at: datetime
    duration_ms: int
    # The request may have reached the endpoint although no answer came back (a read timeout).
    ambiguous: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        return self.status_code is None or is_retryable(self.status_code)

    def describe(self) -> str:
        if self.status_code is None:
            return self.error
        text = f"{self.status_code}"
        if self.body:
            text += f": {self.body[:300]}"
        return text


def envelope(messages: list[bytes], sent_at: str) -> bytes:
    return b'{"batch":[' + b",".join(messages) + b'],"sentAt":"' + sent_at.encode() + b'"}'


class Chunker:
    """Cuts messages, as they come, into requests under the limits: `add` says when the
    messages so far make a full request (its range), `rest` gives the last one."""

    def __init__(self) -> None:
        self.start, self.total = 0, ENVELOPE_BYTES

    def add(self, index: int, size: int) -> tuple[int, int] | None:
        full = None
        if index > self.start and (self.total + size + 1 > MAX_BATCH_BYTES or index - self.start >= MAX_BATCH_MESSAGES):
            full = (self.start, index)
            self.start, self.total = index, ENVELOPE_BYTES
        self.total += size + 1
        return full

    def rest(self, count: int) -> tuple[int, int]:
        return (self.start, count)


def post_batch(*, endpoint: str, write_key: str, messages: list[bytes], retry_count: int = 0) -> Answer:
    """POST the messages to {endpoint}/v1/batch; never raises for the endpoint's failures."""
    now = datetime.now(UTC)
    sent_at = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    body = gzip.compress(envelope(messages, sent_at), compresslevel=5)
    headers = {"Content-Encoding": "gzip", "X-Retry-Count": str(retry_count)}
    started = time.monotonic()
    timeout = (settings.OUTBOUND_CONNECT_TIMEOUT, settings.OUTBOUND_TIMEOUT)
    try:
        response = session_for(endpoint).post(
            f"{endpoint.rstrip('/')}/v1/batch", data=body, headers=headers, auth=(write_key, ""), timeout=timeout
        )
    except requests.Timeout as error:
        # A connect timeout never reached the endpoint; a read timeout may have been applied.
        ambiguous = not isinstance(error, requests.ConnectTimeout)
        return Answer(None, "", f"timed out: {error}"[:ANSWER_LIMIT], None, now, _ms(started), ambiguous=ambiguous)
    except requests.RequestException as error:
        return Answer(None, "", f"{type(error).__name__}: {error}"[:ANSWER_LIMIT], None, now, _ms(started))
    return Answer(
        response.status_code,
        response.text[:ANSWER_LIMIT],
        "",
        retry_after(response.headers.get("Retry-After")),
        now,
        _ms(started),
    )


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
