"""Visitors seen by the capture script, and the windows that rate-limit its endpoint.

A visitor is one browser (its first-party anonymous id) on one integration's sites. It becomes
a contact when an email is known; the landing page, its domain, the referrer and the page title
come from its first captured visit, and the Grow identify carries them.
"""

from __future__ import annotations

from django.db import models

from common import clock
from common.fields import JSONField


class Visitor(models.Model):
    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.PROTECT, related_name="visitors", db_index=False
    )
    anonymous_id = models.CharField(max_length=64)
    contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    email = models.CharField(max_length=320, blank=True)
    first_seen_at = models.DateTimeField(help_text="The first captured visit: its page is the landing page.")
    last_seen_at = models.DateTimeField()
    landing_page_url = models.CharField(max_length=2000, blank=True)
    landing_page_domain = models.CharField(max_length=255, blank=True)
    referrer = models.CharField(max_length=2000, blank=True)
    page_title = models.CharField(max_length=500, blank=True)
    identified_at = models.DateTimeField(null=True, blank=True, help_text="When the visitor gave an email.")
    extra = JSONField(default=dict, blank=True, help_text="Other fields of the form they submitted.")
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["integration", "anonymous_id"], name="visitor_unique_anonymous"),
        ]
        indexes = [
            models.Index(fields=["contact", "first_seen_at"], name="visitor_contact"),
            models.Index(fields=["integration", "-first_seen_at"], name="visitor_integration_seen"),
            models.Index(fields=["email"], name="visitor_email"),
            models.Index(fields=["integration", "identified_at"], name="visitor_identified"),
        ]

    def __str__(self) -> str:
        return self.email or f"visitor {self.anonymous_id[:12]}"


class CaptureWindow(models.Model):
    """Capture requests per key (an IP or an anonymous id) in one minute, shared by every web
    process through the database: one upsert per key and request."""

    key = models.CharField(max_length=200)
    minute = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "minute"], name="capture_window_unique")]
        indexes = [models.Index(fields=["minute"], name="capture_window_minute")]

    def __str__(self) -> str:
        return f"{self.key} @ {self.minute:%H:%M}: {self.count}"
