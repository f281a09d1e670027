"""REST shapes for email templates and the send log (CONTRACT.md, "Email and loops")."""

from __future__ import annotations

from rest_framework import serializers

from campaigns.email.models import EmailSend, EmailTemplate
from campaigns.email.rendering import template_errors


class EmailTemplateSerializer(serializers.ModelSerializer):
    text = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Plain-text part; empty = made from the HTML."
    )
    logo_url = serializers.URLField(required=False, allow_blank=True, default="", max_length=500)

    class Meta:
        model = EmailTemplate
        fields = ["id", "name", "subject", "html", "text", "transactional", "logo_url"]

    def validate(self, data: dict) -> dict:
        instance = self.instance
        merged = {
            part: data[part] if part in data else getattr(instance, part, "") or ""
            for part in ("subject", "html", "text")
        }
        errors = template_errors(**merged)
        if errors:
            # Each part names its line: {"html": ["line 3: Invalid block tag … 'endfi' …"]}.
            raise serializers.ValidationError({part: [message] for part, message in errors.items()})
        return data


class EmailPreviewRequestSerializer(serializers.Serializer):
    contact = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text="The contact to render the template for."
    )


class EmailPreviewSerializer(serializers.Serializer):
    subject = serializers.CharField()
    html = serializers.CharField()
    text = serializers.CharField()


class EmailSendSerializer(serializers.ModelSerializer):
    class Meta:
        model = EmailSend
        fields = ["id", "contact", "to", "template", "purpose", "status", "reason", "due_at", "sent_at"]
        read_only_fields = fields
