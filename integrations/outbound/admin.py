"""Staff UI of the outbound Segment source: the outbox (every message, its attempts and
Segment's answers), the sync runs, the captured visitors, and the integration page's own parts
(the capture snippet, the Sync Summary with its chart, and the buttons: send a test event, sync
history, remove the integration).

Conventions as elsewhere (README "Layout"): unfold's ModelAdmin, badges, estimated counts, exact
searches on indexes, buttons that ask first and say what they did, figures that link to lists.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from unfold.admin import GenericTabularInline, ModelAdmin
from unfold.decorators import action, display

from common.admin_tools import (
    EstimatedCountPaginator,
    change_url,
    changelist_url,
    chart_options,
    confirm_page,
    confirmed,
    link,
    pretty_json,
    shorten,
    type_and_event,
)
from common.ids import parse_pk
from common.workqueue.admin import AttemptInline, WorkItemAdminMixin
from integrations.capture.models import Visitor
from integrations.outbound.models import OutboxItem, OutboxStatus, SyncRun
from integrations.outbound.selectors import sync_summary
from integrations.outbound.services import integration_remove, items_replay, send_test

STATUS_VARIANT = {
    OutboxStatus.QUEUED: "info",
    OutboxStatus.SENT: "success",
    OutboxStatus.SKIPPED: "default",
    OutboxStatus.FAILED: "danger",
    OutboxStatus.CANCELLED: "warning",
}
SUMMARY_DAYS = 14
KIND = "segment_source"
# The integration page's buttons for outbound integrations (IntegrationAdmin.actions_detail).
OUTBOUND_DETAIL_ACTIONS = ("send_test_event", "open_sync_history", "open_outbox", "remove_integration")
INBOUND_ONLY_ACTIONS = ("open_inbox", "rotate_key")


# --- the outbox ------------------------------------------------------------------------------------
class OutboxAttemptInline(GenericTabularInline, AttemptInline):
    """Every attempt: when, how long, Segment's status code and answer, the error."""

    verbose_name_plural = "attempts (with the endpoint's answer)"


