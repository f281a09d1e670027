"""Notifying staff: at once, or collected for a daily or weekly digest.

`notify` is called by the surveys' services inside their transactions with a list of
(event type, campaign id, one line of text). Immediate rules send each line as an email to
their addresses (purpose "notification", through the email engine, with the built-in
"Survey notification" template staff may restyle) or as a Slack message (a Delivery of the
webhook queue). Digest rules keep the lines as NotificationItem rows; `digests_send`, run by
the "surveys" runner, sends each rule's lines together once its day or week is over.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.db import transaction

from campaigns.email.models import EmailTemplate
from campaigns.email.services import email_send_schedule, email_template_save
from campaigns.notifications.models import Channel, Frequency, NotificationItem, NotificationRule
from campaigns.webhooks.services import slack_post_queue
from common import clock
from common.bulk import bulk_insert

TEMPLATE_NAME = "Survey notification (built in)"
DIGEST_LINES = 200
PERIOD = {Frequency.DAILY: timedelta(days=1), Frequency.WEEKLY: timedelta(days=7)}


def notification_template() -> EmailTemplate:
    """The template of notification emails: made once, then staff's to restyle."""
    template = EmailTemplate.objects.filter(name=TEMPLATE_NAME).first()
    if template is not None:
        return template
    return email_template_save(
        name=TEMPLATE_NAME,
        subject="{{ event.notification.subject }}",
        html="<p><strong>{{ event.notification.subject }}</strong></p>"
        "{% for line in event.notification.lines %}<p>{{ line }}</p>{% endfor %}",
        text="{{ event.notification.subject }}\n\n{% for line in event.notification.lines %}{{ line }}\n{% endfor %}",
        transactional=True,
        logo_url="",
    )


Note = tuple[str, "int | None", str, str]  # (event type, campaign id, group, text)


def _rules_for(notes: list[Note]) -> list[tuple[NotificationRule, list[Note]]]:
    matched = []
    for rule in NotificationRule.objects.filter(enabled=True):
        wanted = [
            note
            for note in notes
            if note[0] in (rule.events or []) and (rule.campaign_id is None or rule.campaign_id == note[1])
        ]
        if wanted:
            matched.append((rule, wanted))
    return matched


def notify(*, notes: Iterable[Note]) -> int:
    """Send or collect notes for the rules that want them. A note is (event type, campaign id,
    group, text): notes of one group (one response: "new response" and "detractor") make one
    message per rule. Returns how many messages were queued or lines collected."""
    notes = list(notes)
    if not notes:
        return 0
    count = 0
    now = clock.now()
    waiting: list[NotificationItem] = []
    for rule, wanted in _rules_for(notes):
        groups: dict[str, list[Note]] = {}
        for note in wanted:
            groups.setdefault(note[2], []).append(note)
        for group in groups.values():
            lines = list(dict.fromkeys(text for _e, _c, _g, text in group))
            if rule.frequency != Frequency.IMMEDIATE:
                waiting.append(
                    NotificationItem(rule=rule, event=group[0][0], text=" ".join(lines)[:1000], created_at=now)
                )
            else:
                _send(rule, subject=lines[0][:200], lines=lines, event_type="notification")
            count += 1
    if waiting:
        bulk_insert(NotificationItem, waiting)
    return count


def _send(rule: NotificationRule, *, subject: str, lines: list[str], event_type: str) -> None:
    if rule.channel == Channel.SLACK:
        if rule.slack_url:
            slack_post_queue(
                url=rule.slack_url,
                text="\n".join([f"*{subject}*" if len(lines) > 1 else "", *lines]).strip(),
                event_type=event_type,
                notification_id=rule.pk,
            )
        return
    template = notification_template()
    now = clock.now()
    for address in rule.addresses:
        email_send_schedule(
            contact=None,
            template=template,
            purpose="notification",
            due_at=now,
            key=f"notification:{rule.pk}:{now:%Y%m%d%H%M%S}:{secrets.token_hex(6)}",
            extra_context={"notification": {"subject": subject, "lines": lines}},
            origin=f"notification {rule.name!r}"[:200],
            to=address,
        )


def digests_send(*, now=None) -> int:
    """Send the digests whose period is over; how many went."""
    now = now or clock.now()
    sent = 0
    for rule in NotificationRule.objects.filter(enabled=True, frequency__in=list(PERIOD)):
        since = rule.last_digest_at or rule.created_at
        if now - since < PERIOD[rule.frequency]:
            continue
        with transaction.atomic():
            items = list(
                NotificationItem.objects.select_for_update(skip_locked=True)
                .filter(rule=rule, sent_at__isnull=True)
                .order_by("id")
            )
            rule.last_digest_at = now
            rule.save(update_fields=["last_digest_at"])
            if not items:
                continue
            lines = [item.text for item in items[:DIGEST_LINES]]
            if len(items) > DIGEST_LINES:
                lines.append(f"… and {len(items) - DIGEST_LINES} more.")
            period = "Daily" if rule.frequency == Frequency.DAILY else "Weekly"
            subject = f"{period} survey digest: {len(items)} event{'s' if len(items) != 1 else ''} ({rule.name})"
            _send(rule, subject=subject, lines=lines, event_type="digest")
            NotificationItem.objects.filter(pk__in=[item.pk for item in items]).update(sent_at=now)
            sent += 1
    return sent
