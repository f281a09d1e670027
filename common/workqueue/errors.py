"""What one attempt at one item came to: the handler's answer, or its WorkError.

One error type, with a `permanent` flag, as healthchecks' TransportError: temporary failures
are retried with backoff, permanent ones stop the item at once. `ambiguous` says the attempt
may have had its effect anyway (a timeout after the request was sent): it is shown apart in the
attempt log, and retried unless it is also permanent, so a receiver that dedupes by a stable id
gets it again, while a handler that must never repeat (an email) raises it permanent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# What the attempt log keeps of an answer and of an error: enough to read, never a whole body.
RESPONSE_LIMIT = 4096
ERROR_LIMIT = 2000


class WorkError(Exception):
    """An attempt failed. Raise it from a handler (or return `Outcome.failure(error)`)."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        status_code: int | None = None,
        response: str = "",
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.status_code = status_code
        self.response = response
        self.ambiguous = ambiguous


@dataclass(frozen=True)
class Outcome:
    """One item's result, as a handler reports it; the queue decides what follows.

    `kind` is "ok" (finished), "skipped" (finished, nothing done: `error` says why) or "error"
    (retried after backoff, or failed for good when permanent or out of attempts).
    `retry_after` (seconds, from a Retry-After header) replaces the backoff, up to the work
    type's cap. `started_at` and `duration_ms` default to the batch's when a handler leaves them.
    """

    kind: str = "ok"
    error: str = ""
    status_code: int | None = None
    response: str = ""
    permanent: bool = False
    ambiguous: bool = False
    retry_after: float | None = None
    started_at: datetime | None = None
    duration_ms: int | None = None

    @classmethod
    def ok(cls, *, status_code: int | None = None, response: str = "") -> Outcome:
        return cls("ok", status_code=status_code, response=response)

    @classmethod
    def skipped(cls, reason: str, *, status_code: int | None = None, response: str = "") -> Outcome:
        return cls("skipped", error=reason, status_code=status_code, response=response)

    @classmethod
    def failure(cls, error: WorkError | str) -> Outcome:
        if isinstance(error, str):
            return cls("error", error=error)
        return cls(
            "error",
            error=error.message,
            status_code=error.status_code,
            response=error.response,
            permanent=error.permanent,
            ambiguous=error.ambiguous,
            retry_after=error.retry_after,
        )
