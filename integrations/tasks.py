"""django-q2 task entry points. Thin: they take ids or nothing and call services.

Every task here is safe to run twice: the inbox claim makes a second drain find nothing.
"""

from __future__ import annotations

from integrations.drain import drain_inbox as _drain


def drain_inbox() -> dict:
    result = _drain(max_seconds=50)
    return {
        "processed": result.processed,
        "skipped": result.skipped,
        "waiting": result.waiting,
        "failed": result.failed,
    }
