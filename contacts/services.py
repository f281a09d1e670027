"""Contact writes that act on the database at once: create and edit (staff), alias and merge,
erase, subscribe and unsubscribe, suppress.

Views, admin actions, tasks and the drain all call these; none of them write contacts directly.
Staff edits are stamped with the current time, so an older Segment message arriving later
never overwrites them (the drain compares per-value stamps). What happened is announced on
contacts.signals for the apps above.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from contacts.hashing import email_md5
from contacts.models import (
    AudienceMembership,
    ChangeKind,
    Contact,
    ContactChange,
    ContactEvent,
    ContactIdentity,
    ErasureRecord,
    ListMembership,
    MailingList,
    Suppression,
    SuppressionReason,
)
from contacts.signals import RecordedEvent, contact_erased, contacts_merged, contacts_unsubscribed, events_recorded
from contacts.stamps import stamp, writer_key


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

    Every contact the userId or email names is erased (they can be two contacts before an
    alias joins them). Inbox rows that carry their ids are redacted too, the delete request
    included (by the receivers of contacts.signals.contact_erased). What remains is a record
    that an erasure happened, without the data. Running it twice for the same request (a
    re-drained delete) records it once.
    """
    user_ids = {user_id} if user_id else set()
    emails = {email.strip().lower()} if email else set()
    query = Q(pk__in=[contact.pk]) if contact is not None else Q(pk__in=[])
    if user_id:
        # A userId merged by alias lives on as an identity of the surviving contact.
        query |= Q(user_id=user_id) | Q(identities__anonymous_id=user_id)
    if email:
        query |= Q(email=email.strip().lower())
    contacts = list(Contact.objects.filter(query).distinct())
    anon_ids: set[str] = set()
    for found in contacts:
        if found.user_id:
            user_ids.add(found.user_id)
        if found.email:
            emails.add(found.email)
    pks = [c.pk for c in contacts]
    if contacts:
        anon_ids.update(ContactIdentity.objects.filter(contact_id__in=pks).values_list("anonymous_id", flat=True))
        events_deleted = ContactEvent.objects.filter(contact_id__in=pks).count()
    else:
        events_deleted = 0
    # Receivers redact what the apps above keep about these ids, before the rows that point
    # at the contacts go (their foreign keys would be nulled, and the link lost).
    answers = contact_erased.send(
        sender=Contact, user_ids=user_ids, emails=emails, anonymous_ids=anon_ids, contact_pks=pks
    )
    redacted = sum(answer for _receiver, answer in answers if isinstance(answer, int))
    if pks:
        # Cascades to identities, events, list and audience memberships.
        Contact.objects.filter(pk__in=pks).delete()
    _suppress_erased(user_ids=sorted(user_ids), md5s=sorted(email_md5(e) for e in emails))
    if message_id and integration is not None:
        existing = ErasureRecord.objects.filter(integration=integration, message_id=message_id[:255]).first()
        if existing is not None:
            return existing
    return ErasureRecord.objects.create(
        contact_pk=contacts[0].pk if contacts else None,
        integration=integration,
        message_id=message_id[:255],
        requested_by=requested_by[:100],
        events_deleted=events_deleted,
        inbox_redacted=redacted,
    )


def _suppress_erased(*, user_ids: list[str], md5s: list[str]) -> None:
    """One suppression row per erased person where possible, so staff lift it in one place."""
    taken_users = set(Suppression.objects.filter(user_id__in=user_ids).values_list("user_id", flat=True))
    taken_md5s = set(Suppression.objects.filter(email_md5__in=md5s).values_list("email_md5", flat=True))
    Suppression.objects.filter(Q(user_id__in=user_ids) | Q(email_md5__in=md5s)).update(
        reason=SuppressionReason.ERASED, email="", note="erased"
    )
    free_users = [u for u in user_ids if u not in taken_users]
    free_md5s = [m for m in md5s if m not in taken_md5s]
    rows = []
    while free_users or free_md5s:
        rows.append(
            Suppression(
                user_id=free_users.pop(0) if free_users else None,
                email_md5=free_md5s.pop(0) if free_md5s else None,
                reason=SuppressionReason.ERASED,
                note="erased",
            )
        )
    Suppression.objects.bulk_create(rows, ignore_conflicts=True)


