"""Inbox retention: the inbox is a log of what arrived, not a store that grows forever.

Processed and skipped rows have done their work, and a visitor who never identified stops
waiting, once they are older than INBOX_RETENTION_DAYS. Failed and pending rows stay until
staff or the drain settle them. Refused requests (RejectedMessage) age out the same way.
Deletes go in small batches, so the drain and the endpoints never wait long on them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from integrations.models import InboxMessage, InboxStatus, RejectedMessage

PRUNED_STATUSES = (InboxStatus.PROCESSED, InboxStatus.SKIPPED, InboxStatus.WAITING)
BATCH = 5000


@dataclass
class PruneResult:
    inbox: int = 0
    rejected: int = 0


def _delete_in_batches(queryset, progress: Callable[[int], None] | None) -> int:
    total = 0
    while True:
        with transaction.atomic():
            ids = list(queryset.values_list("pk", flat=True)[:BATCH])
            if not ids:
                return total
            deleted = queryset.model.objects.filter(pk__in=ids).delete()[0]
        total += deleted
        if progress is not None:
            progress(deleted)


def inbox_prune(*, days: int, progress: Callable[[int], None] | None = None) -> PruneResult:
    """Delete settled inbox rows and refused requests received more than `days` days ago."""
    cutoff = timezone.now() - timedelta(days=days)
    inbox = InboxMessage.objects.filter(received_at__lt=cutoff, status__in=PRUNED_STATUSES).order_by()
    rejected = RejectedMessage.objects.filter(received_at__lt=cutoff).order_by()
    return PruneResult(inbox=_delete_in_batches(inbox, progress), rejected=_delete_in_batches(rejected, progress))
