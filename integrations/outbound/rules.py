"""Whether a due outbox item goes out, judged when it is due (settings may change meanwhile).

In this order, each a reason staff read on the item:
- the integration is removed or disabled, or the part that sends it is switched off
  (Grow, Reclaim, or the other apps' events);
- the contact is gone (erased) or has no email;
- the person is suppressed (an uploaded list of known contacts, emails or MD5s, or erased);
- Grow and Reclaim only: the custom sync filters (email domain, landing page URL or domain,
  state, referrer), each list "any of", all lists together;
- Grow only: the contact identified itself elsewhere (a userId, another integration's identify,
  or a contact another integration created);
- Reclaim only: the visitor completed checkout (an Order Completed after the event, or for
  the same cart).

Everything an item needs is loaded for the whole batch in a few queries (`Facts`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from django.db import connection
from django.db.models import Q

from contacts.hashing import email_md5
from contacts.models import Contact, ContactEvent, Suppression, SuppressionReason
from integrations.outbound.models import OutboxItem, OutboxSource
from integrations.outbound.payloads import ORDER_COMPLETED, cart_of, email_domain, page_domain

# Suppressions that stop sending out: uploaded known contacts, and erased people. Unsubscribed,
# bounced and complained are about email, and an "Unsubscribed" track is one of ours to send.
OUTBOUND_REASONS = (SuppressionReason.UPLOADED, SuppressionReason.ERASED)
APP_EVENT_SETTINGS = {
    "Survey Responded": "send_survey_responses",
    "Affiliate Conversion Approved": "send_conversions",
    "Unsubscribed": "send_unsubscribes",
}
FILTERS = (
    ("filter_email_domains", "email domain"),
    ("filter_landing_url", "landing page URL"),
    ("filter_landing_domains", "landing page domain"),
    ("filter_states", "state"),
    ("filter_referrers", "referrer"),
)


def split(value: str) -> list[str]:
    return [part.strip().lower() for part in (value or "").split(",") if part.strip()]


class Options:
    """An integration's settings, each parsed once for a batch (the rules read them per item)."""

    def __init__(self, behaviour) -> None:
        self.behaviour = behaviour
        self.integration = behaviour.integration
        self._values: dict[str, object] = {}
        self._lists: dict[str, list[str]] = {}

    def option(self, name: str):
        if name not in self._values:
            self._values[name] = self.behaviour.option(name)
        return self._values[name]

    def wanted(self, name: str) -> list[str]:
        if name not in self._lists:
            self._lists[name] = split(self.option(name))
        return self._lists[name]


class Row:
    """A few columns of a row, as attributes: what the rules and the payloads read, without the
    cost of a model instance (a batch reads thousands)."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, values) -> None:
        for name, value in zip(self.__slots__, values, strict=True):
            setattr(self, name, value)


class ContactRow(Row):
    __slots__ = (
        "pk",
        "email",
        "user_id",
        "source_id",
        "address",
        "first_name",
        "last_name",
        "created_at",
        "updated_at",
    )


class VisitorRow(Row):
    __slots__ = (
        "contact_id",
        "identified_at",
        "extra",
        "landing_page_domain",
        "landing_page_url",
        "page_title",
        "referrer",
    )


@dataclass
class Facts:
    """What the rules read about one integration's due items, loaded in one go."""

    contacts: dict[int, ContactRow] = field(default_factory=dict)
    visitors: dict[int, VisitorRow] = field(default_factory=dict)  # contact pk → its first visitor
    suppressed_md5: set[str] = field(default_factory=set)
    suppressed_users: set[str] = field(default_factory=set)
    elsewhere: dict[str, int] = field(default_factory=dict)  # email → the integration that identified it
    orders: dict[int, list[tuple[datetime, str]]] = field(default_factory=lambda: defaultdict(list))
    integration_names: dict[int, str] = field(default_factory=dict)