@transaction.atomic
def contact_merge(*, source: Contact, target: Contact) -> Contact:
    """Alias: fold `source` into `target`. Newer values win, per field and property stamp.

    Events, anonymousIds, list and audience memberships move to the target; where both have
    a membership of the same list or audience, the more recently updated one stays. The
    source's userId lives on as an identity of the target, so later messages with it land
    on the merged contact.
    """
    if source.pk == target.pk:
        return target
    ContactEvent.objects.filter(contact=source).update(contact=target)
    ContactChange.objects.filter(contact=source).update(contact=target)
    ContactIdentity.objects.filter(contact=source).update(contact=target)
    contacts_merged.send(sender=Contact, source_pk=source.pk, target_pk=target.pk)

    target_lists = {m.mailing_list_id: m for m in ListMembership.objects.filter(contact=target)}
    for membership in ListMembership.objects.filter(contact=source):
        mine = target_lists.get(membership.mailing_list_id)
        if mine is None:
            membership.contact = target
            membership.save(update_fields=["contact"])
        elif membership.updated_at > mine.updated_at:
            mine.subscribed, mine.updated_at = membership.subscribed, membership.updated_at
            mine.save(update_fields=["subscribed", "updated_at"])
    target_audiences = {a.key: a for a in AudienceMembership.objects.filter(contact=target)}
    for audience in AudienceMembership.objects.filter(contact=source):
        mine = target_audiences.get(audience.key)
        if mine is None:
            audience.contact = target
            audience.save(update_fields=["contact"])
        elif audience.updated_at > mine.updated_at:
            mine.member, mine.updated_at = audience.member, audience.updated_at
            mine.entered_at = audience.entered_at or mine.entered_at
            mine.exited_at = audience.exited_at if not audience.member else None
            mine.save(update_fields=["member", "entered_at", "exited_at", "updated_at"])

    def source_wins(key: str, has_value: bool) -> bool:
        theirs, ours = source.stamps.get(key, ""), target.stamps.get(key, "")
        if theirs or ours:
            return theirs > ours
        return has_value  # neither stamped (created by staff): fill blanks only

    for field in ("first_name", "last_name", "phone", "address"):
        if source_wins(field, bool(getattr(source, field)) and not getattr(target, field)):
            setattr(target, field, getattr(source, field))
            target.stamps[field] = source.stamps.get(field, "")
    # Stamps without a value are resets (null): a newer reset removes the target's value.
    for name in set(source.properties) | {k for k in source.stamps if k in target.properties}:
        if source_wins(name, name not in target.properties):
            if name in source.properties:
                target.properties[name] = source.properties[name]
            else:
                target.properties.pop(name, None)
            target.stamps[name] = source.stamps.get(name, "")
    for key, value in source.raw_traits.items():
        if source_wins(f"~{key}", key not in target.raw_traits):
            target.raw_traits[key] = value
            target.stamps[f"~{key}"] = source.stamps.get(f"~{key}", "")
    if source_wins("subscribed", False):
        target.subscribed = source.subscribed
        target.subscription_changed_at = source.subscription_changed_at
        target.subscription_reason = source.subscription_reason
        target.stamps["subscribed"] = source.stamps["subscribed"]
    source_user_id, source_email = source.user_id, source.email
    source_created, source_seen = source.created_at, source.last_seen_at
    source.delete()
    if source_user_id and not target.user_id:
        target.user_id = source_user_id
    elif source_user_id and source_user_id != target.user_id:
        ContactIdentity.objects.get_or_create(anonymous_id=source_user_id, defaults={"contact": target})
    if source_email and not target.email:
        target.email = source_email
        target.stamps["email"] = source.stamps.get("email", "")
    if source_created < target.created_at:
        target.created_at = source_created
    if source_seen and (target.last_seen_at is None or source_seen > target.last_seen_at):
        target.last_seen_at = source_seen
    target.updated_at = timezone.now()
    target.save()
    return target


@dataclass
class AliasOutcome:
    contact: Contact
    merged_pk: int | None = None  # the contact folded into `contact`, if two were joined
    linked_anonymous_id: str = ""  # previousId, now an identity of `contact`


@transaction.atomic
def contact_alias(*, user_id: str, previous_id: str) -> AliasOutcome:
    """Segment alias: previousId (an anonymousId or an old userId) and userId are one person.

    Both known as different contacts: they are merged into the userId's. Only one known: the
    other id joins it. Neither known: raises Wait, so the alias waits until an identify
    names either id.
    """
    from common.outcomes import Wait

    target = _contact_named(user_id)
    source = _contact_named(previous_id)
    if source is None and target is None:
        raise Wait(f"neither previousId {previous_id!r} nor userId {user_id!r} is known yet; waits for an identify")
    if target is None:
        # previousId now answers to userId too.
        if not source.user_id:
            source.user_id = user_id
            source.stamps["user_id"] = stamp(timezone.now())
            source.updated_at = timezone.now()
            source.save(update_fields=["user_id", "stamps", "updated_at"])
        elif source.user_id != user_id:
            ContactIdentity.objects.get_or_create(anonymous_id=user_id, defaults={"contact": source})
        return AliasOutcome(contact=source)
    if source is None:
        ContactIdentity.objects.get_or_create(anonymous_id=previous_id, defaults={"contact": target})
        return AliasOutcome(contact=target, linked_anonymous_id=previous_id)
    if source.pk == target.pk:
        return AliasOutcome(contact=target)
    source_pk = source.pk
    return AliasOutcome(contact=contact_merge(source=source, target=target), merged_pk=source_pk)


