from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import connection, models
from django.db.models import Q
from django.utils import timezone

from common.fields import JSONField

PROPERTY_NAME_RE = r"^[A-Za-z][A-Za-z0-9_]*$"


class PropertyType(models.TextChoices):
    TEXT = "text", "Text"
    NUMBER = "number", "Number"
    BOOLEAN = "boolean", "Boolean"
    DATE = "date", "Date"
    COLLECTION = "collection", "Collection"


class PropertyDefinition(models.Model):
    name = models.CharField(
        max_length=100,
        unique=True,
        validators=[
            RegexValidator(
                PROPERTY_NAME_RE,
                "Property names hold letters, digits and underscores, and start with a letter.",
            )
        ],
        help_text="As senders spell it: favoriteColor stays favoriteColor. Letters, digits and underscores.",
    )
    type = models.CharField(max_length=16, choices=PropertyType.choices, default=PropertyType.TEXT)
    description = models.TextField(blank=True)
    source = models.CharField(
        max_length=100,
        default="staff",
        help_text="Who defined it: staff, the API, or the integration that inferred it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"


class MailingList(models.Model):
    list_id = models.CharField(max_length=100, unique=True, help_text="The id senders use in mailingLists.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    user_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    # Stored lowercased: matching is case-insensitive and the unique index enforces it.
    email = models.CharField(max_length=320, null=True, blank=True, unique=True)
    first_name = models.CharField(max_length=200, blank=True)
    last_name = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=64, blank=True)
    address = JSONField(default=dict, blank=True)
    subscribed = models.BooleanField(default=True)
    subscription_changed_at = models.DateTimeField(null=True, blank=True)
    subscription_reason = models.CharField(max_length=200, blank=True)
    properties = JSONField(default=dict, blank=True, help_text="Typed custom properties.")
    raw_traits = JSONField(default=dict, blank=True, help_text="Traits kept without a definition.")
    # When each field or property was last written, by message timestamp (ISO strings), so an
    # older message never overwrites a newer value.
    stamps = JSONField(default=dict, blank=True)
    source = models.ForeignKey(
        "integrations.Integration", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # The admin orders by -created_at then -pk.
            models.Index(fields=["-created_at", "-id"], name="contact_created"),
            models.Index(fields=["first_name"], name="contact_first_name"),
            models.Index(fields=["subscribed", "-created_at"], name="contact_subscribed"),
            models.Index(fields=["last_name", "first_name"], name="contact_name"),
        ]

    def __str__(self) -> str:
        return self.email or self.user_id or f"contact {self.pk}"

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


class ContactIdentity(models.Model):
    """Other ids that point at a contact: anonymousIds seen, and ids merged in by alias."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="identities")
    anonymous_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "contact identities"

    def __str__(self) -> str:
        return self.anonymous_id


class ListMembership(models.Model):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="memberships")
    mailing_list = models.ForeignKey(MailingList, on_delete=models.CASCADE, related_name="memberships")
    subscribed = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "mailing_list"], name="membership_unique"),
        ]
        indexes = [models.Index(fields=["mailing_list", "subscribed"], name="membership_list")]

    def __str__(self) -> str:
        return f"{self.mailing_list_id}: {'subscribed' if self.subscribed else 'unsubscribed'}"


class AudienceMembership(models.Model):
    """Engage audiences: a key (snake_cased audience name) the contact is in or has left."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="audiences")
    key = models.CharField(max_length=255)
    member = models.BooleanField(default=True)
    entered_at = models.DateTimeField(null=True, blank=True)
    exited_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact", "key"], name="audience_unique")]
        indexes = [models.Index(fields=["key", "member"], name="audience_key_member")]

    def __str__(self) -> str:
        return f"{self.key}: {'member' if self.member else 'left'}"


class ContactEvent(models.Model):
    """The timeline: track, page and screen calls on a contact."""

    # event_contact_time leads with the contact and serves the foreign key: no second index.
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="events", db_index=False)
    integration = models.ForeignKey("integrations.Integration", null=True, on_delete=models.SET_NULL, related_name="+")
    # One event per inbox message, so a re-run chunk never adds it twice.
    inbox_message_id = models.BigIntegerField(null=True, blank=True, unique=True)
    type = models.CharField(max_length=16, default="track")
    name = models.CharField(max_length=255)
    properties = JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField()

    class Meta:
        ordering = ["-timestamp"]
        indexes = [
            models.Index(fields=["contact", "-timestamp"], name="event_contact_time"),
            models.Index(fields=["name", "-timestamp"], name="event_name_time"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.name}"


class ChangeKind(models.TextChoices):
    FIELD = "field", "Field"
    PROPERTY = "property", "Property"
    LIST = "list", "Mailing list"
    AUDIENCE = "audience", "Audience"
    SUBSCRIPTION = "subscription", "Subscription"


class ContactChange(models.Model):
    """One value of a contact that changed, old → new: the contact page's history of traits,
    lists, audiences and subscription. Written in bulk, once per drained chunk."""

    # change_contact_at leads with the contact and serves the foreign key: no second index.
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="changes", db_index=False)
    # The inbox row that made the change; empty for staff edits (then `actor` says who).
    inbox_message_id = models.BigIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=16, choices=ChangeKind.choices)
    name = models.CharField(max_length=255)
    old = JSONField(null=True, blank=True)
    new = JSONField(null=True, blank=True)
    at = models.DateTimeField(help_text="When it happened: the message's timestamp, or the staff edit's time.")
    actor = models.CharField(max_length=100, blank=True)

    class Meta:
        indexes = [models.Index(fields=["contact", "-at"], name="change_contact_at")]

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


class SuppressionReason(models.TextChoices):
    ERASED = "erased", "Erased (GDPR delete)"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Complained"
    UPLOADED = "uploaded", "Uploaded"


class Suppression(models.Model):
    """Never create, email or send out these people. Keyed by lowercase-email MD5 or userId."""

    email_md5 = models.CharField(max_length=32, null=True, blank=True, unique=True)
    email = models.CharField(max_length=320, blank=True, help_text="Kept only when uploaded in plain.")
    user_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices)
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(email_md5__isnull=False) | Q(user_id__isnull=False),
                name="suppression_has_key",
            )
        ]
        indexes = [
            models.Index(fields=["reason", "-created_at"], name="suppression_reason"),
            models.Index(fields=["-created_at"], name="suppression_created"),
        ]

    def __str__(self) -> str:
        return self.email or self.user_id or self.email_md5 or "suppression"


class ErasureRecord(models.Model):
    """That an erasure happened, without the data: for the GDPR audit trail."""

    contact_pk = models.BigIntegerField(null=True, blank=True)
    integration = models.ForeignKey(
        "integrations.Integration", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message_id = models.CharField(max_length=255, blank=True)
    requested_by = models.CharField(max_length=100, help_text="segment delete, api, or admin user.")
    events_deleted = models.PositiveIntegerField(default=0)
    inbox_redacted = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"erasure {self.pk} ({self.requested_by})"


def uses_postgres() -> bool:
    return connection.vendor == "postgresql"