def load_facts(integration, items: list[OutboxItem]) -> Facts:
    from integrations.capture.models import Visitor
    from integrations.models import InboxMessage, Integration

    facts = Facts()
    contact_ids = {item.contact_id for item in items if item.contact_id}
    needs_visitor = {
        item.contact_id
        for item in items
        if item.source in (OutboxSource.GROW, OutboxSource.RECLAIM) and item.contact_id
    }
    if connection.vendor == "postgresql":
        # One array parameter each (= ANY), not an IN list of 2,000 placeholders: binding those
        # cost more than the queries.
        contacts, visitors = _rows_postgresql(integration, sorted(contact_ids), sorted(needs_visitor))
    else:
        contacts = Contact.objects.filter(pk__in=contact_ids).values_list(*ContactRow.__slots__) if contact_ids else []
        visitors = (
            Visitor.objects.filter(integration=integration, contact_id__in=needs_visitor)
            .order_by("contact_id", "first_seen_at", "pk")
            .values_list(*VisitorRow.__slots__)
            if needs_visitor
            else []
        )
    facts.contacts = {row[0]: ContactRow(row) for row in contacts}
    for row in visitors:
        if row[0] not in facts.visitors:
            facts.visitors[row[0]] = VisitorRow(row)
    emails = {c.email for c in facts.contacts.values() if c.email} | {i.email for i in items if i.email}
    md5s = {email_md5(e) for e in emails}
    user_ids = {c.user_id for c in facts.contacts.values() if c.user_id}
    if md5s or user_ids:
        for md5, user_id in Suppression.objects.filter(
            Q(email_md5__in=md5s) | Q(user_id__in=user_ids), reason__in=OUTBOUND_REASONS
        ).values_list("email_md5", "user_id"):
            if md5:
                facts.suppressed_md5.add(md5)
            if user_id:
                facts.suppressed_users.add(user_id)
    grow_emails = {
        facts.contacts[i.contact_id].email
        for i in items
        if i.source == OutboxSource.GROW and i.contact_id in facts.contacts and facts.contacts[i.contact_id].email
    }
    if grow_emails:
        for email, other in (
            InboxMessage.objects.filter(email__in=grow_emails, type="identify")
            .exclude(integration_id=integration.pk)
            .values_list("email", "integration_id")
        ):
            facts.elsewhere.setdefault(email, other)
    reclaim = [i for i in items if i.source == OutboxSource.RECLAIM and i.contact_id]
    if reclaim:
        since = min(i.event_at for i in reclaim)
        for contact_id, at, properties in ContactEvent.objects.filter(
            contact_id__in={i.contact_id for i in reclaim}, name=ORDER_COMPLETED, timestamp__gte=since
        ).values_list("contact_id", "timestamp", "properties"):
            facts.orders[contact_id].append((at, cart_of(properties if isinstance(properties, dict) else {})))
    others = {v for v in facts.elsewhere.values()} | {c.source_id for c in facts.contacts.values() if c.source_id}
    if others:
        facts.integration_names = dict(Integration.objects.filter(pk__in=others).values_list("pk", "name"))
    return facts


_CONTACTS_SQL = (
    "SELECT id, email, user_id, source_id, address, first_name, last_name, created_at, updated_at "
    "FROM contacts_contact WHERE id = ANY(%s)"
)
_VISITORS_SQL = (
    "SELECT DISTINCT ON (contact_id) contact_id, identified_at, extra, landing_page_domain, landing_page_url, "
    "page_title, referrer FROM integrations_visitor WHERE integration_id = %s AND contact_id = ANY(%s) "
    "ORDER BY contact_id, first_seen_at, id"
)


def _rows_postgresql(integration, contact_ids: list[int], visitor_ids: list[int]) -> tuple[list, list]:
    from integrations.capture.models import Visitor

    assert Contact._meta.db_table == "contacts_contact" and Visitor._meta.db_table == "integrations_visitor"
    contacts: list = []
    visitors: list = []
    with connection.cursor() as cursor:
        if contact_ids:
            cursor.execute(_CONTACTS_SQL, [contact_ids])
            contacts = [(*row[:4], _json(row[4]), *row[5:]) for row in cursor.fetchall()]
        if visitor_ids:
            cursor.execute(_VISITORS_SQL, [integration.pk, visitor_ids])
            visitors = [(row[0], row[1], _json(row[2]), *row[3:]) for row in cursor.fetchall()]
    return contacts, visitors


