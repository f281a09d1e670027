"""The timeline's events and the contacts' changes, read-only. The contact page shows both, merged;
these lists are for looking across contacts (who bought what, whose plan changed)."""

from __future__ import annotations

from django.contrib import admin
from unfold.admin import ModelAdmin
from unfold.decorators import display

from common.admin_tools import EstimatedCountPaginator, change_url, link, pretty_json
from contacts.admin.timeline import KIND_VARIANT, shown
from contacts.models import ContactChange, ContactEvent


def inbox_link(inbox_id: int | None) -> str:
    # By URL name: contacts does not import the inbox's app.
    return link(change_url("integrations.inboxmessage", inbox_id), f"inbox #{inbox_id}") if inbox_id else "—"


@admin.register(ContactEvent)
class ContactEventAdmin(ModelAdmin):
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
    fields = ("contact", "type", "name", "timestamp", "integration", "inbox", "properties_json")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @display(description="Properties")
    def properties_json(self, event: ContactEvent) -> str:
        return pretty_json(event.properties)

    @display(description="Inbox message")
    def inbox(self, event: ContactEvent) -> str:
        return inbox_link(event.inbox_message_id)


@admin.register(ContactChange)
class ContactChangeAdmin(ModelAdmin):
    list_display = ("at", "contact", "kind_badge", "name", "change", "inbox", "actor")
    list_filter = ("kind",)
    search_fields = ("=name",)
    search_help_text = "Exact field, property, list or audience name."
    list_select_related = ("contact",)
    raw_id_fields = ("contact",)
    # By id, which follows time closely: the only time index leads with the contact.
    ordering = ("-id",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = ("contact", "kind", "name", "old", "new", "at", "inbox", "actor")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @display(description="Kind", ordering="kind", label=KIND_VARIANT)
    def kind_badge(self, change: ContactChange) -> str:
        return change.kind

    @display(description="Old → new")
    def change(self, change: ContactChange) -> str:
        return f"{shown(change.old)} → {shown(change.new)}"

    @display(description="Inbox message")
    def inbox(self, change: ContactChange) -> str:
        return inbox_link(change.inbox_message_id)
