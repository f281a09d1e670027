"""REST shapes for contacts, property definitions and suppressions (CONTRACT.md)."""

from __future__ import annotations

from typing import Any

import orjson
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from contacts.models import Contact, ContactEvent, MailingList, PropertyDefinition, Suppression, SuppressionReason
from contacts.properties import PropertyError, coerce
from contacts.selectors import contact_is_erased

MAX_SUPPRESSIONS = 50_000


class ContactSerializer(serializers.ModelSerializer):
    email = serializers.CharField(
        max_length=320, required=False, allow_null=True, allow_blank=True, help_text="Stored lowercase; unique."
    )
    user_id = serializers.CharField(
        max_length=255, required=False, allow_null=True, allow_blank=True, help_text="The sender's userId; unique."
    )
    subscribed = serializers.BooleanField(
        required=False,
        help_text="false unsubscribes (and suppresses the email); true resubscribes and lifts that suppression.",
    )
    properties = serializers.DictField(
        required=False,
        help_text="Typed custom properties by name. Writes are checked against /api/v1/contact-properties/; "
        "null removes a value. PATCH changes only the names given.",
    )
    mailing_lists = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        help_text="Ids of the mailing lists the contact is subscribed to. A write replaces the whole set.",
    )
    audiences = serializers.SerializerMethodField(help_text="Engage audience keys the contact is in now.")
    first_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=64, required=False, allow_blank=True)
    address = serializers.DictField(
        required=False,
        help_text="Street, city, state, postal code and country as sent (street, city, state, postalCode, country).",
    )

    class Meta:
        model = Contact
        fields = [
            "id",
            "email",
            "user_id",
            "first_name",
            "last_name",
            "phone",
            "address",
            "subscribed",
            "properties",
            "mailing_lists",
            "audiences",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    # --- reading: everything comes from prefetched rows -------------------------------------------
    def to_representation(self, instance: Contact) -> dict:
        data = super().to_representation(instance)
        lists = getattr(instance, "subscribed_lists", None)
        if lists is None:
            lists = instance.memberships.filter(subscribed=True).select_related("mailing_list")
        data["mailing_lists"] = [m.mailing_list.list_id for m in lists]
        return data

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_audiences(self, instance: Contact) -> list[str]:
        audiences = getattr(instance, "current_audiences", None)
        if audiences is None:
            audiences = instance.audiences.filter(member=True)
        return [a.key for a in audiences]

    # --- writing ----------------------------------------------------------------------------------
    def validate_email(self, value: str | None) -> str | None:
        email = (value or "").strip().lower()
        if not email:
            return None
        if "@" not in email or " " in email:
            raise serializers.ValidationError("Enter an email address (it needs an @ and no spaces).")
        existing = Contact.objects.filter(email=email).exclude(pk=getattr(self.instance, "pk", None)).first()
        if existing is not None:
            raise serializers.ValidationError(f"Contact {existing.pk} already has this email.")
        return email

    def validate_user_id(self, value: str | None) -> str | None:
        user_id = (value or "").strip()
        if not user_id:
            return None
        existing = Contact.objects.filter(user_id=user_id).exclude(pk=getattr(self.instance, "pk", None)).first()
        if existing is not None:
            raise serializers.ValidationError(f"Contact {existing.pk} already has this userId.")
        return user_id

    def validate_properties(self, value: dict[str, Any]) -> dict[str, Any]:
        names = [name for name in value if "\x00" not in name]
        types = dict(PropertyDefinition.objects.filter(name__in=names).values_list("name", "type"))
        errors, cleaned = {}, {}
        for name, raw in value.items():
            # PostgreSQL text and jsonb cannot hold NUL: refuse it here, not with a 500 later.
            if "\x00" in name:
                errors[name.replace("\x00", "\\u0000")] = "A property name cannot contain NUL (\\u0000)."
                continue
            try:
                encoded = orjson.dumps(raw)
            except TypeError:
                errors[name] = "A value nested this deeply cannot be stored."
                continue
            if b"\\u0000" in encoded:
                errors[name] = "A value cannot contain NUL (\\u0000)."
                continue
            if name not in types:
                errors[name] = "No property is defined with this name; define it first at /api/v1/contact-properties/."
                continue
            if raw is None:
                cleaned[name] = None
                continue
            try:
                cleaned[name] = coerce(raw, types[name])
            except PropertyError as error:
                errors[name] = f"Not a valid {types[name]}: {error}."
        if errors:
            raise serializers.ValidationError(errors)
        return cleaned

    def validate_address(self, value: dict[str, Any]) -> dict[str, Any]:
        try:
            encoded = orjson.dumps(value)
        except TypeError:
            raise serializers.ValidationError("An address nested this deeply cannot be stored.") from None
        if b"\\u0000" in encoded:
            raise serializers.ValidationError("An address cannot contain NUL (\\u0000).")
        if len(encoded) > 4096:
            raise serializers.ValidationError("An address is at most 4 KB of JSON.")
        return value

    def validate_mailing_lists(self, value: list[str]) -> list[MailingList]:
        wanted = list(dict.fromkeys(v.strip() for v in value if v.strip()))
        found = {m.list_id: m for m in MailingList.objects.filter(list_id__in=wanted)}
        missing = [v for v in wanted if v not in found]
        if missing:
            raise serializers.ValidationError(f"No mailing list has the id {', '.join(missing)}.")
        return [found[v] for v in wanted]

    def validate(self, attrs: dict) -> dict:
        if self.instance is None:
            if not attrs.get("email") and not attrs.get("user_id"):
                raise serializers.ValidationError({"email": "A contact needs an email or a user_id."})
        else:
            email = attrs.get("email", self.instance.email)
            user_id = attrs.get("user_id", self.instance.user_id)
            if not email and not user_id:
                raise serializers.ValidationError({"email": "A contact needs an email or a user_id."})
        for field in ("email", "user_id"):
            if attrs.get(field) and contact_is_erased(**{field: attrs[field]}):
                raise serializers.ValidationError(
                    {field: "This person was erased and is suppressed; lift the suppression first."}
                )
        return attrs


class ContactEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = ContactEvent
        fields = ["type", "name", "properties", "timestamp"]


class MailingListSerializer(serializers.ModelSerializer):
    class Meta:
        model = MailingList
        fields = ["list_id", "name", "description"]
        extra_kwargs = {"description": {"required": False}}


class PropertyDefinitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = PropertyDefinition
        fields = ["name", "type", "description", "source", "created_at"]
        read_only_fields = ["source", "created_at"]
        extra_kwargs = {
            "type": {"help_text": "text, number, boolean, date (MM/DD/YYYY, ISO 8601, RFC 2822) or collection."},
            "description": {"required": False},
        }


class EmailItemField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data).strip()
        if "@" not in value or " " in value:
            raise serializers.ValidationError("Not an email address.")
        return value


