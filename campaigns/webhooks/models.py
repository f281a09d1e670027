"""Outgoing HTTP calls for surveys: webhook subscriptions and their deliveries.

A WebhookSubscription is a URL, a `whsec_` secret and the event types it wants. Each event is
one Delivery per subscription (a work-queue row of the "webhook" type): the payload, its status
and, in common.Attempt, every try with its answer, as saleor keeps EventPayload /
EventDelivery / EventDeliveryAttempt. Slack notifications are deliveries too (kind "slack", to
the notification's incoming-webhook URL, not signed), so they share the retries and the log.
"""

from __future__ import annotations

import base64
import secrets

from django.db import models

from common import clock
from common.fields import JSONField
from common.workqueue.models import WorkItem, due_index


class WebhookEvent(models.TextChoices):
    RESPONSE_CREATED = "response.created", "response.created (a new answer)"
    RESPONSE_UPDATED = "response.updated", "response.updated (an answer changed)"
    SURVEY_BOUNCED = "survey.bounced", "survey.bounced (a survey email bounced)"
    CONTACT_UNSUBSCRIBED = "contact.unsubscribed", "contact.unsubscribed"


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookSubscription(models.Model):
    url = models.URLField(max_length=1000)
    secret = models.CharField(max_length=200, default=new_secret, help_text="whsec_ and base64; signs every call.")
    events = JSONField(default=list, help_text="Event types it receives.")
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.url


class DeliveryKind(models.TextChoices):
    WEBHOOK = "webhook", "webhook"
    SLACK = "slack", "Slack"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending"
    DELIVERED = "delivered", "delivered"
    FAILED = "failed", "failed"


class Delivery(WorkItem):
    """One payload to one URL, retried on the Standard Webhooks schedule until it is taken."""

    kind = models.CharField(max_length=8, choices=DeliveryKind.choices, default=DeliveryKind.WEBHOOK)
    subscription = models.ForeignKey(
        WebhookSubscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    notification = models.ForeignKey(
        "campaigns.NotificationRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    url = models.URLField(max_length=1000)
    event_type = models.CharField(max_length=40)
    # The webhook-id header: the same on every attempt and replay, so receivers drop repeats.
    message_id = models.CharField(max_length=64, unique=True)
    payload = models.TextField(help_text="The JSON body, exactly as signed and sent.")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="The last answer's status.")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)

    class Meta(WorkItem.Meta):
        verbose_name_plural = "deliveries"
        indexes = [
            due_index("campaigns_delivery_due"),
            models.Index(fields=["status", "-id"], name="delivery_status"),
            models.Index(fields=["subscription", "-id"], name="delivery_subscription"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} to {self.url} ({self.status})"

    def work_failed(self, error: str) -> None:
        self.status = DeliveryStatus.FAILED

    def work_cancelled(self) -> None:
        self.status = DeliveryStatus.FAILED

    def work_retried(self) -> None:
        self.status = DeliveryStatus.PENDING