def _contact_named(an_id: str) -> Contact | None:
    """The contact a userId names: as its userId, or as an id merged into it."""
    return (
        Contact.objects.filter(user_id=an_id).first() or Contact.objects.filter(identities__anonymous_id=an_id).first()
    )


@transaction.atomic
def contact_unsubscribe(*, contacts: Iterable[Contact], reason: str = "unsubscribed by staff") -> int:
    now = timezone.now()
    ids = [c.pk for c in contacts]
    subscribed = list(Contact.objects.filter(pk__in=ids, subscribed=True).values_list("pk", flat=True))
    updated = Contact.objects.filter(pk__in=subscribed, subscribed=True).update(
        subscribed=False, subscription_changed_at=now, subscription_reason=reason[:200], updated_at=now
    )
    _record(subscribed, ChangeKind.SUBSCRIPTION, "subscribed", True, False, now, reason)
    emails = Contact.objects.filter(pk__in=ids, email__isnull=False).values_list("email", flat=True)
    suppressions_add(emails=list(emails), reason=SuppressionReason.UNSUBSCRIBED, note=reason)
    if updated:
        contacts_unsubscribed.send(sender=Contact, contact_ids=ids, reason=reason)
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
        u: Suppression(user_id=u, reason=reason, note=note[:255], created_at=now)
        for u in {str(u) for u in user_ids}
        if u
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


# --- events that start loops ----------------------------------------------------------------
EVENT_SOURCES = ("segment", "internal")


@transaction.atomic
def contact_event_record(
    *,
    contact: Contact,
    name: str,
    properties: dict[str, Any] | None = None,
    timestamp=None,
    source: str = "internal",
) -> ContactEvent:
    """The apps' own events on a contact ("Survey Responded", "Affiliate Conversion Approved").

    The one internal event API: the event joins the contact's timeline (type "internal", or
    "track" when `source` is "segment") and is announced on contacts.signals.events_recorded,
    the same path a drained Segment track takes, so a loop starts from it in the same way.
    Call it inside your own transaction, once per event of yours: each call is a new event.
    """
    if source not in EVENT_SOURCES:
        raise ValueError(f"source must be one of {', '.join(EVENT_SOURCES)}, not {source!r}")
    if not name or not isinstance(name, str):
        raise ValueError("an event needs a name")
    event = ContactEvent.objects.create(
        contact=contact,
        type="internal" if source == "internal" else "track",
        name=name[:255],
        properties=dict(properties or {}),
        timestamp=timestamp or timezone.now(),
    )
    events_announce(
        [
            RecordedEvent(
                contact_id=event.contact_id,
                event_id=event.pk,
                name=event.name,
                properties=event.properties,
                timestamp=event.timestamp,
                integration_id=event.integration_id,
                source=source,
            )
        ]
    )
    return event


def events_announce(records: list[RecordedEvent]) -> None:
    """Send events_recorded once for `records` (events just stored). A re-run chunk announces
    the same event ids again, so receivers stay idempotent."""
    if records and events_recorded.has_listeners():
        events_recorded.send(sender=ContactEvent, events=records)


# --- staff edits (the REST API and the admin) -----------------------------------------------
# Fields staff may set, each stamped so an older Segment message never overwrites the edit.
STAFF_FIELDS = ("email", "user_id", "first_name", "last_name", "phone", "address")


def _set_fields(contact: Contact, values: dict[str, Any], now) -> None:
    for key, value in values.items():
        if key in ("email", "user_id"):
            value = value or None
        elif key == "address":
            value = value or {}
        else:
            value = value or ""
        setattr(contact, key, value)
        contact.stamps[key] = stamp(now)


