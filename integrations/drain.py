"""Drain the inbox: claim due rows in chunks and hand them to their integration's kind.

Claiming uses SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL, so several qclusters drain at
once without taking the same rows. A claim pushes `next_attempt_at` out by a lease: if the
worker dies, the rows come due again by themselves. Every row ends processed, skipped (with
the reason) or failed (with the error); transient failures are retried with backoff.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from common.bulk import bulk_update
from contacts.batch import ContactBatch
from integrations.kinds.base import Refuse, Skip
from integrations.models import InboxMessage, InboxStatus, Integration

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
STATUS_FIELDS = ["status", "next_attempt_at", "reason", "warnings", "processed_at", "contact"]


@dataclass
class DrainResult:
    processed: int = 0
    skipped: int = 0
    failed: int = 0
    chunks: int = 0
    by_status: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.processed + self.skipped + self.failed

    def add(self, rows: list[InboxMessage]) -> None:
        for row in rows:
            if row.status == InboxStatus.PROCESSED:
                self.processed += 1
            elif row.status == InboxStatus.SKIPPED:
                self.skipped += 1
            else:
                self.failed += 1


def backoff(attempts: int) -> timedelta:
    """30 s, 2 min, 8 min, 32 min… capped at 6 hours."""
    return timedelta(seconds=min(30 * 4 ** max(attempts - 1, 0), 6 * 3600))


_CLAIM_SQL = """
UPDATE integrations_inboxmessage
SET status = %s, next_attempt_at = %s, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM integrations_inboxmessage
    WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= %s
    ORDER BY id LIMIT %s {lock}
)
RETURNING {columns}
"""


def claim(limit: int) -> list[InboxMessage]:
    """Take up to `limit` due rows in one statement: find, lease and read them together.

    On PostgreSQL the inner SELECT skips rows another worker holds; SQLite runs one writer at
    a time, so the single statement is enough there.
    """
    assert InboxMessage._meta.db_table == "integrations_inboxmessage"
    now = timezone.now()
    lock = "FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    columns = ", ".join(connection.ops.quote_name(f.column) for f in InboxMessage._meta.concrete_fields)
    # Only the model's own quoted column names and a fixed lock clause are interpolated.
    sql = _CLAIM_SQL.format(lock=lock, columns=columns)
    rows = list(InboxMessage.objects.raw(sql, [InboxStatus.PROCESSING, now + LEASE, now, limit]))
    if rows:
        integrations = Integration.objects.in_bulk({row.integration_id for row in rows})
        for row in rows:
            row.integration = integrations[row.integration_id]
    # One person's messages in the order they happened; stamps guard across chunks.
    rows.sort(key=lambda r: (r.timestamp, r.id))
    return rows


def finish(row: InboxMessage, status: str, reason: str = "") -> None:
    row.status = status
    row.reason = reason[:2000]
    row.processed_at = timezone.now()
    row.next_attempt_at = None


def fail(row: InboxMessage, error: str, *, permanent: bool) -> None:
    finish(row, InboxStatus.FAILED, error)
    if not permanent and row.attempts < settings.INBOX_MAX_ATTEMPTS:
        row.next_attempt_at = timezone.now() + backoff(row.attempts)


def apply_rows(rows: list[InboxMessage]) -> None:
    """Apply a chunk in memory per integration and flush once; fall back to row by row.

    A database error (a unique race with another worker, a value the database refuses)
    rolls the group back, and each row is then applied alone, so one poison message fails
    by itself and the rest of the chunk still lands.
    """
    by_integration: dict[int, list[InboxMessage]] = defaultdict(list)
    for row in rows:
        by_integration[row.integration_id].append(row)
    for group in by_integration.values():
        integration = group[0].integration
        if not integration.enabled:
            for row in group:
                finish(row, InboxStatus.SKIPPED, "integration is disabled")
            bulk_update(InboxMessage, group, STATUS_FIELDS)
            continue
        try:
            _apply_group_atomic(integration, group)
        except IntegrityError:
            # Usually another worker created the same new contact first. Its row is committed
            # now, so a second pass over the whole group finds it and costs one chunk, not
            # 500 single-row transactions.
            try:
                _apply_group_atomic(integration, group)
            except DatabaseError as error:
                _apply_each(integration, group, error)
        except DatabaseError as error:
            _apply_each(integration, group, error)
        except Exception as error:  # noqa: BLE001 - e.g. a kind no longer installed
            # Not the messages' fault: fail the group with backoff, never the whole drain.
            log.exception("integration %s could not apply its messages", integration.pk)
            for row in group:
                row.contact = None
                row.warnings = []
                fail(row, f"{type(error).__name__}: {error}", permanent=False)
            bulk_update(InboxMessage, group, STATUS_FIELDS)


def _apply_group_atomic(integration, group: list[InboxMessage]) -> None:
    for row in group:
        row.contact = None
        row.warnings = []
    with transaction.atomic():
        _apply_group(integration, group)


def _apply_each(integration, group: list[InboxMessage], error: Exception) -> None:
    log.warning("chunk flush failed (%s); applying %d rows one by one", error, len(group))
    for row in group:
        _apply_alone(integration, row)


def _apply_alone(integration, row: InboxMessage) -> None:
    row.contact = None
    row.warnings = []
    try:
        with transaction.atomic():
            _apply_group(integration, [row])
    except DatabaseError as error:
        row.contact = None
        fail(row, f"database error: {error}", permanent=False)
        row.save(update_fields=STATUS_FIELDS)


def _apply_group(integration, rows: list[InboxMessage]) -> None:
    behaviour = integration.behaviour()
    unknown = behaviour.unknown_traits() if hasattr(behaviour, "unknown_traits") else "infer"
    batch = ContactBatch(integration=integration, unknown_traits=unknown)
    batch.preload(rows)
    for row in rows:
        row.warnings = []
        row.contact = None
        try:
            # In memory, no savepoint: a database error aborts the whole group instead,
            # and apply_rows retries it row by row.
            behaviour.apply(batch, row)
        except Skip as skip:
            finish(row, InboxStatus.SKIPPED, str(skip))
        except Refuse as refuse:
            fail(row, str(refuse), permanent=True)
        except DatabaseError:
            raise
        except Exception as error:  # noqa: BLE001 - a bug in one message must not stop the chunk
            log.exception("applying inbox message %s failed", row.pk)
            fail(row, f"{type(error).__name__}: {error}", permanent=False)
        else:
            finish(row, InboxStatus.PROCESSED)
    batch.flush()
    for row in rows:
        # Rows that named a contact erased or merged away later in the chunk.
        contact = row.contact
        while contact is not None and contact.pk in batch.gone:
            contact = batch.gone[contact.pk]
        row.contact = contact
    bulk_update(InboxMessage, rows, STATUS_FIELDS)


def drain_inbox(*, max_seconds: float = 50, chunk: int | None = None, max_rows: int | None = None) -> DrainResult:
    """Drain due rows until none are left, the time budget is spent, or max_rows are done."""
    chunk = chunk or settings.INBOX_DRAIN_CHUNK
    result = DrainResult()
    started = time.monotonic()
    while time.monotonic() - started < max_seconds:
        limit = chunk if max_rows is None else min(chunk, max_rows - result.total)
        if limit <= 0:
            break
        rows = claim(limit)
        if not rows:
            break
        apply_rows(rows)
        # Rows not saved by a failed group (database down) keep their lease and come back.
        result.add(rows)
        result.chunks += 1
    return result
