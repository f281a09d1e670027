"""How captured messages become visitors, contacts, timeline events and outbox rows.

The capture endpoint stores the script's page views, e-commerce tracks and email submissions in
the inbox, under the segment_source integration; the drain applies them here, in chunks:

- every message keeps the visitor (its anonymous id) up to date: its first captured visit gives
  the landing page, its domain, the referrer and the page title;
- an email submission (identify) makes the visitor a contact (matched by email, else created)
  and queues the Grow identify, due after the integration's delay;
- a page or track of a visitor nobody has identified waits in the inbox, as an anonymous
  Segment call does, and is applied once their email is known: then it joins the contact's
  timeline and, for the four Reclaim events, queues the Reclaim track (due after the delay,
  counted from the event or from the identification, whichever is later).

Whether a queued row is finally sent (suppression, filters, switches, checkout completed,
identified elsewhere) is decided when it is due: integrations/outbound/rules.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from contacts.batch import ContactBatch
from contacts.traits import clean_email
from integrations.kinds.base import Refuse, Wait
from integrations.kinds.common import ContactKind
from integrations.kinds.payload import chunk_ids, context_of, identify_traits, page_properties, properties_of

WAITING = "anonymous visitor: applied once they give their email"


def page_context(message) -> dict:
    page = context_of(message).get("page")
    return page if isinstance(page, dict) else {}


class CaptureBatch(ContactBatch):
    """A ContactBatch that also holds the chunk's visitors and the outbox rows to queue."""

    def __init__(self, *, integration, rows) -> None:
        super().__init__(integration=integration, unknown_traits="ignore")
        from integrations.capture.models import Visitor

        anons = {row.anonymous_id for row in rows if row.anonymous_id}
        self.visitors: dict[str, Visitor] = {
            v.anonymous_id: v for v in Visitor.objects.filter(integration=integration, anonymous_id__in=anons)
        }
        self.dirty_visitors: dict[str, Visitor] = {}
        # (kind, visitor, contact, message) to turn into outbox rows once contacts have ids.
        self.to_queue: list[tuple[str, Any, Any, Any]] = []

    def visitor(self, message):
        from integrations.capture.models import Visitor
        from integrations.outbound.payloads import page_domain

        ts: datetime = message.timestamp
        visitor = self.visitors.get(message.anonymous_id)
        if visitor is None:
            visitor = Visitor(
                integration=self.integration,
                anonymous_id=message.anonymous_id,
                first_seen_at=ts,
                last_seen_at=ts,
            )
            self.visitors[message.anonymous_id] = visitor
        page = page_context(message)
        url = str(page.get("url") or "")
        if url and (not visitor.landing_page_url or ts < visitor.first_seen_at):
            visitor.landing_page_url = url[:2000]
            visitor.landing_page_domain = page_domain(url)[:255]
            visitor.referrer = str(page.get("referrer") or "")[:2000]
            visitor.page_title = str(page.get("title") or "")[:500]
        visitor.first_seen_at = min(visitor.first_seen_at, ts)
        visitor.last_seen_at = max(visitor.last_seen_at, ts)
        self.dirty_visitors[message.anonymous_id] = visitor
        return visitor

    def flush_visitors(self) -> None:
        from common.bulk import bulk_update
        from integrations.capture.models import Visitor

        new, changed = [], []
        for visitor in self.dirty_visitors.values():
            if Visitor.contact.is_cached(visitor) and visitor.contact is not None:
                # Set before the contact had an id (a new contact), or merged or erased since:
                # assigning again takes its id now.
                visitor.contact = self.current(visitor.contact)
            (changed if visitor.pk else new).append(visitor)
        if new:
            # One lane holds a visitor's messages, so no other worker creates the same one.
            Visitor.objects.bulk_create(new)
        fields = [
            "contact",
            "email",
            "first_seen_at",
            "last_seen_at",
            "landing_page_url",
            "landing_page_domain",
            "referrer",
            "page_title",
            "identified_at",
            "extra",
        ]
        bulk_update(Visitor, changed, fields)
        self.dirty_visitors = {}


