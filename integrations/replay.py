"""Backfill: replay Segment messages from a JSON-lines file through the inbound pipeline.

Each line goes through the same checks as the API (`spec.normalize`) and into the same inbox
with the same statement (`store.inbox_insert`, `ON CONFLICT DO NOTHING` on (integration,
messageId)), so a replay is idempotent: running it twice adds nothing. The drain then applies the
messages exactly as it applies live traffic.

The file is streamed in batches of lines, one transaction per batch, so memory stays flat
whatever its length. Lines are read with a length cap, so even a file without newlines cannot
make one huge allocation. A line that is not a valid message (bad JSON, breaks the spec, over
32 KB) is rejected with its line number and kept as a RejectedMessage for staff; it never stops
the import.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

import orjson
from django.conf import settings
from django.db import DataError, transaction
from django.utils import timezone

from integrations.inbound.spec import SpecError, encoded_size, normalize
from integrations.inbound.store import drain_soon, inbox_insert, rejection_rows, usage_bump
from integrations.models import Integration, RejectedMessage

BATCH_LINES = 1000
REJECT_PATH = "import"
SHOWN_REJECTS = 20
GZIP_MAGIC = b"\x1f\x8b"


class ReplayError(Exception):
    """The import cannot start (no such file, no integration to import into)."""


@dataclass
class Rejection:
    line: int
    code: str
    message: str


@dataclass
class ReplayResult:
    lines: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    # Only the first few, so memory stays flat with a file full of bad lines.
    first_rejections: list[Rejection] = field(default_factory=list)

    def summary(self) -> str:
        text = f"accepted {self.accepted}, duplicate {self.duplicate}, rejected {self.rejected}"
        if self.rejected:
            lines = ", ".join(str(r.line) for r in self.first_rejections)
            more = ", …" if self.rejected > len(self.first_rejections) else ""
            text += f" (lines {lines}{more})"
        return text


def integration_for_import(integration_id: int | None = None) -> Integration:
    """The integration named, or the only enabled inbound one. Raises ReplayError."""
    if integration_id is not None:
        integration = Integration.objects.filter(pk=integration_id).first()
        if integration is None:
            raise ReplayError(f"there is no integration with id {integration_id}")
        if not integration.kind_class.inbound:
            raise ReplayError(
                f"integration {integration_id} ({integration.kind}) is outbound; import into an inbound one"
            )
        if not integration.enabled:
            raise ReplayError(f"integration {integration_id} is disabled; enable it first")
        return integration
    inbound = [i for i in Integration.objects.filter(enabled=True).order_by("pk") if i.kind_class.inbound]
    if not inbound:
        raise ReplayError("there is no enabled inbound integration; create one with create_integration --kind segment")
    if len(inbound) > 1:
        choices = "; ".join(f"{i.pk}: {i.name} ({i.kind})" for i in inbound)
        raise ReplayError(
            f"there are {len(inbound)} inbound integrations; choose one with --integration ID ({choices})"
        )
    return inbound[0]


def open_source(path: str) -> tuple[BinaryIO, BinaryIO, int | None]:
    """Open PATH (or stdin for '-') for reading lines as bytes, gunzipping when it is gzip.

    Returns (lines stream, raw stream, raw size or None). Gzip is recognised by its magic bytes,
    so `.gz` files and gzipped stdin both work. Progress is measured on the raw stream.
    """
    if path == "-":
        raw = sys.stdin.buffer
        if not hasattr(raw, "peek"):
            raw = io.BufferedReader(raw)
    else:
        try:
            raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
        except OSError as error:
            raise ReplayError(f"cannot open {path}: {error.strerror or error}") from None
    size = None
    try:
        stat = os.fstat(raw.fileno())
        if os.path.stat.S_ISREG(stat.st_mode):
            size = stat.st_size
    except (OSError, ValueError, io.UnsupportedOperation):
        pass
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if head == GZIP_MAGIC or (not head and path.endswith(".gz")):
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw, size
    return raw, raw, size


def read_lines(stream: BinaryIO, limit: int) -> Iterator[tuple[int, bytes, bool]]:
    """Yield (line number from 1, line, overlong). An overlong line yields only its first
    `limit` bytes and the rest is skipped, so one huge line is never held in memory."""
    number = 0
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not line.endswith(b"\n"):
            rest = line
            while rest and not rest.endswith(b"\n"):
                rest = stream.readline(1 << 16)
            yield number, line[:limit], True
            continue
        yield number, line, False


class Replay:
    """Feed lines in; every `batch_lines` lines are stored in one transaction."""

    def __init__(self, *, integration: Integration, batch_lines: int = BATCH_LINES, queue_drain: bool = True) -> None:
        self.integration = integration
        self.batch_lines = batch_lines
        self.queue_drain = queue_drain
        self.result = ReplayResult()
        self.max_message = settings.SEGMENT_MAX_MESSAGE_BYTES
        self._pending: list[tuple[int, bytes, bool]] = []

    def feed(self, number: int, line: bytes, overlong: bool = False) -> None:
        self.result.lines = number
        if not overlong and not line.strip():
            return  # blank lines (a trailing newline, spacing) are not messages
        self._pending.append((number, line, overlong))
        if len(self._pending) >= self.batch_lines:
            self.flush()

    def _reject(
        self, problems: list[dict], number: int, code: str, message: str, body: bytes, status: int = 400
    ) -> None:
        problems.append(
            {
                "index": number,
                "code": code,
                "message": f"line {number}: {message}",
                # PostgreSQL text cannot hold NUL.
                "body": body[:65536].decode("utf-8", "replace").replace("\x00", "\ufffd"),
                "status": status,
            }
        )

    def flush(self) -> None:
        if not self._pending:
            return
        now = timezone.now()
        rows, problems, seen = [], [], set()
        lines: dict[str, tuple[int, bytes]] = {}
        duplicates = 0
        for number, line, overlong in self._pending:
            if overlong:
                self._reject(problems, number, "too_large", f"message is over {self.max_message // 1024} KB", line, 413)
                continue
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                self._reject(problems, number, "invalid_json", f"not valid JSON: {error}", line)
                continue
            try:
                # The API's rule for batch items: the message, serialised compactly, within
                # 32 KB. encoded_size also refuses nesting too deep to be written back.
                if encoded_size(item) > self.max_message:
                    self._reject(
                        problems, number, "too_large", f"message is over {self.max_message // 1024} KB", line, 413
                    )
                    continue
                # The archive's own receivedAt dates the event (spec.event_time); the row's
                # received_at is when we stored it, which retention counts from.
                row = normalize(item, path_type=None, received_at=now)
            except SpecError as error:
                self._reject(problems, number, error.code, error.message, line, error.status)
                continue
            # PostgreSQL's jsonb cannot store \u0000; refuse it here rather than fail the batch.
            if b"\\u0000" in line and _holds_nul(row["payload"]):
                self._reject(
                    problems, number, "invalid_field", "a string holds \\u0000 (NUL), which cannot be stored", line
                )
                continue
            if row["message_id"] in seen:
                duplicates += 1
                continue
            seen.add(row["message_id"])
            rows.append(row)
            lines[row["message_id"]] = (number, line)
        self._pending = []

        with transaction.atomic():
            try:
                with transaction.atomic():
                    inserted = inbox_insert(integration=self.integration, rows=rows, received_at=now)
            except DataError:
                inserted = self._insert_one_by_one(rows, lines, problems, now)
            if problems:
                RejectedMessage.objects.bulk_create(
                    [
                        rejected
                        for status in {p["status"] for p in problems}
                        for rejected in rejection_rows(
                            integration=self.integration,
                            path=REJECT_PATH,
                            status=status,
                            problems=[p for p in problems if p["status"] == status],
                            remote_addr=None,
                        )
                    ]
                )
            # Counted as messages, not requests: an operator's backfill does not spend the daily cap.
            usage_bump(integration=self.integration, requests=0, messages=len(inserted), rejected=len(problems))
            if inserted and self.queue_drain:
                transaction.on_commit(drain_soon)

        result = self.result
        result.accepted += len(inserted)
        result.duplicate += len(rows) - len(inserted) + duplicates
        result.rejected += len(problems)
        for p in sorted(problems, key=lambda p: p["index"]):
            if len(result.first_rejections) >= SHOWN_REJECTS:
                break
            result.first_rejections.append(Rejection(line=p["index"], code=p["code"], message=p["message"]))

    def _insert_one_by_one(self, rows: list[dict], lines: dict, problems: list[dict], now: datetime) -> set[str]:
        """A row the database refuses (a value it cannot store) is rejected alone, not the batch."""
        inserted: set[str] = set()
        for row in rows:
            try:
                with transaction.atomic():
                    inserted |= inbox_insert(integration=self.integration, rows=[row], received_at=now)
            except DataError as error:
                number, line = lines[row["message_id"]]
                reason = str(error).splitlines()[0][:200]
                self._reject(problems, number, "invalid_field", f"the database cannot store it: {reason}", line)
        return inserted


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def replay_file(
    path: str,
    *,
    integration: Integration,
    batch_lines: int = BATCH_LINES,
    queue_drain: bool = True,
    progress: Callable[[int | None], Callable[[int, int], None]] | None = None,
) -> ReplayResult:
    """Replay every line of PATH ('-' for stdin, gzip recognised) into the integration's inbox.

    `progress(size)` is called with the file's size in bytes (None for a pipe) and returns a
    callback, called after each batch with (bytes of the file read so far, lines read so far).
    """
    stream, raw, size = open_source(path)
    replay = Replay(integration=integration, batch_lines=batch_lines, queue_drain=queue_drain)
    tick = progress(size) if progress else None
    # Read a little past the message limit so whitespace-padded messages are measured compactly.
    limit = settings.SEGMENT_MAX_MESSAGE_BYTES * 2
    try:
        for number, line, overlong in read_lines(stream, limit):
            replay.feed(number, line, overlong)
            if tick is not None and number % batch_lines == 0:
                tick(_position(raw), number)
        replay.flush()
        if tick is not None:
            tick(_position(raw), replay.result.lines)
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        replay.flush()  # keep what was read before the damage
        raise ReplayError(
            f"reading {path} failed after line {replay.result.lines}: {error}; "
            f"{replay.result.summary()} so far (running it again skips what was stored)"
        ) from None
    finally:
        if path != "-":
            raw.close()
    return replay.result


def _position(raw: BinaryIO) -> int:
    try:
        return raw.tell()
    except (OSError, ValueError):
        return 0
