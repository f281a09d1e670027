"""What an erasure (GDPR delete) and a merge mean for the inbox: one place for both rules.

contacts erases the person and announces it (contacts.signals); this module redacts the
inbox rows that carry the person's ids, and repoints rows when two contacts become one.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q
from django.dispatch import receiver

from contacts.signals import contact_erased, contacts_merged
from integrations.models import InboxMessage

# What an erased person's inbox rows keep: their status and times. The reason and warnings go
# too, since they can quote an id or an email ("… userId u-123 …").
REDACTED_PAYLOAD = {"redacted": True}
REDACTED_REASON = "(redacted: this person was erased)"
REDACTED_INBOX_FIELDS = {
    "payload": REDACTED_PAYLOAD,
    "user_id": "",
    "anonymous_id": "",
    "email": "",
    "event": "",
    "warnings": [],
    "reason": REDACTED_REASON,
}


@receiver(contact_erased, dispatch_uid="inbox-redact-erased")
def inbox_redact(*, user_ids: set[str], emails: set[str], anonymous_ids: set[str], contact_pks, **kwargs) -> int:
    """Redact every inbox row that names the erased person; returns how many."""
    query = Q(pk__in=[])
    if user_ids:
        query |= Q(user_id__in=user_ids)
    if emails:
        query |= Q(email__in=emails)
    if anonymous_ids:
        query |= Q(anonymous_id__in=anonymous_ids)
    if contact_pks:
        query |= Q(contact_id__in=contact_pks)
    return InboxMessage.objects.filter(query).update(**REDACTED_INBOX_FIELDS)


def redact_again(rows: Iterable[InboxMessage]) -> None:
    """Rows of a chunk that held a delete: the erase redacted some of them in the database, and
    the statuses the drain then wrote brought back their reason and warnings. Redact again."""
    InboxMessage.objects.filter(pk__in=[row.pk for row in rows], payload=REDACTED_PAYLOAD).update(
        reason=REDACTED_REASON, warnings=[]
    )


@receiver(contacts_merged, dispatch_uid="inbox-repoint-merged")
def inbox_repoint(*, source_pk: int, target_pk: int, **kwargs) -> None:
    InboxMessage.objects.filter(contact_id=source_pk).update(contact_id=target_pk)
