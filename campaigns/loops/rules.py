"""Whether an event starts a loop for a contact: one rule, used by the live start and the dry run.

In the order staff read them on the dry-run page: the loop has steps; the contact exists, has
an address and is subscribed; is subscribed to the loop's list (if it has one); is in its
audience; and the re-entry rule allows another start.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from campaigns.audience import Audience
from campaigns.loops.models import Loop, Reentry


def start_refusal(
    loop: Loop,
    *,
    audience: Audience,
    has_steps: bool,
    contact,
    list_state: bool | None,
    event_at: datetime,
    last_event_at: datetime | None,
) -> str:
    """Empty when the event starts the loop; else why not.

    `list_state`: the contact's membership of the loop's list (True subscribed, False
    unsubscribed from it, None not on it); ignored when the loop has no list.
    `last_event_at`: the trigger time of the contact's latest enrolment in this loop, if any.
    """
    if not has_steps:
        return "the loop has no steps"
    if contact is None:
        return "the contact no longer exists (erased)"
    if not contact.email:
        return "the contact has no email address"
    if not contact.subscribed:
        return "the contact is unsubscribed"
    if loop.mailing_list_id is not None:
        if list_state is None:
            return "not on the list"
        if list_state is False:
            return "unsubscribed from the list"
    why = audience.why_not(contact)
    if why:
        return why
    if last_event_at is not None:
        if loop.reentry == Reentry.ONCE:
            return "already went through this loop (re-entry: once)"
        if loop.reentry == Reentry.AFTER_DAYS:
            days = loop.reentry_days or 0
            if event_at < last_event_at + timedelta(days=days):
                return f"started on {last_event_at:%Y-%m-%d %H:%M} UTC; re-entry only after {days} day(s)"
    return ""
