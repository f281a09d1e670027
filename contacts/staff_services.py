"""Contact writes made by staff through the REST API: create, update, resubscribe.

Every staff edit is stamped with the current time, so an older Segment message arriving
later never overwrites it (the drain compares per-field stamps).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from contacts.batch import stamp
from contacts.models import Contact, ListMembership, MailingList, Suppression, SuppressionReason
from contacts.services import contact_unsubscribe, email_md5

UNSET: Any = object()


def contact_is_erased(*, email: str | None = None, user_id: str | None = None) -> bool:
    """Whether an erasure suppression blocks re-creating this person."""
    keys = []
    if email:
        keys.append(Suppression.objects.filter(email_md5=email_md5(email), reason=SuppressionReason.ERASED))
    if user_id:
        keys.append(Suppression.objects.filter(user_id=user_id, reason=SuppressionReason.ERASED))
    return any(query.exists() for query in keys)


@transaction.atomic
def contact_create(
    *,
    email: str | None = None,
    user_id: str | None = None,
    properties: dict[str, Any] | None = None,
    mailing_lists: list[MailingList] | None = None,
    subscribed: bool = True,
    actor: str,
) -> Contact:
    now = timezone.now()
    contact = Contact(email=email or None, user_id=user_id or None, created_at=now, updated_at=now, stamps={})
    for key in ("email", "user_id"):
        if getattr(contact, key):
            contact.stamps[key] = stamp(now)
    _set_properties(contact, properties or {}, now)
    contact.save()
    if mailing_lists:
        _set_lists(contact, mailing_lists, now)
    if not subscribed:
        contact_unsubscribe(contacts=[contact], reason=f"unsubscribed via the API by {actor}")
        contact.refresh_from_db()
    return contact


@transaction.atomic
def contact_update(
    *,
    contact: Contact,
    email: str | None = UNSET,
    user_id: str | None = UNSET,
    properties: dict[str, Any] | None = None,
    mailing_lists: list[MailingList] | None = None,
    subscribed: bool | None = None,
    actor: str,
) -> Contact:
    """Change only what is given. `mailing_lists` is the full set the contact is subscribed to."""
    now = timezone.now()
    for key, value in (("email", email), ("user_id", user_id)):
        if value is not UNSET:
            setattr(contact, key, value or None)
            contact.stamps[key] = stamp(now)
    if properties:
        _set_properties(contact, properties, now)
    contact.updated_at = now
    contact.save()
    if mailing_lists is not None:
        _set_lists(contact, mailing_lists, now)
    if subscribed is False and contact.subscribed:
        contact_unsubscribe(contacts=[contact], reason=f"unsubscribed via the API by {actor}")
        contact.refresh_from_db()
    elif subscribed is True and not contact.subscribed:
        contact_resubscribe(contact=contact, reason=f"resubscribed via the API by {actor}")
    return contact


@transaction.atomic
def contact_resubscribe(*, contact: Contact, reason: str) -> Contact:
    """Subscribe again and lift the unsubscribe suppression (never an erasure or a bounce)."""
    now = timezone.now()
    contact.subscribed = True
    contact.subscription_changed_at = now
    contact.subscription_reason = reason[:200]
    contact.stamps["subscribed"] = stamp(now)
    contact.updated_at = now
    contact.save(update_fields=["subscribed", "subscription_changed_at", "subscription_reason", "stamps", "updated_at"])
    if contact.email:
        Suppression.objects.filter(email_md5=email_md5(contact.email), reason=SuppressionReason.UNSUBSCRIBED).delete()
    return contact


def _set_properties(contact: Contact, properties: dict[str, Any], now) -> None:
    for name, value in properties.items():
        if value is None:
            contact.properties.pop(name, None)
        else:
            contact.properties[name] = value
        contact.stamps[name] = stamp(now)


def _set_lists(contact: Contact, lists: list[MailingList], now) -> None:
    wanted = {m.pk for m in lists}
    current = {m.mailing_list_id: m for m in ListMembership.objects.filter(contact=contact)}
    ListMembership.objects.filter(contact=contact, subscribed=True).exclude(mailing_list_id__in=wanted).update(
        subscribed=False, updated_at=now
    )
    ListMembership.objects.filter(contact=contact, subscribed=False, mailing_list_id__in=wanted).update(
        subscribed=True, updated_at=now
    )
    ListMembership.objects.bulk_create(
        [
            ListMembership(contact=contact, mailing_list_id=pk, subscribed=True, updated_at=now)
            for pk in wanted
            if pk not in current
        ]
    )
