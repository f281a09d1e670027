"""`sync_segment`: queue an integration's captured contacts and Reclaim events now, and send them.

Grow: every contact this integration captured (a visitor who gave an email), since a day if
given. Reclaim: their Reclaim events (from the contacts' timelines). Both due at once, without
the delay; the rules are the same as for any outbox row when it is due. Queueing is idempotent:
a contact or event already queued (or sent) keeps its row, by its stable message id.

On PostgreSQL the Grow rows are made by the database in one INSERT … SELECT (the message id is
an MD5 that SQL computes exactly as payloads.message_id does): no row passes through Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from django.db import connection
from django.utils import timezone

from common import clock
from contacts.models import Contact, ContactEvent
from integrations.outbound.models import OutboxItem, OutboxSource, OutboxStatus, SyncRun, SyncTrigger
from integrations.outbound.payloads import RECLAIM_EVENTS
from integrations.outbound.services import grow_items, outbox_add, reclaim_item

CHUNK = 5000


@dataclass
class Queued:
    offered: int
    new: int
    run: SyncRun


def backfill_queue(*, integration, since: date | None = None) -> Queued:
    behaviour = integration.behaviour()
    start = timezone.make_aware(datetime.combine(since, time.min)) if since else None
    now = clock.now()
    before = OutboxItem.objects.filter(integration=integration).count()
    offered = 0
    first = first_identified(integration, start)
    if behaviour.option("grow_enabled"):
        group_id = behaviour.option("group_id")
        if connection.vendor == "postgresql":
            grow_sql(integration, start=start, now=now, group_id=group_id)
        else:
            grow_python(integration, first, now=now, group_id=group_id)
        offered += len(first) * (2 if group_id else 1)
    if behaviour.option("reclaim_enabled"):
        offered += reclaim_python(integration, sorted(first), start=start, now=now)
    from common.workqueue import kick_on_commit
    from integrations.outbound.sending import WORK_TYPE

    kick_on_commit(WORK_TYPE)
    new = OutboxItem.objects.filter(integration=integration).count() - before
    run = SyncRun.objects.create(
        integration=integration, trigger=SyncTrigger.BACKFILL, started_at=now, finished_at=clock.now(), queued=new
    )
    return Queued(offered=offered, new=new, run=run)


def _visitors(integration, start):
    from integrations.capture.models import Visitor

    visitors = Visitor.objects.filter(integration=integration, contact__isnull=False, identified_at__isnull=False)
    return visitors.filter(identified_at__gte=start) if start else visitors


def first_identified(integration, start) -> dict[int, datetime]:
    """Each captured contact's first identification: its Grow message's time."""
    first: dict[int, datetime] = {}
    rows = _visitors(integration, start).order_by().values_list("contact_id", "identified_at")
    for contact_id, identified_at in rows.iterator(CHUNK):
        if contact_id not in first or identified_at < first[contact_id]:
            first[contact_id] = identified_at
    return first


def grow_python(integration, first: dict[int, datetime], *, now, group_id: str) -> None:
    ids = sorted(first)
    for offset in range(0, len(ids), CHUNK):
        chunk = Contact.objects.filter(pk__in=ids[offset : offset + CHUNK], email__isnull=False).only("pk", "email")
        items = []
        for contact in chunk:
            items += grow_items(integration, contact=contact, at=first[contact.pk], due=now, group_id=group_id)
        outbox_add(items)


_GROW_SQL = """
INSERT INTO integrations_outboxitem (
    integration_id, source, type, event, contact_id, email, person_key, message_id, payload,
    event_at, due_at, next_attempt_at, status, failure_type, error, response, created_at,
    attempts, last_error, claimed_by
)
SELECT %(integration)s, %(source)s, %(type)s, '', c.id, c.email, 'c' || c.id::text,
       'api-' || left(md5(%(integration)s::text || chr(31) || %(type)s || chr(31) || c.id::text {suffix}), 27),
       %(payload)s::jsonb, v.first_at, %(now)s, %(now)s, %(status)s, '', '', '', %(now)s, 0, '', ''
FROM (
    SELECT contact_id, min(identified_at) AS first_at
    FROM integrations_visitor
    WHERE integration_id = %(integration)s AND contact_id IS NOT NULL AND identified_at IS NOT NULL
      AND (%(start)s::timestamptz IS NULL OR identified_at >= %(start)s::timestamptz)
    GROUP BY contact_id
) AS v
JOIN contacts_contact AS c ON c.id = v.contact_id AND c.email IS NOT NULL
ORDER BY c.id
ON CONFLICT (integration_id, message_id) DO NOTHING
"""


def grow_sql(integration, *, start, now, group_id: str) -> int:
    """The Grow identifies (and group calls) of every captured contact, made by PostgreSQL;
    returns how many rows were new."""
    import json

    assert OutboxItem._meta.db_table == "integrations_outboxitem"
    params = {"integration": integration.pk, "source": OutboxSource.GROW, "start": start, "now": now}
    params["status"] = OutboxStatus.QUEUED
    offered = 0
    with connection.cursor() as cursor:
        # Only fixed SQL text is formatted in; every value is a parameter.
        cursor.execute(_GROW_SQL.format(suffix=""), {**params, "type": "identify", "payload": "{}"})  # noqa: S608
        offered += cursor.rowcount
        if group_id:
            cursor.execute(
                _GROW_SQL.format(suffix="|| chr(31) || %(group_id)s"),  # noqa: S608
                {**params, "type": "group", "payload": json.dumps({"groupId": group_id}), "group_id": group_id},
            )
            offered += cursor.rowcount
    return offered


def reclaim_python(integration, contact_ids: list[int], *, start, now) -> int:
    offered = 0
    for offset in range(0, len(contact_ids), CHUNK):
        ids = contact_ids[offset : offset + CHUNK]
        by_pk = {c.pk: c for c in Contact.objects.filter(pk__in=ids, email__isnull=False).only("pk", "email")}
        events = ContactEvent.objects.filter(contact_id__in=ids, name__in=list(RECLAIM_EVENTS), integration=integration)
        if start:
            events = events.filter(timestamp__gte=start)
        items = []
        for contact_id, name, properties, at in events.values_list("contact_id", "name", "properties", "timestamp"):
            contact = by_pk.get(contact_id)
            if contact is None:
                continue
            properties = properties if isinstance(properties, dict) else {}
            item = reclaim_item(
                integration,
                contact=contact,
                event=name,
                properties=properties,
                page_url=str(properties.get("url") or ""),
                at=at,
                due=now,
            )
            if item is not None:
                items.append(item)
        offered += outbox_add(items)
    return offered