def _json(value):
    """A jsonb column as Django's cursor returns it (text), parsed."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def skip_reason(behaviour: Options, item: OutboxItem, facts: Facts) -> str:
    """Why `item` must not be sent, or "" when it goes."""
    integration = behaviour.integration
    if not integration.enabled:
        return "integration removed" if integration.settings.get("removed_at") else "integration disabled"
    if item.source == OutboxSource.TEST:
        return ""
    if item.source == OutboxSource.GROW and not behaviour.option("grow_enabled"):
        return "Grow is switched off"
    if item.source == OutboxSource.RECLAIM and not behaviour.option("reclaim_enabled"):
        return "Reclaim is switched off"
    if item.source == OutboxSource.EVENT:
        setting = APP_EVENT_SETTINGS.get(item.event)
        if setting is None or not behaviour.option(setting):
            return f"sending {item.event!r} is switched off"
    contact = facts.contacts.get(item.contact_id) if item.contact_id else None
    if contact is None:
        return "contact erased or gone"
    email = contact.email or item.email
    if not email:
        return "the contact has no email"
    if email_md5(email) in facts.suppressed_md5 or (contact.user_id and contact.user_id in facts.suppressed_users):
        return "suppressed"
    if item.source in (OutboxSource.GROW, OutboxSource.RECLAIM):
        reason = filtered(behaviour, contact, facts.visitors.get(contact.pk))
        if reason:
            return reason
    if item.source == OutboxSource.GROW:
        reason = known_elsewhere(integration, contact, facts)
        if reason:
            return reason
    if item.source == OutboxSource.RECLAIM:
        cart = cart_of(item.payload.get("properties") or {}) if isinstance(item.payload, dict) else ""
        for at, order_cart in facts.orders.get(contact.pk, ()):
            if at >= item.event_at or (cart and order_cart == cart):
                return "checkout completed (Order Completed)"
    return ""


def filtered(behaviour: Options, contact: ContactRow, visitor: VisitorRow | None) -> str:
    """The first custom sync filter the contact does not pass, as a reason; "" when it passes."""
    for setting, label in FILTERS:
        wanted = behaviour.wanted(setting)
        if not wanted:
            continue
        value = _value_for(setting, contact, visitor)
        if not _matches(setting, value, wanted):
            shown = value or "(none)"
            return f"filtered: {label} {shown[:120]} is not in {setting}"
    return ""


def _value_for(setting: str, contact: ContactRow, visitor: VisitorRow | None) -> str:
    if setting == "filter_email_domains":
        return email_domain(contact.email or "")
    if setting == "filter_states":
        address = contact.address if isinstance(contact.address, dict) else {}
        return str(address.get("state") or address.get("region") or "").strip().lower()
    if visitor is None:
        return ""
    if setting == "filter_landing_url":
        return visitor.landing_page_url.lower()
    if setting == "filter_landing_domains":
        return (visitor.landing_page_domain or page_domain(visitor.landing_page_url)).lower()
    return visitor.referrer.lower()


def _matches(setting: str, value: str, wanted: list[str]) -> bool:
    if not value:
        return False
    if setting == "filter_email_domains":
        # "gmail.com", or "gmail" for every gmail.* domain.
        return any(value == w or value.endswith("." + w) or value.split(".")[0] == w for w in wanted)
    if setting == "filter_landing_domains":
        return any(value == w or value.endswith("." + w) for w in wanted)
    if setting == "filter_states":
        return value in wanted
    return any(w in value for w in wanted)  # URLs: the full URL or a portion


def known_elsewhere(integration, contact: ContactRow, facts: Facts) -> str:
    if contact.user_id:
        return f"identified elsewhere: the contact has a userId ({contact.user_id[:60]})"
    if contact.source_id and contact.source_id != integration.pk:
        name = facts.integration_names.get(contact.source_id, f"integration {contact.source_id}")
        return f"identified elsewhere: already a contact from {name}"
    other = facts.elsewhere.get(contact.email or "")
    if other:
        name = facts.integration_names.get(other, f"integration {other}")
        return f"identified elsewhere: an identify from {name}"
    return ""
