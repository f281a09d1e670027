"""common's tables: the work queue's attempt log (WorkItem is abstract, for other apps)."""

from common.workqueue.models import Attempt, WorkItem  # noqa: F401
