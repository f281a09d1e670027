"""`sync_segment`: queue an integration's captured contacts and Reclaim events now, and send them.

Grow: every contact this integration captured (a visitor who gave an email), since a day if
given. Reclaim: their Reclaim events (from the contacts' timelines). Both due at once, without
the delay; the rules are the same as for any outbox row when it is due. Queueing is idempotent:
a contact or event already queued (or sent) keeps its row, by its stable message id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from django.utils import timezone

from common import clock
from contacts.models import Contact, ContactEvent
from integrations.outbound.models import OutboxItem, SyncRun, SyncTrigger
from integrations.outbound.payloads import RECLAIM_EVENTS
from integrations.outbound.services import grow_items, outbox_add, reclaim_item

CHUNK = 5000


@dataclass
class Queued:
    offered: int
    new: int
    run: SyncRun


def backfill_queue(*, integration, since: date | None = None) -> Queued:
    from integrations.capture.models import Visitor

    behaviour = integration.behaviour()
    start = timezone.make_aware(datetime.combine(since, time.min)) if since else None
    now = clock.now()
    before = OutboxItem.objects.filter(integration=integration).count()
    offered = 0
    visitors = Visitor.objects.filter(integration=integration, contact__isnull=False, identified_at__isnull=False)
    if start:
        visitors = visitors.filter(identified_at__gte=start)
    # The first identification per contact: its time is the Grow message's.
    first: dict[int, datetime] = {}
    for contact_id, identified_at in visitors.order_by().values_list("contact_id", "identified_at").iterator(CHUNK):
        if contact_id not in first or identified_at < first[contact_id]:
            first[contact_id] = identified_at
    contact_ids = sorted(first)
    group_id = behaviour.option("group_id")
    for offset in range(0, len(contact_ids), CHUNK):
        ids = contact_ids[offset : offset + CHUNK]
        contacts = Contact.objects.filter(pk__in=ids, email__isnull=False).only("pk", "email", "user_id")
        items = []
        for contact in contacts:
            if behaviour.option("grow_enabled"):
                items += grow_items(integration, contact=contact, at=first[contact.pk], due=now, group_id=group_id)
        if behaviour.option("reclaim_enabled"):
            by_pk = {c.pk: c for c in contacts}
            events = ContactEvent.objects.filter(
                contact_id__in=ids, name__in=list(RECLAIM_EVENTS), integration=integration
            )
            if start:
                events = events.filter(timestamp__gte=start)
            for contact_id, name, properties, at in events.values_list("contact_id", "name", "properties", "timestamp"):
                contact = by_pk.get(contact_id)
                if contact is None:
                    continue
                item = reclaim_item(
                    integration,
                    contact=contact,
                    event=name,
                    properties=properties if isinstance(properties, dict) else {},
                    page_url=str((properties or {}).get("url") or ""),
                    at=at,
                    due=now,
                )
                if item is not None:
                    items.append(item)
        offered += outbox_add(items)
    new = OutboxItem.objects.filter(integration=integration).count() - before
    run = SyncRun.objects.create(
        integration=integration, trigger=SyncTrigger.BACKFILL, started_at=now, finished_at=clock.now(), queued=new
    )
    return Queued(offered=offered, new=new, run=run)
