"""What happened to contacts, for the apps above (integrations, campaigns, affiliates).

Contacts never import those apps: they listen here. Receivers run inside the sender's
transaction, so what they write commits or rolls back with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from django.dispatch import Signal

# A person was erased (GDPR). kwargs: user_ids, emails, anonymous_ids (sets of str), the erased
# contact pks. Receivers erase or redact what they hold about these ids, and return how many
# records they redacted (an int), which the erasure record counts.
contact_erased = Signal()

# An alias folded one contact into another. kwargs: source_pk, target_pk. Receivers repoint
# rows that named the source.
contacts_merged = Signal()

# A contact stopped receiving marketing email (staff, the API, an unsubscribe link, Segment).
# kwargs: contact_ids (list of int), reason (str).
contacts_unsubscribed = Signal()


# Events were recorded on contacts' timelines: Segment tracks drained from the inbox (one send
# per flushed chunk, with all its track events) and the apps' own events recorded through
# contacts.services.contact_event_record ("Survey Responded", "Affiliate Conversion Approved").
# kwargs: events (a list of RecordedEvent). Loops start and exit from here, whichever the
# source. A re-run chunk announces its events again, with the same event ids: receivers must be
# idempotent by event id.
events_recorded = Signal()


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One event as the apps above see it: small, and without the ORM row."""

    contact_id: int
    event_id: int  # the ContactEvent's pk: stable across re-runs, so a key for idempotency
    name: str
    properties: dict[str, Any]
    timestamp: datetime
    integration_id: int | None
    source: Literal["segment", "internal"]