class CaptureKind(ContactKind):
    """The capture script's messages: page, track (Segment e-commerce) and identify (an email)."""

    handles = ("identify", "track", "page")

    def unknown_traits(self) -> str:
        return "ignore"

    def open_batch(self, rows) -> CaptureBatch:
        batch = CaptureBatch(integration=self.integration, rows=rows)
        user_ids, emails, anons = chunk_ids(rows)
        batch.preload(user_ids=user_ids, emails=emails, anons=anons)
        return batch

    def close_batch(self, batch: CaptureBatch, rows) -> None:
        super().close_batch(batch, rows)  # contacts first: the rows below need their ids
        batch.flush_visitors()
        self.queue_outbound(batch)

    # --- handlers ---------------------------------------------------------------------------------
    def identify(self, batch: CaptureBatch, message) -> None:
        visitor = batch.visitor(message)
        email = clean_email(message.email)
        if not email:
            raise Refuse("an email submission needs a valid email address")
        contact = self.resolve(batch, message, create=True, email=email)
        traits = identify_traits(message)
        names = {k: traits[k] for k in ("first_name", "last_name") if isinstance(traits.get(k), str) and traits[k]}
        if names:
            batch.set_traits(contact, names, message.timestamp, message.warnings)
        extra = traits.get("extra")
        if isinstance(extra, dict) and extra:
            visitor.extra = {**(visitor.extra or {}), **extra}
        visitor.contact = contact
        visitor.email = email
        if visitor.identified_at is None or message.timestamp < visitor.identified_at:
            visitor.identified_at = message.timestamp
        batch.to_queue.append(("grow", visitor, contact, message))

    def page(self, batch: CaptureBatch, message) -> None:
        batch.visitor(message)
        contact = self.known(batch, message)
        self.add_event(batch, contact, message, page_properties(message))

    def track(self, batch: CaptureBatch, message) -> None:
        visitor = batch.visitor(message)
        contact = self.known(batch, message)
        properties = properties_of(message)
        url = page_context(message).get("url")
        if url and "url" not in properties:
            # The page it happened on, kept with the event (a backfill rebuilds Reclaim from it).
            properties = {**properties, "url": url}
        self.add_event(batch, contact, message, properties)
        batch.to_queue.append(("reclaim", visitor, contact, message))

    def known(self, batch: CaptureBatch, message):
        contact = batch.find(anonymous_id=message.anonymous_id)
        if contact is None:
            raise Wait(WAITING)
        message.contact = contact
        return contact

    # --- the outbox ---------------------------------------------------------------------------------
    def queue_outbound(self, batch: CaptureBatch) -> None:
        from integrations.outbound.payloads import RECLAIM_EVENTS
        from integrations.outbound.services import grow_items, outbox_add, reclaim_item, send_delay

        if not batch.to_queue or not self.integration.enabled:
            return
        grow, reclaim = self.option("grow_enabled"), self.option("reclaim_enabled")
        delay = send_delay(self)
        group_id = self.option("group_id")
        items = []
        for kind, visitor, contact, message in batch.to_queue:
            contact = batch.current(contact)
            if contact is None or contact.pk is None or message.status != "processed":
                continue  # erased or merged away in this chunk, or the message did not apply
            if kind == "grow" and grow:
                at = message.timestamp
                items += grow_items(self.integration, contact=contact, at=at, due=at + delay, group_id=group_id)
            elif kind == "reclaim" and reclaim and message.event in RECLAIM_EVENTS:
                at = message.timestamp
                start = max(at, visitor.identified_at) if visitor.identified_at else at
                item = reclaim_item(
                    self.integration,
                    contact=contact,
                    event=message.event,
                    properties=properties_of(message),
                    page_url=str(page_context(message).get("url") or ""),
                    at=at,
                    due=start + delay,
                )
                if item is not None:
                    items.append(item)
        batch.to_queue = []
        outbox_add(items)
