"""The one clock of queued work.

Everything the work queue decides by time (what is due, a lease's end, a retry's time, an
attempt's start) reads `now()` here, and the claim's SQL is given that value instead of the
database's NOW(). Tests move this clock (time-machine), and every worker agrees with its own
decisions even when the database server's clock drifts.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
