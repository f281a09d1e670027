"""The contact page's timeline: events and changes (traits old → new, lists, audiences,
subscription) in one list, newest first, each linked to the inbox row that caused it, in pages.

Two index range scans a page (event_contact_time and change_contact_at), merged in Python:
page N reads at most N × PAGE_SIZE + 1 rows of each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.urls import NoReverseMatch, reverse

from common.admin_tools import shorten
from contacts.models import ChangeKind, Contact, ContactChange, ContactEvent

PAGE_SIZE = 25
PAGE_PARAM = "timeline"

KIND_VARIANT = {
    "event": "info",
    ChangeKind.FIELD: "primary",
    ChangeKind.PROPERTY: "primary",
    ChangeKind.LIST: "success",
    ChangeKind.AUDIENCE: "warning",
    ChangeKind.SUBSCRIPTION: "danger",
}


@dataclass
class Entry:
    at: datetime
    kind: str
    label: str
    title: str
    old: str = ""
    new: str = ""
    detail: str = ""
    inbox_id: int | None = None
    inbox_url: str = ""
    actor: str = ""
    url: str = ""

    @property
    def variant(self) -> str:
        return KIND_VARIANT.get(self.kind, "default")


@dataclass
class TimelinePage:
    entries: list[Entry]
    number: int
    has_next: bool
    events_url: str

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def shown(value: Any) -> str:
    """A stored value as staff read it: — for nothing, lists joined, JSON for the rest."""
    if value is None or value == "" or value == {}:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "—"
    if isinstance(value, str):
        return shorten(value, 80)
    return shorten(json.dumps(value, ensure_ascii=False, default=str), 80)


def _inbox_url(inbox_id: int | None) -> str:
    if inbox_id is None:
        return ""
    try:
        # By name: contacts does not import the inbox's app (the layers go the other way).
        return reverse("admin:integrations_inboxmessage_change", args=[inbox_id])
    except NoReverseMatch:
        return ""


def _event_entry(event: ContactEvent) -> Entry:
    props = event.properties or {}
    detail = ", ".join(f"{k}={shown(v)}" for k, v in list(props.items())[:4])
    return Entry(
        at=event.timestamp,
        kind="event",
        label=event.type,
        title=event.name,
        detail=shorten(detail, 120),
        inbox_id=event.inbox_message_id,
        inbox_url=_inbox_url(event.inbox_message_id),
        actor=event.integration.name if event.integration_id and event.integration else "",
        url=reverse("admin:contacts_contactevent_change", args=[event.pk]),
    )


def _change_entry(change: ContactChange) -> Entry:
    titles = {
        ChangeKind.LIST: f"mailing list {change.name}",
        ChangeKind.AUDIENCE: f"audience {change.name}",
        ChangeKind.SUBSCRIPTION: "subscription",
    }
    if change.kind in (ChangeKind.LIST, ChangeKind.AUDIENCE, ChangeKind.SUBSCRIPTION):
        words = {
            ChangeKind.LIST: ("unsubscribed", "subscribed"),
            ChangeKind.AUDIENCE: ("left", "entered"),
            ChangeKind.SUBSCRIPTION: ("unsubscribed", "subscribed"),
        }[change.kind]
        old = "—" if change.old is None else words[bool(change.old)]
        new = "—" if change.new is None else words[bool(change.new)]
    else:
        old, new = shown(change.old), shown(change.new)
    return Entry(
        at=change.at,
        kind=change.kind,
        label=ChangeKind(change.kind).label.lower(),
        title=titles.get(change.kind, change.name),
        old=old,
        new=new,
        inbox_id=change.inbox_message_id,
        inbox_url=_inbox_url(change.inbox_message_id),
        actor=change.actor,
    )


def timeline_page(contact: Contact, number: int = 1) -> TimelinePage:
    number = max(1, number)
    wanted = number * PAGE_SIZE + 1
    events = ContactEvent.objects.filter(contact=contact).select_related("integration").order_by("-timestamp", "-id")
    changes = ContactChange.objects.filter(contact=contact).order_by("-at", "-id")
    entries = [_event_entry(e) for e in events[:wanted]] + [_change_entry(c) for c in changes[:wanted]]
    entries.sort(key=lambda entry: entry.at, reverse=True)
    start = (number - 1) * PAGE_SIZE
    return TimelinePage(
        entries=entries[start : start + PAGE_SIZE],
        number=number,
        has_next=len(entries) > start + PAGE_SIZE,
        events_url=reverse("admin:contacts_contactevent_changelist") + f"?contact__id__exact={contact.pk}",
    )


def page_number(raw: str | None) -> int:
    try:
        return max(1, min(int(raw or 1), 10_000))
    except ValueError:
        return 1
