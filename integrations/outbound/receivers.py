"""What the other apps' signals mean for the outbound side.

- contacts.events_recorded: the apps' own events ("Survey Responded", "Affiliate Conversion
  Approved", recorded through contacts.services.contact_event_record) become Segment tracks of
  each integration that sends them. The other apps never import the outbound code.
- contacts.contacts_unsubscribed: an "Unsubscribed" track.
- contacts.contact_erased: the person's queued messages are skipped, their sent ones redacted,
  and their visitors deleted.
- contacts.contacts_merged: rows of the merged-away contact follow it.

The event ids in the message ids make a re-announced event (a re-run chunk) queue nothing new.
"""

from __future__ import annotations

from django.db.models import Q

from common import clock
from contacts.models import Contact
from integrations.outbound.models import OutboxItem, OutboxStatus
from integrations.outbound.rules import APP_EVENT_SETTINGS
from integrations.outbound.services import app_event_item, outbox_add, person_key

REDACTED = {"redacted": True}


def _senders(setting: str) -> list:
    from integrations.models import Integration

    return [
        integration
        for integration in Integration.objects.filter(kind="segment_source", enabled=True)
        if integration.behaviour().option(setting)
    ]


def on_events_recorded(*, events, **kwargs) -> None:
    wanted = [e for e in events if e.source == "internal" and e.name in APP_EVENT_SETTINGS]
    if not wanted:
        return
    senders = {setting: _senders(setting) for setting in {APP_EVENT_SETTINGS[e.name] for e in wanted}}
    if not any(senders.values()):
        return
    contacts = Contact.objects.only("pk", "email", "user_id").in_bulk({e.contact_id for e in wanted})
    items = []
    for event in wanted:
        contact = contacts.get(event.contact_id)
        if contact is None or not contact.email:
            continue
        for integration in senders[APP_EVENT_SETTINGS[event.name]]:
            items.append(
                app_event_item(
                    integration,
                    contact=contact,
                    event=event.name,
                    properties=event.properties if isinstance(event.properties, dict) else {},
                    key=f"contact-event:{event.event_id}",
                    at=event.timestamp,
                )
            )
    outbox_add(items)


def on_unsubscribed(*, contact_ids, reason: str = "", **kwargs) -> None:
    senders = _senders("send_unsubscribes")
    if not senders:
        return
    contacts = Contact.objects.filter(pk__in=list(contact_ids), email__isnull=False).only(
        "pk", "email", "user_id", "subscription_changed_at"
    )
    items = []
    for contact in contacts:
        at = contact.subscription_changed_at or clock.now()
        for integration in senders:
            items.append(
                app_event_item(
                    integration,
                    contact=contact,
                    event="Unsubscribed",
                    properties={"reason": reason},
                    key=f"unsubscribed:{contact.pk}:{at.isoformat()}",
                    at=at,
                )
            )
    outbox_add(items)


def on_erased(*, user_ids=(), emails=(), anonymous_ids=(), contact_pks=(), **kwargs) -> int:
    from integrations.capture.models import Visitor

    contact_pks = [pk for pk in (contact_pks or []) if pk is not None]
    query = Q(pk__in=[])
    if contact_pks:
        query |= Q(contact_id__in=contact_pks)
    if emails:
        query |= Q(email__in=list(emails))
    now = clock.now()
    OutboxItem.objects.filter(query, status=OutboxStatus.QUEUED).update(
        status=OutboxStatus.SKIPPED, error="contact erased", next_attempt_at=None, claimed_by="", finished_at=now
    )
    redacted = OutboxItem.objects.filter(query).update(email="", payload=REDACTED, response="")
    visitors = Q(pk__in=[])
    if contact_pks:
        visitors |= Q(contact_id__in=contact_pks)
    if emails:
        visitors |= Q(email__in=list(emails))
    if anonymous_ids:
        visitors |= Q(anonymous_id__in=list(anonymous_ids))
    deleted, _ = Visitor.objects.filter(visitors).delete()
    return redacted + deleted


def on_merged(*, source_pk: int, target_pk: int, **kwargs) -> None:
    from integrations.capture.models import Visitor

    OutboxItem.objects.filter(contact_id=source_pk).update(contact_id=target_pk, person_key=person_key(target_pk))
    Visitor.objects.filter(contact_id=source_pk).update(contact_id=target_pk)
