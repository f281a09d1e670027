"""The timeline's events, read-only."""

from __future__ import annotations

from django.contrib import admin

from common.admin_tools import EstimatedCountPaginator, pretty_json
from contacts.models import (
    ContactEvent,
)


@admin.register(ContactEvent)
class ContactEventAdmin(admin.ModelAdmin):
    list_display = ("timestamp", "contact", "type", "name", "integration")
    list_filter = ("type", "integration")
    search_fields = ("=name",)
    search_help_text = "Exact event name."
    list_select_related = ("contact", "integration")
    raw_id_fields = ("contact",)
    ordering = ("-timestamp",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan the table once per filter choice
    fields = ("contact", "type", "name", "timestamp", "integration", "inbox_message_id", "properties_json")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Properties")
    def properties_json(self, event: ContactEvent) -> str:
        return pretty_json(event.properties)
