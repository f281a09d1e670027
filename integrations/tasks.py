"""django-q2 task entry points. Thin: they take ids or nothing and call services.

Every task here is safe to run twice: the inbox claim makes a second drain find nothing, and
a second prune finds nothing old enough left.
"""

from __future__ import annotations

from django.conf import settings

from integrations.drain import drain_inbox as _drain
from integrations.retention import inbox_prune


def prune_inbox() -> dict:
    if settings.INBOX_RETENTION_DAYS < 1:
        return {"inbox": 0, "rejected": 0}
    result = inbox_prune(days=settings.INBOX_RETENTION_DAYS)
    return {"inbox": result.inbox, "rejected": result.rejected}


def drain_inbox() -> dict:
    result = _drain(max_seconds=50)
    return {
        "processed": result.processed,
        "skipped": result.skipped,
        "waiting": result.waiting,
        "failed": result.failed,
    }