class SuppressionUploadSerializer(serializers.Serializer):
    emails = serializers.ListField(
        child=EmailItemField(max_length=320),
        required=False,
        max_length=MAX_SUPPRESSIONS,
        help_text="Plain email addresses; stored as the MD5 of the lowercase address.",
    )
    md5 = serializers.ListField(
        child=serializers.RegexField(r"^[0-9a-fA-F]{32}$", error_messages={"invalid": "Not an MD5 (32 hex digits)."}),
        required=False,
        max_length=MAX_SUPPRESSIONS,
        help_text="MD5 hashes of lowercase email addresses.",
    )
    reason = serializers.ChoiceField(
        choices=SuppressionReason.choices, default=SuppressionReason.UPLOADED, help_text="Recorded on new rows."
    )
    note = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    keep_plain = serializers.BooleanField(default=False, help_text="Also keep plain addresses.")

    def validate(self, attrs: dict) -> dict:
        total = len(attrs.get("emails", [])) + len(attrs.get("md5", []))
        if total == 0:
            raise serializers.ValidationError({"emails": "Send a non-empty emails or md5 list."})
        if total > MAX_SUPPRESSIONS:
            raise serializers.ValidationError({"emails": f"At most {MAX_SUPPRESSIONS:,} entries a request."})
        return attrs


class SuppressionResultSerializer(serializers.Serializer):
    received = serializers.IntegerField(help_text="Distinct entries in the request.")
    created = serializers.IntegerField(help_text="Newly suppressed.")
    existing = serializers.IntegerField(help_text="Already suppressed; left as they were.")


class SuppressionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Suppression
        fields = ["id", "email_md5", "email", "user_id", "reason", "note", "created_at"]
        read_only_fields = fields
        extra_kwargs = {
            "email_md5": {"help_text": "MD5 of the lowercase email."},
            "email": {"help_text": "The plain address, kept only when uploaded with keep_plain."},
        }


class SuppressionFilterSerializer(serializers.Serializer):
    """The GET list's query parameters: each bad one is a 400 naming it."""

    reason = serializers.ChoiceField(choices=SuppressionReason.choices, required=False)
    email = serializers.EmailField(required=False, help_text="Matched by the MD5 of its lowercase form.")
    md5 = serializers.RegexField(
        r"^[0-9a-fA-F]{32}$", required=False, error_messages={"invalid": "Not an MD5 (32 hex digits)."}
    )
    user_id = serializers.CharField(max_length=255, required=False)
    created_after = serializers.DateTimeField(required=False, help_text="ISO 8601; inclusive.")
    created_before = serializers.DateTimeField(required=False, help_text="ISO 8601; exclusive.")
