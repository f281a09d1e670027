"""Erasure records: that an erasure happened, without the data (the GDPR audit trail)."""

from __future__ import annotations

from django.contrib import admin
from unfold.admin import ModelAdmin

from common.admin_tools import EstimatedCountPaginator
from contacts.models import (
    ErasureRecord,
)


@admin.register(ErasureRecord)
class ErasureRecordAdmin(ModelAdmin):
    list_display = ("created_at", "requested_by", "contact_pk", "integration", "events_deleted", "inbox_redacted")
    list_filter = ("integration",)
    search_fields = ("=requested_by", "=message_id")
    list_select_related = ("integration",)
    ordering = ("-created_at",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan the table once per filter choice

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
