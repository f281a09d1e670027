"""Drain the inbox: claim due rows in chunks and hand them to their integration's kind.

Claims (integrations/claim.py) let several workers and qclusters drain at once. Every row
ends processed, skipped (with the reason), waiting (an anonymous visitor, until identified) or
failed (with the error); transient failures are retried with backoff.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from common.bulk import bulk_update
from contacts.batch import ContactBatch
from contacts.models import ContactIdentity
from contacts.services import REDACTED_INBOX_FIELDS
from integrations.claim import claimed
from integrations.kinds.base import Refuse, Skip, Wait
from integrations.lanes import lock_anonymous_ids
from integrations.models import InboxMessage, InboxStatus

log = logging.getLogger(__name__)

STATUS_FIELDS = ["status", "next_attempt_at", "reason", "warnings", "processed_at", "contact"]


@dataclass
class DrainResult:
    processed: int = 0
    skipped: int = 0
    waiting: int = 0
    failed: int = 0
    chunks: int = 0
    by_status: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.processed + self.skipped + self.waiting + self.failed

    def add(self, rows: list[InboxMessage]) -> None:
        for row in rows:
            if row.status == InboxStatus.PROCESSED:
                self.processed += 1
            elif row.status == InboxStatus.SKIPPED:
                self.skipped += 1
            elif row.status == InboxStatus.WAITING:
                self.waiting += 1
            elif row.status == InboxStatus.PENDING:
                continue  # woken by an identify in its own chunk: counted when applied
            else:
                self.failed += 1


def backoff(attempts: int) -> timedelta:
    """30 s, 2 min, 8 min, 32 min… capped at 6 hours."""
    return timedelta(seconds=min(30 * 4 ** max(attempts - 1, 0), 6 * 3600))


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
        except Wait as wait:
            finish(row, InboxStatus.WAITING, str(wait))
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
    settle_waiting(rows, batch.linked_anonymous_ids)
    for row in rows:
        # Rows that named a contact erased or merged away later in the chunk.
        contact = row.contact
        while contact is not None and contact.pk in batch.gone:
            contact = batch.gone[contact.pk]
        row.contact = contact
    bulk_update(InboxMessage, rows, STATUS_FIELDS)
    if batch.erased:
        # The erase redacted rows of this chunk in the database; the statuses just written
        # brought back their reason and warnings, which can name the person. Redact again.
        InboxMessage.objects.filter(pk__in=[row.pk for row in rows], payload={"redacted": True}).update(
            reason=REDACTED_INBOX_FIELDS["reason"], warnings=[]
        )


def settle_waiting(rows: list[InboxMessage], linked: set[str]) -> None:
    """Wake the rows of visitors this chunk identified, and leave none waiting for a visitor
    another worker identified meanwhile.

    A visitor's page (in its anonymousId's lane) and the identify naming it (in the userId's
    lane) can be applied by two workers at once: the identify's wake-up ran before the page
    was stored as waiting, and nothing woke it again. Both sides now take a transaction lock
    per anonymousId before that step, so one of them sees the other's commit.
    """
    waiting = {row.anonymous_id for row in rows if row.status == InboxStatus.WAITING}
    if not (waiting or linked):
        return
    lock_anonymous_ids(waiting | linked)
    if waiting - linked:
        # Read after the lock: an identify committed by another worker is visible now.
        linked = linked | set(
            ContactIdentity.objects.filter(anonymous_id__in=waiting - linked).values_list("anonymous_id", flat=True)
        )
    if linked:
        wake_waiting(rows, linked)


def wake_waiting(rows: list[InboxMessage], anonymous_ids: set[str]) -> None:
    """Anonymous visitors now identified: their waiting rows come due again, in this chunk's
    rows as in those stored by earlier chunks. Their lanes may differ from this one, so they
    are applied by whichever worker holds theirs."""
    now = timezone.now()
    for row in rows:
        if row.status == InboxStatus.WAITING and row.anonymous_id in anonymous_ids:
            row.status, row.reason, row.next_attempt_at, row.processed_at = InboxStatus.PENDING, "", now, None
    InboxMessage.objects.filter(status=InboxStatus.WAITING, anonymous_id__in=anonymous_ids).update(
        status=InboxStatus.PENDING, reason="", next_attempt_at=now, processed_at=None
    )


def drain_inbox(*, max_seconds: float = 50, chunk: int | None = None, max_rows: int | None = None) -> DrainResult:
    """Drain due rows until none are left, the time budget is spent, or max_rows are done."""
    chunk = chunk or settings.INBOX_DRAIN_CHUNK
    result = DrainResult()
    started = time.monotonic()
    while time.monotonic() - started < max_seconds:
        limit = chunk if max_rows is None else min(chunk, max_rows - result.total)
        if limit <= 0:
            break
        with claimed(limit) as rows:
            if not rows:
                break
            apply_rows(rows)
        # Rows not saved by a failed group (database down) keep their lease and come back.
        result.add(rows)
        result.chunks += 1
    return result
