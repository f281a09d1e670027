"""Staff UI for notification rules: what to notify about, where, and how often."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.validators import validate_email
from unfold.admin import ModelAdmin
from unfold.decorators import display

from campaigns.notifications.models import Channel, NotificationEvent, NotificationRule
from campaigns.webhooks.api import url_problem


class NotificationRuleForm(forms.ModelForm):
    slack_url = forms.URLField(
        max_length=1000, required=False, assume_scheme="https", help_text="A Slack incoming-webhook URL (Slack)."
    )
    events = forms.MultipleChoiceField(choices=NotificationEvent.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = NotificationRule
        fields = ("name", "campaign", "events", "channel", "emails", "slack_url", "frequency", "enabled")

    def clean(self):
        data = super().clean()
        channel = data.get("channel")
        if channel == Channel.EMAIL:
            addresses = [a.strip() for a in (data.get("emails") or "").split(",") if a.strip()]
            if not addresses:
                self.add_error("emails", "give at least one address to email")
            for address in addresses:
                try:
                    validate_email(address)
                except forms.ValidationError:
                    self.add_error("emails", f"{address!r} is not an email address")
        elif channel == Channel.SLACK:
            url = data.get("slack_url") or ""
            if not url:
                self.add_error("slack_url", "give the Slack incoming-webhook URL")
            elif url_problem(url):
                self.add_error("slack_url", url_problem(url))
        return data


@admin.register(NotificationRule)
class NotificationRuleAdmin(ModelAdmin):
    form = NotificationRuleForm
    list_display = ("name", "campaign", "event_list", "channel", "frequency", "state", "last_digest_at")
    list_filter = ("channel", "frequency", "enabled")
    list_select_related = ("campaign",)
    search_fields = ("name",)
    readonly_fields = ("last_digest_at", "created_at")

    @display(description="Events")
    def event_list(self, rule: NotificationRule) -> str:
        return ", ".join(rule.events or []) or "—"

    @display(description="State", label={"enabled": "success", "disabled": "default"})
    def state(self, rule: NotificationRule) -> str:
        return "enabled" if rule.enabled else "disabled"
