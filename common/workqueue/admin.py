"""Admin building blocks for queue tables, and the attempt log's own admin.

For a queue model's ModelAdmin:

    class EmailSendAdmin(WorkItemAdminMixin, admin.ModelAdmin):
        list_display = ["id", "recipient", "queue_state", "attempts"]
        inlines = [AttemptInline]

The mixin adds the "Run again now" and "Cancel" actions (they call common.workqueue.services
and say how many rows they changed and how many were running and left alone), a `queue_state`
column, and makes the queue's own fields read-only.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.contenttypes.admin import GenericTabularInline
from django.contrib.contenttypes.models import ContentType
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from unfold.admin import ModelAdmin

from common import clock
from common.admin_tools import EstimatedCountPaginator
from common.workqueue import registry
from common.workqueue.models import Attempt, QueueStatus, WorkItem
from common.workqueue.services import items_cancel, items_retry_now

QUEUE_FIELDS = ("next_attempt_at", "attempts", "last_error", "claimed_by", "claimed_at", "finished_at")


class AttemptInline(GenericTabularInline):
    """The item's attempts, newest first, read-only."""

    model = Attempt
    ct_field = "content_type"
    ct_fk_field = "object_id"
    fields = ("number", "started_at", "duration_ms", "outcome", "status_code", "error", "response_excerpt", "worker")
    readonly_fields = fields
    ordering = ("-started_at", "-id")
    extra = 0
    can_delete = False
    verbose_name_plural = "attempts"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="answer")
    def response_excerpt(self, obj: Attempt) -> str:
        return Truncator(obj.response).chars(300)


def queue_state_text(item: WorkItem) -> str:
    """ "retrying at 12:03 (2 attempts)", "failed after 8 attempts: …", "running on host:pid"."""
    status = item.queue_status
    when = item.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S") if item.next_attempt_at else ""
    if status == QueueStatus.RUNNING:
        return f"running on {item.claimed_by}"
    if status in (QueueStatus.QUEUED, QueueStatus.RETRYING):
        late = " (due)" if item.next_attempt_at <= clock.now() else ""
        return f"{status} at {when}{late}" + (f" ({item.attempts} attempts)" if item.attempts else "")
    if status == QueueStatus.FAILED:
        return f"failed after {item.attempts} attempts: {Truncator(item.last_error).chars(120)}"
    if status == QueueStatus.STOPPED:
        return f"stopped: {item.last_error}" if item.last_error else "not scheduled"
    return f"done after {item.attempts} attempts" if item.attempts != 1 else "done"


class WorkItemAdminMixin:
    """Actions, a status column and read-only queue fields for a WorkItem model's admin."""

    @admin.display(description="queue", ordering="next_attempt_at")
    def queue_state(self, obj: WorkItem) -> str:
        return queue_state_text(obj)

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), *(f for f in QUEUE_FIELDS)]

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.actions is not None and self.has_change_permission(request):
            for name in ("run_again_now", "cancel_work"):
                actions[name] = self.get_action(name)
        return actions

    @admin.action(description="Run again now")
    def run_again_now(self, request, queryset) -> None:
        result = items_retry_now(model=queryset.model, pks=queryset.values_list("pk", flat=True))
        self._report(request, result, "queued to run now")

    @admin.action(description="Cancel (no further attempts)")
    def cancel_work(self, request, queryset) -> None:
        result = items_cancel(model=queryset.model, pks=queryset.values_list("pk", flat=True))
        self._report(request, result, "cancelled")

    def _report(self, request, result, verb: str) -> None:
        text = f"{result.changed} {verb}"
        if result.running:
            text += f"; {result.running} running now, left alone"
        if result.unchanged:
            text += f"; {result.unchanged} already finished, left as they are"
        self.message_user(request, text + ".", messages.SUCCESS if result.changed else messages.WARNING)


class WorkTypeFilter(admin.SimpleListFilter):
    """The queues by name; only registered work types, so the filter never scans the log."""

    title = "kind of work"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [(work_type.name, work_type.label) for work_type in registry.work_types()]

    def queryset(self, request, queryset):
        work_type = registry.get_type(self.value() or "")
        if work_type is None:
            return queryset
        return queryset.filter(content_type=ContentType.objects.get_for_model(work_type.model))


class AttemptAdmin(ModelAdmin):
    """Every attempt at every queued item, newest first; read-only."""

    list_display = (
        "started_at",
        "item_link",
        "number",
        "outcome",
        "status_code",
        "duration_ms",
        "short_error",
        "worker",
    )
    list_filter = ("outcome", WorkTypeFilter)
    ordering = ("-id",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    readonly_fields = (
        "item_link",
        "number",
        "started_at",
        "duration_ms",
        "outcome",
        "status_code",
        "response",
        "error",
        "worker",
    )
    fields = readonly_fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="item")
    def item_link(self, obj: Attempt) -> str:
        content_type = ContentType.objects.get_for_id(obj.content_type_id)
        label = f"{content_type.name} {obj.object_id}"
        try:
            url = reverse(f"admin:{content_type.app_label}_{content_type.model}_change", args=[obj.object_id])
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description="error")
    def short_error(self, obj: Attempt) -> str:
        return Truncator(obj.error).chars(100)
