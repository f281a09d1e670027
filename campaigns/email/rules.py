"""Who gets what: the rules every due send passes, in order, each skip with its reason.

1. the contact is gone (erased) or has no address: "contact erased", "no email address";
2. a suppression of the address (lowercase-email MD5) or the userId: erased or uploaded ones
   stop every email ("suppressed: …"), bounced and complained ones too ("bounced",
   "complained"), even transactional; an unsubscribe stops marketing only;
3. unsubscribed (the contact's flag or an unsubscribe suppression): marketing only;
4. the caller's checks for the purpose (loops: "exited", "not on the list", …), on the batch;
5. the frequency cap: at most EMAIL_DAILY_CAP_PER_CONTACT marketing emails to a contact in
   24 hours, across loops, reminders and surveys (0 = off);
6. the late rule: past due_at by more than late_after_minutes, a send is skipped ("late: …")
   or sent anyway and marked ("sent late: …"), as its caller chose.

Template errors come after, when rendering (campaigns.email.sending). Sends to staff addresses
(purpose test or notification) have no contact: only a bounce or complaint of the address
stops them. Every rule reads the batch's rows in a few queries, never one per send.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q

from campaigns.email.models import STAFF_PURPOSES, EmailSend, LatePolicy, SendStatus
from contacts.hashing import email_md5
from contacts.models import Contact, Suppression, SuppressionReason

SendCheck = Callable[[list[EmailSend]], dict[int, str]]
_checks: dict[str, list[SendCheck]] = defaultdict(list)

CAP_WINDOW = timedelta(hours=24)
# Statuses of an email that went out (a bounce or complaint comes after the send).
WENT_OUT = (SendStatus.SENT, SendStatus.BOUNCED, SendStatus.COMPLAINED)


def register_send_check(purpose: str, check: SendCheck) -> None:
    """Add a due-time check for sends of `purpose`: it gets the batch's sends of that purpose
    (those still going after the contact rules) and returns {send.pk: skip reason}."""
    if check not in _checks[purpose]:
        _checks[purpose].append(check)


def unregister_send_check(purpose: str, check: SendCheck) -> None:
    if check in _checks.get(purpose, []):
        _checks[purpose].remove(check)


def daily_cap() -> int:
    return int(getattr(settings, "EMAIL_DAILY_CAP_PER_CONTACT", 0) or 0)


def decide(
    items: list[EmailSend], *, contacts: dict[int, Contact], transactional: dict[int, bool], now: datetime
) -> tuple[dict[int, str], dict[int, str]]:
    """({pk: skip reason}, {pk: note for a send that goes, e.g. "sent late: …"}).

    Sets each send's `to` (the contact's current address) and `transactional` (its template's
    flag now) as a side effect, so the row records what was decided on."""
    skips: dict[int, str] = {}
    notes: dict[int, str] = {}
    going: list[EmailSend] = []
    for item in items:
        item.transactional = transactional[item.template_id]
        if item.purpose in STAFF_PURPOSES:
            going.append(item)
            continue
        contact = contacts.get(item.contact_id) if item.contact_id else None
        if contact is None:
            skips[item.pk] = "contact erased"
        elif not contact.email:
            skips[item.pk] = "no email address"
        else:
            item.to = contact.email
            going.append(item)

    blocked = _suppressions(going, contacts)
    still = []
    for item in going:
        contact = contacts.get(item.contact_id) if item.contact_id else None
        reasons = blocked.get(item.pk, set())
        if SuppressionReason.ERASED in reasons:
            skips[item.pk] = "suppressed: erased"
        elif SuppressionReason.UPLOADED in reasons:
            skips[item.pk] = "suppressed: uploaded suppression list"
        elif SuppressionReason.BOUNCED in reasons:
            skips[item.pk] = "bounced"
        elif SuppressionReason.COMPLAINED in reasons:
            skips[item.pk] = "complained"
        elif item.marketing and (
            SuppressionReason.UNSUBSCRIBED in reasons or (contact is not None and not contact.subscribed)
        ):
            skips[item.pk] = "unsubscribed"
        else:
            still.append(item)

    by_purpose: dict[str, list[EmailSend]] = defaultdict(list)
    for item in still:
        by_purpose[item.purpose].append(item)
    for purpose, sends in by_purpose.items():
        for check in list(_checks.get(purpose, [])):
            answer = check([s for s in sends if s.pk not in skips]) or {}
            for pk, reason in answer.items():
                skips.setdefault(pk, str(reason)[:500])
    still = [item for item in still if item.pk not in skips]

    cap = daily_cap()
    if cap:
        sent = _sent_today(still, now)
        for item in sorted(still, key=lambda s: (s.due_at, s.pk)):
            if not item.marketing:
                continue
            if sent[item.contact_id] >= cap:
                skips[item.pk] = f"frequency cap: {cap} marketing email{'s' if cap != 1 else ''} a day"
            else:
                sent[item.contact_id] += 1
        still = [item for item in still if item.pk not in skips]

    for item in still:
        if item.late_after_minutes is None:
            continue
        overdue = now - item.due_at
        if overdue > timedelta(minutes=item.late_after_minutes):
            late = f"{_duration(overdue)} after its due time"
            if item.late_policy == LatePolicy.SKIP:
                skips[item.pk] = f"late: {late} (late sends are skipped)"
            else:
                notes[item.pk] = f"sent late: {late}"
    return skips, notes


def _suppressions(items: list[EmailSend], contacts: dict[int, Contact]) -> dict[int, set[str]]:
    """{send pk: the reasons of the suppressions of its address or userId}: one query."""
    md5_of = {item.pk: email_md5(item.to) for item in items if item.to}
    user_of = {}
    for item in items:
        contact = contacts.get(item.contact_id) if item.contact_id else None
        if contact is not None and contact.user_id and item.purpose not in STAFF_PURPOSES:
            user_of[item.pk] = contact.user_id
    if not md5_of and not user_of:
        return {}
    by_md5: dict[str, str] = {}
    by_user: dict[str, str] = {}
    rows = Suppression.objects.filter(
        Q(email_md5__any=set(md5_of.values())) | Q(user_id__any=set(user_of.values()))
    ).values_list("email_md5", "user_id", "reason")
    for md5, user_id, reason in rows:
        if md5:
            by_md5[md5] = reason
        if user_id:
            by_user[user_id] = reason
    found: dict[int, set[str]] = defaultdict(set)
    for item in items:
        staff = item.purpose in STAFF_PURPOSES
        for reason in (by_md5.get(md5_of.get(item.pk, "")), by_user.get(user_of.get(item.pk, ""))):
            # A staff address is only stopped by its own bounces and complaints.
            if reason and (not staff or reason in (SuppressionReason.BOUNCED, SuppressionReason.COMPLAINED)):
                found[item.pk].add(reason)
    return found


def _sent_today(items: list[EmailSend], now: datetime) -> dict[int, int]:
    """Marketing emails each contact was sent in the last 24 hours: one GROUP BY."""
    contact_ids = {item.contact_id for item in items if item.marketing}
    counts: dict[int, int] = defaultdict(int)
    if not contact_ids:
        return counts
    rows = (
        EmailSend.objects.filter(
            contact_id__any=contact_ids, sent_at__gte=now - CAP_WINDOW, status__in=WENT_OUT, transactional=False
        )
        .exclude(purpose__in=STAFF_PURPOSES)
        .values("contact_id")
        .annotate(n=Count("id"))
    )
    for row in rows:
        counts[row["contact_id"]] = row["n"]
    return counts


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [
        f"{days} d" if days else "",
        f"{hours} h" if hours else "",
        f"{minutes} min" if minutes or not (days or hours) else "",
    ]
    return " ".join(part for part in parts if part)
