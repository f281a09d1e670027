"""Contact operations that act on the database at once: erase, merge, suppress, unsubscribe.

Views, admin actions, tasks and the drain all call these; none of them write contacts directly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from contacts.models import (
    AudienceMembership,
    Contact,
    ContactEvent,
    ContactIdentity,
    ErasureRecord,
    ListMembership,
    Suppression,
    SuppressionReason,
)


def email_md5(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode()).hexdigest()  # noqa: S324 - a lookup key


@transaction.atomic
def contact_erase(
    *,
    contact: Contact | None = None,
    user_id: str = "",
    email: str = "",
    requested_by: str,
    integration=None,
    message_id: str = "",
) -> ErasureRecord:
    """GDPR erase: delete the person's data and suppress them so messages cannot bring them back.

    Inbox rows that carry their ids are redacted too. What remains is a record that an erasure
    happened, without the data.
    """
    from integrations.models import InboxMessage

    user_ids = {user_id} if user_id else set()
    emails = {email.strip().lower()} if email else set()
    anon_ids: set[str] = set()
    if contact is None and (user_id or email):
        query = Q()
        if user_id:
            query |= Q(user_id=user_id)
        if email:
            query |= Q(email=email.strip().lower())
        contact = Contact.objects.filter(query).first()
    events_deleted = 0
    contact_pk = None
    if contact is not None:
        contact_pk = contact.pk
        if contact.user_id:
            user_ids.add(contact.user_id)
        if contact.email:
            emails.add(contact.email)
        anon_ids.update(contact.identities.values_list("anonymous_id", flat=True))
        events_deleted = ContactEvent.objects.filter(contact=contact).count()
        contact.delete()
    for value in user_ids:
        Suppression.objects.update_or_create(
            user_id=value, defaults={"reason": SuppressionReason.ERASED, "email": "", "note": "erased"}
        )
    for value in emails:
        Suppression.objects.update_or_create(
            email_md5=email_md5(value), defaults={"reason": SuppressionReason.ERASED, "email": "", "note": "erased"}
        )
    redact = Q(pk__in=[])
    if user_ids:
        redact |= Q(user_id__in=user_ids)
    if emails:
        redact |= Q(email__in=emails)
    if anon_ids:
        redact |= Q(anonymous_id__in=anon_ids)
    inbox = InboxMessage.objects.filter(redact).exclude(type="delete")
    redacted = inbox.update(payload={"redacted": True}, user_id="", anonymous_id="", email="", event="", warnings=[])
    return ErasureRecord.objects.create(
        contact_pk=contact_pk,
        integration=integration,
        message_id=message_id[:255],
        requested_by=requested_by[:100],
        events_deleted=events_deleted,
        inbox_redacted=redacted,
    )


@transaction.atomic
def contact_merge(*, source: Contact, target: Contact) -> Contact:
    """Alias: fold `source` into `target`. Newer values win, per field and property stamp."""
    if source.pk == target.pk:
        return target
    ContactEvent.objects.filter(contact=source).update(contact=target)
    ContactIdentity.objects.filter(contact=source).update(contact=target)
    target_lists = set(ListMembership.objects.filter(contact=target).values_list("mailing_list_id", flat=True))
    ListMembership.objects.filter(contact=source).exclude(mailing_list_id__in=target_lists).update(contact=target)
    target_audiences = set(AudienceMembership.objects.filter(contact=target).values_list("key", flat=True))
    AudienceMembership.objects.filter(contact=source).exclude(key__in=target_audiences).update(contact=target)

    for field in ("first_name", "last_name", "phone", "address"):
        if getattr(source, field) and (
            not getattr(target, field) or source.stamps.get(field, "") > target.stamps.get(field, "")
        ):
            setattr(target, field, getattr(source, field))
            target.stamps[field] = source.stamps.get(field, "")
    for name, value in source.properties.items():
        if name not in target.properties or source.stamps.get(name, "") > target.stamps.get(name, ""):
            target.properties[name] = value
            target.stamps[name] = source.stamps.get(name, "")
    for key, value in source.raw_traits.items():
        target.raw_traits.setdefault(key, value)
    source_user_id, source_email = source.user_id, source.email
    source.delete()
    if source_user_id and not target.user_id:
        target.user_id = source_user_id
    elif source_user_id:
        ContactIdentity.objects.get_or_create(anonymous_id=source_user_id, defaults={"contact": target})
    if source_email and not target.email:
        target.email = source_email
    if source.created_at < target.created_at:
        target.created_at = source.created_at
    target.updated_at = timezone.now()
    target.save()
    return target


@transaction.atomic
def contact_unsubscribe(*, contacts: Iterable[Contact], reason: str = "unsubscribed by staff") -> int:
    now = timezone.now()
    ids = [c.pk for c in contacts]
    updated = Contact.objects.filter(pk__in=ids, subscribed=True).update(
        subscribed=False, subscription_changed_at=now, subscription_reason=reason[:200], updated_at=now
    )
    emails = Contact.objects.filter(pk__in=ids, email__isnull=False).values_list("email", flat=True)
    suppressions_add(emails=list(emails), reason=SuppressionReason.UNSUBSCRIBED, note=reason)
    return updated


def suppressions_add(
    *,
    emails: Iterable[str] = (),
    md5s: Iterable[str] = (),
    user_ids: Iterable[str] = (),
    reason: str = SuppressionReason.UPLOADED,
    note: str = "",
    keep_plain: bool = False,
) -> int:
    """Add suppressions in bulk, idempotently. Returns how many were new."""
    now = timezone.now()
    rows: dict[str, Suppression] = {}
    for email in emails:
        email = email.strip().lower()
        if email:
            key = email_md5(email)
            rows[key] = Suppression(
                email_md5=key, email=email if keep_plain else "", reason=reason, note=note[:255], created_at=now
            )
    for md5 in md5s:
        md5 = md5.strip().lower()
        if md5:
            rows.setdefault(md5, Suppression(email_md5=md5, reason=reason, note=note[:255], created_at=now))
    user_rows = {
        u: Suppression(user_id=u, reason=reason, note=note[:255], created_at=now) for u in {str(u) for u in user_ids} if u
    }
    created = 0
    for batch_rows, field in ((list(rows.values()), "email_md5"), (list(user_rows.values()), "user_id")):
        for start in range(0, len(batch_rows), 5000):
            chunk = batch_rows[start : start + 5000]
            keys = [getattr(r, field) for r in chunk]
            existing = set(Suppression.objects.filter(**{f"{field}__in": keys}).values_list(field, flat=True))
            new = [r for r in chunk if getattr(r, field) not in existing]
            Suppression.objects.bulk_create(new, ignore_conflicts=True)
            created += len(new)
    return created