@admin.register(OutboxItem)
class OutboxItemAdmin(WorkItemAdminMixin, ModelAdmin):
    list_display = ("created", "status_badge", "what", "who", "short_error", "attempts", "sent")
    list_display_links = ("created",)
    list_filter = ("status", "source", "failure_type", "integration")
    list_filter_submit = True
    list_fullwidth = True
    search_fields = ("email",)
    search_help_text = "An exact email, messageId or row id."
    ordering = ("-id",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    inlines = (OutboxAttemptInline,)
    actions = ("replay",)
    actions_detail = ("replay_one",)
    fieldsets = (
        (None, {"fields": ("integration", "source", "type", "event", "status", "who_link", "message_id")}),
        ("Failure", {"fields": ("failure_type", "error", "response_text")}),
        ("When", {"fields": ("event_at", "due_at", "created_at", "sent_at", "run_link")}),
        ("Payload", {"fields": ("payload_json",)}),
        (
            "Queue",
            {"fields": ("queue_state", "next_attempt_at", "attempts", "last_error", "claimed_by", "finished_at")},
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in OutboxItem._meta.fields] + [
            "payload_json",
            "who_link",
            "run_link",
            "queue_state",
            "response_text",
        ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        # "Run again now" would send a sent message again; Replay takes failed ones only.
        actions.pop("run_again_now", None)
        return actions

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # Each an index lookup: the contact by its email, a messageId per integration (the
        # unique index leads with the integration; there are few of them), or the row id.
        from contacts.models import Contact
        from integrations.models import Integration

        query = Q(contact_id__in=Contact.objects.filter(email=term.lower()).values("pk"))
        query |= Q(integration_id__in=list(Integration.objects.values_list("pk", flat=True)), message_id=term)
        pk = parse_pk(term)
        if pk is not None:
            query |= Q(pk=pk)
        return queryset.filter(query), False

    @display(description="Created (UTC)", ordering="id")
    def created(self, item: OutboxItem) -> str:
        return f"{item.created_at:%m-%d %H:%M:%S}"

    @display(description="Status", ordering="status", label=STATUS_VARIANT)
    def status_badge(self, item: OutboxItem) -> str:
        return item.status

    @display(description="Type · event")
    def what(self, item: OutboxItem) -> str:
        return type_and_event(item.type, item.event)

    @display(description="Email")
    def who(self, item: OutboxItem) -> str:
        return format_html('<span class="sy-clip" title="{}">{}</span>', item.email, item.email or "—")

    @display(description="Why (skipped or failed)")
    def short_error(self, item: OutboxItem) -> str:
        text = item.error or (item.last_error if item.status == OutboxStatus.QUEUED else "")
        if not text:
            return "—"
        return format_html('<span class="sy-wrap" title="{}">{}</span>', text[:500], shorten(text, 48))

    @display(description="Sent (UTC)", ordering="sent_at")
    def sent(self, item: OutboxItem) -> str:
        return f"{item.sent_at:%m-%d %H:%M:%S}" if item.sent_at else "—"

    @display(description="Contact")
    def who_link(self, item: OutboxItem) -> str:
        if item.contact_id is None:
            return item.email or "— (erased, or a test event)"
        return link(change_url("contacts.contact", item.contact_id), item.email or f"contact {item.contact_id}")

    @display(description="Sync run")
    def run_link(self, item: OutboxItem) -> str:
        return link(change_url("integrations.syncrun", item.run_id), f"run {item.run_id}") if item.run_id else "—"

    @display(description="Segment's answer")
    def response_text(self, item: OutboxItem) -> str:
        return format_html('<pre class="sy-json">{}</pre>', item.response) if item.response else "—"

    @display(description="Payload")
    def payload_json(self, item: OutboxItem) -> str:
        return pretty_json(item.payload)

    @admin.action(description="Replay messages that did not go out (a fresh retry window)")
    def replay(self, request: HttpRequest, queryset: QuerySet[OutboxItem]) -> None:
        changed = items_replay(pks=queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            f"{changed} failed, cancelled or skipped message(s) queued to go out again now; others were left as they are.",
            messages.SUCCESS if changed else messages.WARNING,
        )

    @action(description="Replay", icon="replay", url_path="replay", permissions=["change"])
    def replay_one(self, request: HttpRequest, object_id: str):
        pk = parse_pk(str(object_id))
        item = get_object_or_404(OutboxItem, pk=pk if pk is not None else 0)
        back = HttpResponseRedirect(reverse("admin:integrations_outboxitem_change", args=[item.pk]))
        if item.status not in (OutboxStatus.FAILED, OutboxStatus.CANCELLED, OutboxStatus.SKIPPED):
            self.message_user(
                request, f"Only messages that did not go out are replayed; this one is {item.status}.", messages.WARNING
            )
            return back
        if not confirmed(request):
            return confirm_page(
                self,
                request,
                item,
                title=f"Replay {item}?",
                message="It goes back to the queue, due now, with a fresh retry window; its messageId stays the "
                "same, so Segment keeps one copy if an earlier attempt reached it after all.",
                button="Yes, replay it",
            )
        if items_replay(pks=[item.pk]):
            self.message_user(request, "Queued to go out again now.", messages.SUCCESS)
        else:
            self.message_user(request, "A worker holds it right now; left alone.", messages.WARNING)
        return back


# --- sync runs -------------------------------------------------------------------------------------
@admin.register(SyncRun)
class SyncRunAdmin(ModelAdmin):
    list_display = ("started", "integration", "trigger", "sent_link", "failed_link", "skipped_link", "queued", "calls")
    list_filter = ("trigger", "integration")
    list_select_related = ("integration",)
    ordering = ("-started_at", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    fields = (
        "integration",
        "trigger",
        "started_at",
        "finished_at",
        "sent_link",
        "failed_link",
        "skipped_link",
        "queued",
        "worker",
        "requests_table",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @display(description="Started (UTC)", ordering="started_at")
    def started(self, run: SyncRun) -> str:
        return f"{run.started_at:%Y-%m-%d %H:%M:%S}"

    def _items(self, run: SyncRun, status: str, count: int) -> str:
        if not count:
            return "0"
        return link(
            changelist_url(
                "integrations.outboxitem",
                integration__id__exact=run.integration_id,
                run__id__exact=run.pk,
                status__exact=status,
            ),
            f"{count:,}",
        )

    @display(description="Sent", ordering="sent")
    def sent_link(self, run: SyncRun) -> str:
        return self._items(run, OutboxStatus.SENT, run.sent)

    @display(description="Failed", ordering="failed")
    def failed_link(self, run: SyncRun) -> str:
        return self._items(run, OutboxStatus.FAILED, run.failed)

    @display(description="Skipped", ordering="skipped")
    def skipped_link(self, run: SyncRun) -> str:
        return self._items(run, OutboxStatus.SKIPPED, run.skipped)

    @display(description="Requests")
    def calls(self, run: SyncRun) -> str:
        answers = sorted({str(r.get("status") or "error") for r in run.requests})
        return f"{len(run.requests)} ({', '.join(answers)})" if run.requests else "—"

    @display(description="Requests to the endpoint")
    def requests_table(self, run: SyncRun) -> str:
        if not run.requests:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class='sy-wrap'>{}</td></tr>",
            (
                (
                    r.get("at", "")[:19].replace("T", " "),
                    r.get("status") or "no answer",
                    r.get("messages"),
                    r.get("ms"),
                    r.get("retry_count"),
                    shorten(r.get("answer") or "", 120),
                )
                for r in run.requests
            ),
        )
        return format_html(
            '<table class="sy-table"><tr><th>At (UTC)</th><th>Answer</th><th>Messages</th><th>ms</th>'
            "<th>X-Retry-Count</th><th>Body</th></tr>{}</table>",
            rows,
        )


# --- visitors ----------------------------------------------------------------------------------------
@admin.register(Visitor)
class VisitorAdmin(ModelAdmin):
    list_display = ("first_seen", "visitor", "email_link", "landing", "referrer_short", "identified")
    list_filter = ("integration",)
    search_fields = ("email",)
    search_help_text = "An exact email or anonymous id."
    list_select_related = ("integration",)
    ordering = ("-first_seen_at", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Visitor._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(email=term.lower()) | Q(anonymous_id=term)), False

    @display(description="First seen (UTC)", ordering="first_seen_at")
    def first_seen(self, visitor: Visitor) -> str:
        return f"{visitor.first_seen_at:%m-%d %H:%M:%S}"

    @display(description="Visitor")
    def visitor(self, visitor: Visitor) -> str:
        return format_html(
            '<span class="sy-mono" title="{}">{}</span>', visitor.anonymous_id, visitor.anonymous_id[:10]
        )

    @display(description="Contact")
    def email_link(self, visitor: Visitor) -> str:
        if visitor.contact_id is None:
            return "— (not identified)"
        return link(
            change_url("contacts.contact", visitor.contact_id), visitor.email or f"contact {visitor.contact_id}"
        )

    @display(description="Landing page")
    def landing(self, visitor: Visitor) -> str:
        return format_html(
            '<span class="sy-clip" title="{}">{}</span>',
            visitor.landing_page_url,
            shorten(visitor.landing_page_url, 48),
        )

    @display(description="Referrer")
    def referrer_short(self, visitor: Visitor) -> str:
        return format_html(
            '<span class="sy-clip" title="{}">{}</span>', visitor.referrer, shorten(visitor.referrer, 32)
        )

    @display(description="Identified", ordering="identified_at")
    def identified(self, visitor: Visitor) -> str:
        return f"{visitor.identified_at:%m-%d %H:%M}" if visitor.identified_at else "—"


# --- the integration page ------------------------------------------------------------------------------
def capture_snippet(integration) -> SafeString:
    key = (integration.settings or {}).get("site_key", "")
    snippet = f'<script src="{settings.SITE_URL}/capture.js" data-key="{key}" defer></script>'
    origins = integration.behaviour().option("allowed_origins") or "(none yet: set allowed_origins)"
    return format_html(
        '<p>Site key <code class="sy-mono">{}</code> (public). Paste on your pages:</p>'
        '<pre class="sy-json">{}</pre><p>Pages may post from: {}. A form with '
        "<code>data-switchyard-capture</code> sends its email field on submit.</p>",
        key,
        snippet,
        origins,
    )


def summary_html(integration, days: int = SUMMARY_DAYS) -> SafeString:
    rows = sync_summary(integration=integration, days=days)

    def figure(value: int, status: str, day) -> str:
        if not value:
            return "0"
        query = {"integration__id__exact": integration.pk, "status__exact": status}
        if status == OutboxStatus.SENT:
            query["sent_at__date"] = day.isoformat()
        elif status != OutboxStatus.QUEUED:
            query["finished_at__date"] = day.isoformat()
        return link(changelist_url("integrations.outboxitem", **query), f"{value:,}")

    table = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                f"{row.day:%Y-%m-%d}",
                figure(row.sent, OutboxStatus.SENT, row.day),
                figure(row.failed, OutboxStatus.FAILED, row.day),
                figure(row.skipped, OutboxStatus.SKIPPED, row.day),
                figure(row.queued, OutboxStatus.QUEUED, row.day),
            )
            for row in rows
        ),
    )
    ordered = list(reversed(rows))
    data = {
        "labels": [f"{row.day:%b %d}" for row in ordered],
        "datasets": [
            {
                "label": "Completions",
                "data": [r.sent for r in ordered],
                "backgroundColor": "#16a34a",
                "maxBarThickness": 14,
            },
            {
                "label": "Failures",
                "data": [r.failed for r in ordered],
                "backgroundColor": "#dc2626",
                "maxBarThickness": 14,
            },
            {
                "label": "Queued",
                "data": [r.queued for r in ordered],
                "backgroundColor": "#38bdf8",
                "maxBarThickness": 14,
            },
        ],
    }
    return render_to_string(
        "admin/integrations/outbound/sync_summary.html",
        {
            "data": json.dumps(data),
            "options": chart_options(y_title="messages per day", x_title="UTC day", legend=True),
            "table": table,
            "days": days,
            "history_url": changelist_url("integrations.syncrun", integration__id__exact=integration.pk),
            "failed_url": changelist_url(
                "integrations.outboxitem", integration__id__exact=integration.pk, status__exact=OutboxStatus.FAILED
            ),
        },
    )


class OutboundIntegrationMixin:
    """The integration page's outbound parts, for IntegrationAdmin: the Sync Summary and the
    capture snippet as read-only sections, and the outbound buttons (only on segment_source
    pages; the inbound buttons only on the others)."""

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.kind == KIND:
            fields += ["capture_script", "sync_summary"]
        return fields

    def render_change_form(self, request: HttpRequest, context, add=False, change=False, form_url="", obj=None):
        # IntegrationAdmin builds its own fieldsets; the outbound sections go in after its first.
        adminform = context.get("adminform")
        if obj is not None and obj.kind == KIND and adminform is not None:
            adminform.fieldsets[1:1] = [
                ("Sync Summary", {"fields": ["sync_summary"]}),
                ("Capture script", {"fields": ["capture_script"]}),
            ]
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def get_actions_detail(self, request: HttpRequest, object_id):
        found = super().get_actions_detail(request, object_id)
        pk = parse_pk(str(object_id))
        kind = self.model.objects.filter(pk=pk if pk is not None else 0).values_list("kind", flat=True).first()
        hidden = INBOUND_ONLY_ACTIONS if kind == KIND else OUTBOUND_DETAIL_ACTIONS
        names = {f"{self.model._meta.app_label}_{self.model._meta.model_name}_{name}" for name in hidden}
        return [a for a in found if a.action_name not in names]

    @display(description="Per day")
    def sync_summary(self, integration) -> SafeString:
        return summary_html(integration) if integration.pk else "—"

    @display(description="Snippet")
    def capture_script(self, integration) -> SafeString:
        return capture_snippet(integration) if integration.pk else "—"

    def _outbound(self, request: HttpRequest, object_id: str):
        integration = self._integration(request, object_id)
        if integration.kind != KIND:
            self.message_user(request, "That is for outbound (segment_source) integrations.", messages.WARNING)
            return integration, HttpResponseRedirect(change_url("integrations.integration", integration.pk))
        return integration, None

    @action(description="Send test event", icon="send", url_path="send-test", permissions=["change"])
    def send_test_event(self, request: HttpRequest, object_id: str):
        integration, refused = self._outbound(request, object_id)
        if refused:
            return refused
        if not confirmed(request):
            endpoint = integration.behaviour().option("endpoint")
            return confirm_page(
                self,
                request,
                integration,
                title=f"Send a test event from {integration.name}?",
                message=f"One track, “Switchyard Test Event” with test_event: true, goes to {endpoint}/v1/batch "
                "now with the integration's Write Key; the answer is shown, and kept in the sync history.",
                button="Send it",
            )
        result = send_test(integration=integration)
        if result.ok:
            self.message_user(
                request, f"Test event sent: the endpoint answered {result.status_code}.", messages.SUCCESS
            )
        else:
            answer = result.status_code if result.status_code is not None else "nothing"
            self.message_user(
                request,
                f"The test event failed: the endpoint answered {answer}: {shorten(result.response, 200)}",
                messages.ERROR,
            )
        return HttpResponseRedirect(change_url("integrations.integration", integration.pk))

    @action(description="Sync history", icon="history", url_path="sync-history")
    def open_sync_history(self, request: HttpRequest, object_id: str):
        integration = self._integration(request, object_id)
        return HttpResponseRedirect(changelist_url("integrations.syncrun", integration__id__exact=integration.pk))

    @action(description="Messages", icon="outbox", url_path="outbox")
    def open_outbox(self, request: HttpRequest, object_id: str):
        integration = self._integration(request, object_id)
        return HttpResponseRedirect(changelist_url("integrations.outboxitem", integration__id__exact=integration.pk))

    @action(description="Remove integration", icon="delete", url_path="remove", permissions=["change"])
    def remove_integration(self, request: HttpRequest, object_id: str):
        integration, refused = self._outbound(request, object_id)
        if refused:
            return refused
        if not confirmed(request):
            queued = OutboxItem.objects.filter(integration=integration, status=OutboxStatus.QUEUED).count()
            return confirm_page(
                self,
                request,
                integration,
                title=f"Remove {integration.name}?",
                message="Its capture script stops being accepted and nothing more is sent; queued messages are "
                "cancelled. Its sync history, messages and visitors stay for staff to read.",
                items=[f"{queued:,} queued message(s) will be cancelled"],
                button="Yes, remove it",
                danger=True,
            )
        cancelled = integration_remove(integration=integration, actor=request.user.get_username())
        self.message_user(
            request,
            f"Removed {integration.name}: {cancelled:,} queued message(s) cancelled; the history stays.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(change_url("integrations.integration", integration.pk))
