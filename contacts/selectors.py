"""Reads about contacts that more than one caller needs (views, serializers, other apps)."""

from __future__ import annotations

from contacts.hashing import email_md5
from contacts.models import Contact, ContactEvent, Suppression, SuppressionReason


def contact_is_erased(*, email: str | None = None, user_id: str | None = None) -> bool:
    """Whether an erasure suppression blocks re-creating this person."""
    keys = []
    if email:
        keys.append(Suppression.objects.filter(email_md5=email_md5(email), reason=SuppressionReason.ERASED))
    if user_id:
        keys.append(Suppression.objects.filter(user_id=user_id, reason=SuppressionReason.ERASED))
    return any(query.exists() for query in keys)


def contact_events(*, contact: Contact):
    """The contact's timeline, newest first."""
    return ContactEvent.objects.filter(contact=contact).order_by("-timestamp", "-id")


def known_ids(ids: set[str]) -> set[str]:
    """Which of `ids` name a contact now, as a userId or as an anonymousId (or merged id)."""
    from contacts.models import ContactIdentity

    if not ids:
        return set()
    found = set(ContactIdentity.objects.filter(anonymous_id__in=ids).values_list("anonymous_id", flat=True))
    found |= set(Contact.objects.filter(user_id__in=ids).values_list("user_id", flat=True))
    return found