@transaction.atomic
def contact_create(
    *,
    properties: dict[str, Any] | None = None,
    mailing_lists: list[MailingList] | None = None,
    subscribed: bool = True,
    actor: str,
    **fields: Any,
) -> Contact:
    """A contact made by staff (the API or the admin). `fields` are among STAFF_FIELDS."""
    unknown = set(fields) - set(STAFF_FIELDS)
    if unknown:
        raise TypeError(f"contact_create() got unknown fields: {', '.join(sorted(unknown))}")
    now = timezone.now()
    contact = Contact(created_at=now, updated_at=now, stamps={}, subscription_reason=f"created by {actor}"[:200])
    _set_fields(contact, {k: v for k, v in fields.items() if v not in (None, "", {})}, now)
    _set_properties(contact, properties or {}, now)
    contact.save()
    if mailing_lists:
        _set_lists(contact, mailing_lists, now)
    if not subscribed:
        contact_unsubscribe(contacts=[contact], reason=f"unsubscribed by {actor}")
        contact.refresh_from_db()
    return contact


@transaction.atomic
def contact_update(
    *,
    contact: Contact,
    properties: dict[str, Any] | None = None,
    mailing_lists: list[MailingList] | None = None,
    subscribed: bool | None = None,
    actor: str,
    **fields: Any,
) -> Contact:
    """Change only what is given. `fields` are among STAFF_FIELDS; each change is stamped now,
    so a Segment message dated earlier can no longer overwrite it. `mailing_lists` is the full
    set the contact is subscribed to; a property set to None is removed."""
    unknown = set(fields) - set(STAFF_FIELDS)
    if unknown:
        raise TypeError(f"contact_update() got unknown fields: {', '.join(sorted(unknown))}")
    now = timezone.now()
    before = _values(contact, fields, properties)
    _set_fields(contact, fields, now)
    if properties:
        _set_properties(contact, properties, now)
    contact.updated_at = now
    contact.save()
    after = _values(contact, fields, properties)
    ContactChange.objects.bulk_create(
        ContactChange(contact=contact, kind=kind, name=name, old=old, new=after[kind, name], at=now, actor=actor[:100])
        for (kind, name), old in before.items()
        if old != after[kind, name]
    )
    if mailing_lists is not None:
        _set_lists(contact, mailing_lists, now, actor=actor)
    if subscribed is False and contact.subscribed:
        contact_unsubscribe(contacts=[contact], reason=f"unsubscribed by {actor}")
        contact.refresh_from_db()
    elif subscribed is True and not contact.subscribed:
        contact_resubscribe(contact=contact, reason=f"resubscribed by {actor}")
    return contact


@transaction.atomic
def contact_resubscribe(*, contact: Contact, reason: str) -> Contact:
    """Subscribe again and lift the unsubscribe suppression (never an erasure or a bounce)."""
    now = timezone.now()
    if not contact.subscribed:
        _record([contact.pk], ChangeKind.SUBSCRIPTION, "subscribed", False, True, now, reason)
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
        # Staff own the value now: no integration's "unassign what I assigned" rule touches it.
        contact.stamps.pop(writer_key(name), None)


def _values(contact: Contact, fields: dict, properties: dict | None) -> dict[tuple[str, str], Any]:
    values = {(ChangeKind.FIELD, name): getattr(contact, name) for name in fields}
    return values | {(ChangeKind.PROPERTY, name): contact.properties.get(name) for name in properties or {}}


def _record(contact_ids: list[int], kind: str, name: str, old: Any, new: Any, now, actor: str) -> None:
    """The same change on several contacts, in one insert (staff edits and actions)."""
    ContactChange.objects.bulk_create(
        ContactChange(contact_id=pk, kind=kind, name=name, old=old, new=new, at=now, actor=actor[:100])
        for pk in contact_ids
    )


def _set_lists(contact: Contact, lists: list[MailingList], now, *, actor: str = "") -> None:
    wanted = {m.pk for m in lists}
    current = {
        m.mailing_list_id: m for m in ListMembership.objects.filter(contact=contact).select_related("mailing_list")
    }
    names = {m.pk: m.list_id for m in lists} | {pk: m.mailing_list.list_id for pk, m in current.items()}
    was = {pk: m.subscribed for pk, m in current.items()}
    ContactChange.objects.bulk_create(
        ContactChange(
            contact=contact,
            kind=ChangeKind.LIST,
            name=names[pk],
            old=was.get(pk),
            new=pk in wanted,
            at=now,
            actor=actor,
        )
        for pk in sorted(names)
        if was.get(pk, False) != (pk in wanted)
    )
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


@transaction.atomic
def suppressions_lift(*, ids: Iterable[int]) -> int:
    """Lift suppressions (delete their rows): the people may be created, emailed and sent out
    again. An erased person comes back only through a new message or staff. Returns how many."""
    deleted, _ = Suppression.objects.filter(pk__in=list(ids)).delete()
    return deleted
