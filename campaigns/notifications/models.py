"""Notifications to staff about surveys (Retently's "Notifications"): by email or to a Slack
incoming webhook, for chosen event types, at once or as a daily or weekly digest.

A NotificationRule says what, where and how often. An immediate notification is an email
(EmailSend, purpose "notification") or a Slack Delivery at once; a digest rule collects
NotificationItem rows and sends them together when its period is over (the "surveys" runner).
"""

from __future__ import annotations

from django.db import models

from common import clock
from common.fields import JSONField


class NotificationEvent(models.TextChoices):
    NEW_RESPONSE = "new_response", "new response"
    DETRACTOR = "detractor", "detractor (a low score)"
    COMMENT = "comment", "comment"
    BOUNCE = "bounce", "survey bounced"
    UNSUBSCRIBE = "unsubscribe", "unsubscribe"


class Channel(models.TextChoices):
    EMAIL = "email", "email"
    SLACK = "slack", "Slack"


class Frequency(models.TextChoices):
    IMMEDIATE = "immediate", "immediately"
    DAILY = "daily", "daily digest"
    WEEKLY = "weekly", "weekly digest"


class NotificationRule(models.Model):
    name = models.CharField(max_length=200)
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
        help_text="Only this campaign's events; empty: every campaign.",
    )
    events = JSONField(default=list, help_text="The event types to notify about.")
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.EMAIL)
    emails = models.CharField(max_length=1000, blank=True, help_text="Staff addresses, comma-separated (email).")
    slack_url = models.URLField(max_length=1000, blank=True, help_text="A Slack incoming-webhook URL (Slack).")
    frequency = models.CharField(max_length=10, choices=Frequency.choices, default=Frequency.IMMEDIATE)
    enabled = models.BooleanField(default=True)
    last_digest_at = models.DateTimeField(null=True, blank=True, help_text="When the last digest went.")
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def addresses(self) -> list[str]:
        return [a.strip().lower() for a in self.emails.split(",") if a.strip()]


class NotificationItem(models.Model):
    """One event waiting for its rule's digest."""

    rule = models.ForeignKey(NotificationRule, on_delete=models.CASCADE, related_name="items", db_index=False)
    event = models.CharField(max_length=16, choices=NotificationEvent.choices)
    text = models.CharField(max_length=1000)
    created_at = models.DateTimeField(default=clock.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["rule", "id"], name="notifyitem_rule"),
        ]

    def __str__(self) -> str:
        return self.text[:60]
