"""Dry run: which of the last N events a loop listens to would have started it, and for whom.

Reads the newest N events per trigger name through the event_name_time index (one short
query per name, merged), then in one query each: their contacts, list memberships, and the
loop's enrolments of those contacts. It replays them oldest first with the same rule as the
live start (campaigns.loops.rules), so an earlier event's would-be start counts for the
re-entry rule of a later one. Contacts are judged as they are now (audience, list,
subscription), not as they were when the event happened; an event that did start the loop
says so. Nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Max

from campaigns.audience import Audience
from campaigns.loops.models import Enrolment, Loop
from campaigns.loops.rules import start_refusal
from contacts.models import Contact, ContactEvent, ListMembership

DEFAULT_EVENTS = 50
MAX_EVENTS = 500


@dataclass
class DryRunRow:
    event: ContactEvent
    contact: Contact | None
    starts: bool
    why: str
    enrolment_id: int | None = None


def loop_dry_run(*, loop: Loop, limit: int = DEFAULT_EVENTS) -> list[DryRunRow]:
    """Newest first."""
    limit = max(1, min(int(limit), MAX_EVENTS))
    events: list[ContactEvent] = []
    for name in loop.trigger_events:
        events += list(
            ContactEvent.objects.filter(name=name)
            .order_by("-timestamp")
            .only("id", "contact_id", "name", "properties", "timestamp", "type")[:limit]
        )
    events = sorted(events, key=lambda e: (e.timestamp, e.pk), reverse=True)[:limit]
    if not events:
        return []
    contact_ids = {e.contact_id for e in events}
    contacts = Contact.objects.only("id", "email", "user_id", "first_name", "last_name", "properties", "subscribed")
    contacts = contacts.in_bulk(contact_ids)
    lists: dict[int, bool] = {}
    if loop.mailing_list_id is not None:
        lists = dict(
            ListMembership.objects.filter(contact_id__in=contact_ids, mailing_list_id=loop.mailing_list_id).values_list(
                "contact_id", "subscribed"
            )
        )
    started = dict(
        Enrolment.objects.filter(loop=loop, trigger_event_id__in=[e.pk for e in events]).values_list(
            "trigger_event_id", "pk"
        )
    )
    # Enrolments from before the oldest event shown count for re-entry; later ones are replayed.
    oldest = events[-1].timestamp
    last: dict[int, datetime] = {
        row["contact_id"]: row["last"]
        for row in Enrolment.objects.filter(loop=loop, contact_id__in=contact_ids, event_at__lt=oldest)
        .values("contact_id")
        .annotate(last=Max("event_at"))
    }
    audience = Audience(loop.audience)
    has_steps = loop.steps.exists()
    rows: list[DryRunRow] = []
    for event in reversed(events):
        contact = contacts.get(event.contact_id)
        if event.pk in started:
            rows.append(DryRunRow(event, contact, True, "started it", started[event.pk]))
            last[event.contact_id] = event.timestamp
            continue
        why = start_refusal(
            loop,
            audience=audience,
            has_steps=has_steps,
            contact=contact,
            list_state=lists.get(event.contact_id),
            event_at=event.timestamp,
            last_event_at=last.get(event.contact_id),
        )
        rows.append(DryRunRow(event, contact, not why, why or "would start it"))
        if not why:
            last[event.contact_id] = event.timestamp
    rows.reverse()
    return rows
