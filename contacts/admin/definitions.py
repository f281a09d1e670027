"""Property definitions and mailing lists."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from unfold.admin import ModelAdmin
from unfold.decorators import display

from contacts.models import (
    MailingList,
    PropertyDefinition,
)


# --- definitions and lists --------------------------------------------------------------------------
@admin.register(PropertyDefinition)
class PropertyDefinitionAdmin(ModelAdmin):
    list_display = ("name", "type", "source", "description", "created_at")
    list_filter = ("type", "source")
    search_fields = ("name",)

    def get_readonly_fields(self, request, obj=None):
        # Stored values were checked against this name and type; changing them would orphan them.
        return ("name", "type", "source", "created_at") if obj else ("source", "created_at")

    def get_changeform_initial_data(self, request):
        return {**super().get_changeform_initial_data(request), "source": "staff"}


@admin.register(MailingList)
class MailingListAdmin(ModelAdmin):
    list_display = ("name", "list_id", "subscribers", "description", "created_at")
    search_fields = ("name", "list_id")
    readonly_fields = ("created_at",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(subscriber_count=Count("memberships", filter=Q(memberships__subscribed=True)))
        )

    @display(description="Subscribed members", ordering="subscriber_count")
    def subscribers(self, mailing_list: MailingList) -> str:
        url = reverse("admin:contacts_contact_changelist") + "?" + urlencode({"list": mailing_list.pk})
        return format_html('<a href="{}">{}</a>', url, f"{mailing_list.subscriber_count:,}")
