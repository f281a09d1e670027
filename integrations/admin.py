"""Staff UI for integrations, their keys and usage, and the inbound inbox.

Conventions (README "Layout"): unfold's ModelAdmin, badges for states, actions that staff need on
a single row as buttons on its page, counts that link to the filtered list, no COUNT(*) over the
inbox and no query per row.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display

from common.admin_tools import (
    EstimatedCountPaginator,
    PageChangeList,
    capped_count,
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
from integrations.admin_forms import add_form, field_name, form_for_kind, kind_setting_fields
from integrations.inbound.store import drain_soon
from integrations.keys import api_key_cache_clear, api_key_create, api_key_rotate
from integrations.kinds.base import KINDS
from integrations.models import ApiKey, DailyUsage, InboxMessage, InboxStatus, Integration, RejectedMessage
from integrations.outbound.admin import OUTBOUND_DETAIL_ACTIONS, OutboundIntegrationMixin

CHART_DAYS = 14
# The session key under which a new key waits to be shown once on its own page.
NEW_KEY_SESSION = "switchyard-new-key-{pk}"

STATUS_VARIANT = {
    InboxStatus.PENDING: "info",
    InboxStatus.PROCESSING: "info",
    InboxStatus.PROCESSED: "success",
    InboxStatus.SKIPPED: "default",
    InboxStatus.WAITING: "warning",
    InboxStatus.REFUSED: "warning",
    InboxStatus.FAILED: "danger",
}


def latest_received(pks: list[int]) -> dict[int, datetime]:
    """When each integration last received a message: one entry of inbox_integration_received each.

    On PostgreSQL one UNION ALL of a LIMIT 1 per integration, each with its id as a literal: a
    correlated subquery gets a generic plan that walks the whole inbox_received index for an
    integration that went quiet (173 ms at 1M rows, against 0.06 ms with the literal).
    """
    parts = [
        InboxMessage.objects.filter(integration_id=pk)
        .order_by("-received_at")
        .values_list("integration_id", "received_at")[:1]
        for pk in pks
    ]
    if not parts:
        return {}
    if len(parts) > 1 and connection.features.supports_slicing_ordering_in_compound:
        return dict(parts[0].union(*parts[1:], all=True))
    if len(parts) == 1:
        return dict(parts[0])
    latest = InboxMessage.objects.filter(integration=OuterRef("pk")).order_by("-received_at")
    rows = Integration.objects.filter(pk__in=pks).annotate(at=Subquery(latest.values("received_at")[:1]))
    return {pk: at for pk, at in rows.values_list("pk", "at") if at is not None}


def key_last_used(key: ApiKey) -> datetime | None:
    """When the key last brought a message in, derived from the inbox, not written per request.

    The inbound store is one SQL statement per request; writing last_used_at there (or after
    each response) would add a write per call to the hot path for a figure staff read rarely.
    Rotation revokes the old key, so while a key is the working one every message received
    for its integration came in with it: the newest inbox row between the key's creation and
    its revocation is one entry of inbox_integration_received. (Rows replayed by
    `import_segment` count too: they are stored for the integration without a key.)
    """
    rows = InboxMessage.objects.filter(integration_id=key.integration_id, received_at__gte=key.created_at)
    if key.revoked_at is not None:
        rows = rows.filter(received_at__lt=key.revoked_at)
    return rows.order_by("-received_at").values_list("received_at", flat=True).first()


class ApiKeyInline(TabularInline):
    model = ApiKey
    extra = 0
    can_delete = False
    fields = ("public_id", "state", "created_at", "last_used", "revoked_at")
    readonly_fields = fields
    ordering = ("-created_at",)
    verbose_name_plural = "API keys (only the public part is kept: rotate to get a new secret)"

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @display(description="State", label={"active": "success", "revoked": "default"})
    def state(self, key: ApiKey) -> str:
        return "active" if key.active else "revoked"

    @display(description="Last used")
    def last_used(self, key: ApiKey) -> str:
        used = key_last_used(key)
        return f"{used:%Y-%m-%d %H:%M:%S} UTC" if used else "not yet"


@admin.register(Integration)
class IntegrationAdmin(OutboundIntegrationMixin, ModelAdmin):
    list_display = ("name", "kind", "state", "last_received", "requests_today", "key_prefix")
    list_filter = ("kind", "enabled")
    search_fields = ("name",)
    actions = ("enable", "disable")
    actions_detail = ("open_inbox", "rotate_key", *OUTBOUND_DETAIL_ACTIONS)
    inlines = (ApiKeyInline,)
    readonly_fields = ("health", "usage_chart", "created_at", "updated_at")

    # --- the changelist -----------------------------------------------------------------------
    def get_queryset(self, request: HttpRequest) -> QuerySet[Integration]:
        today = timezone.now().date()
        usage = DailyUsage.objects.filter(integration=OuterRef("pk"), day=today)
        key = ApiKey.objects.filter(integration=OuterRef("pk"), revoked_at__isnull=True).order_by("-created_at")
        return (
            super()
            .get_queryset(request)
            .annotate(
                today_requests=Subquery(usage.values("requests")[:1]),
                active_key=Subquery(key.values("public_id")[:1]),
            )
        )

    def get_changelist(self, request, **kwargs):
        return PageChangeList

    def annotate_page(self, request: HttpRequest, integrations: list[Integration]) -> None:
        latest = latest_received([i.pk for i in integrations])
        for integration in integrations:
            integration.latest_received = latest.get(integration.pk)

    @display(description="State", label={"enabled": "success", "disabled": "danger"}, ordering="enabled")
    def state(self, integration: Integration) -> str:
        return "enabled" if integration.enabled else "disabled"

    @display(description="Last received")
    def last_received(self, integration: Integration) -> str:
        return _ago(getattr(integration, "latest_received", None), integration.kind_class.inbound)

    @display(description="Requests today / daily cap", ordering="today_requests")
    def requests_today(self, integration: Integration) -> str:
        if not integration.kind_class.inbound:
            return "outbound"
        used = getattr(integration, "today_requests", None) or 0
        if integration.daily_cap is None:
            return f"{used:,} / no cap"
        percent = min(100, round(100 * used / integration.daily_cap))
        return format_html(
            '{} / {} <span class="sy-meter{}"><span style="width:{}%"></span></span>',
            f"{used:,}",
            f"{integration.daily_cap:,}",
            " sy-full" if percent >= 100 else "",
            percent,
        )

    @display(description="Key")
    def key_prefix(self, integration: Integration) -> str:
        key = getattr(integration, "active_key", None)
        return format_html('<span class="sy-mono">{}.…</span>', key) if key else "—"

    # --- the change form ------------------------------------------------------------------------
    def kind_for(self, request: HttpRequest, obj: Integration | None):
        if obj is not None:
            return obj.kind_class
        chosen = request.POST.get("kind") or request.GET.get("kind")
        return KINDS.get(chosen) if chosen else None

    @property
    def conditional_fields(self) -> dict[str, str]:
        """On the add page, each kind's settings show as soon as that kind is chosen."""
        conditions = {name: f"kind == '{kind}'" for name, kind in kind_setting_fields()}
        outbound = [name for name, cls in KINDS.items() if not cls.inbound]
        # On a change page the kind is fixed (read-only, not a form value): always shown there.
        inbound_only = " && ".join(f"kind != '{name}'" for name in outbound) or "true"
        inbound_only = f"typeof kind === 'undefined' || ({inbound_only})"
        return {**conditions, "daily_cap": inbound_only, "shared_secret": inbound_only}

    def get_form(self, request: HttpRequest, obj: Integration | None = None, change: bool = False, **kwargs):
        kwargs["form"] = form_for_kind(obj.kind_class) if obj is not None else add_form()
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Integration | None = None):
        fields = list(super().get_readonly_fields(request, obj))
        return ["kind", *fields] if obj is not None else fields

    def get_fieldsets(self, request: HttpRequest, obj: Integration | None = None):
        if obj is None:
            return [
                (
                    None,
                    {
                        "fields": ["kind", "name", "enabled", "daily_cap", "shared_secret"],
                        "description": "Choose a kind: its settings appear below. Inbound kinds get an API key "
                        "on save, shown once on its own page with settings to paste into Segment.",
                    },
                ),
                (
                    "Settings of the kind",
                    {"fields": [name for name, _kind in kind_setting_fields()]},
                ),
            ]
        kind_class = obj.kind_class
        main = ["kind", "name", "enabled"]
        if kind_class.inbound:
            main += ["daily_cap", "shared_secret"]
        fieldsets = [(None, {"fields": main})]
        if kind_class.inbound:
            fieldsets.append(("Health", {"fields": ["health"]}))
        if kind_class.settings:
            fieldsets.append(
                (
                    f"{kind_class.label} settings",
                    {
                        "fields": [field_name(spec) for spec in kind_class.settings],
                        "description": kind_class.description,
                    },
                )
            )
        fieldsets.append((f"Usage, last {CHART_DAYS} days", {"fields": ["usage_chart"]}))
        fieldsets.append(("History", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}))
        return fieldsets

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        initial = super().get_changeform_initial_data(request)
        kind_class = self.kind_for(request, None)
        if kind_class is not None:
            initial["kind"] = kind_class.kind
            if "daily_cap" not in initial:
                initial["daily_cap"] = kind_class.default_daily_cap
        return initial

    def save_model(self, request: HttpRequest, obj: Integration, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change and obj.kind_class.inbound:
            remember_new_key(request, obj, api_key_create(integration=obj))

    def response_add(self, request: HttpRequest, obj: Integration, post_url_continue=None):
        if request.session.get(NEW_KEY_SESSION.format(pk=obj.pk)):
            self.message_user(request, f"Added {obj.name}.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:integrations_integration_key", args=[obj.pk]))
        return super().response_add(request, obj, post_url_continue)

    @display(description="Today and now")
    def health(self, integration: Integration) -> SafeString:
        if integration.pk is None:
            return "—"
        return integration_health(integration)

    @display(description="Daily usage")
    def usage_chart(self, integration: Integration) -> SafeString:
        if integration.pk is None:
            return "—"
        return usage_chart(integration)

    # --- the key, shown once, and rotation ---------------------------------------------------------
    def get_urls(self):
        key = path(
            "<path:object_id>/key/", self.admin_site.admin_view(self.key_view), name="integrations_integration_key"
        )
        return [key, *super().get_urls()]

    def key_view(self, request: HttpRequest, object_id: str):
        integration = self._integration(request, object_id)
        # Popped: the key leaves the session the first time it is shown.
        key = request.session.pop(NEW_KEY_SESSION.format(pk=integration.pk), None)
        context = {
            **self.admin_site.each_context(request),
            "title": f"API key of {integration.name}",
            "opts": self.model._meta,
            "original": integration,
            "key": key,
            "host": settings.SITE_URL,
            "host_name": settings.SITE_URL.split("://", 1)[-1],
            "protocol": settings.SITE_URL.split("://", 1)[0],
            "rotate_url": reverse("admin:integrations_integration_rotate_key", args=[integration.pk]),
            "change_url": reverse("admin:integrations_integration_change", args=[integration.pk]),
            "basic": _basic(key) if key else "",
        }
        return TemplateResponse(request, "admin/integrations/integration/key.html", context)

    @action(description="Rotate key", icon="key", url_path="rotate-key", permissions=["change"])
    def rotate_key(self, request: HttpRequest, object_id: str):
        integration = self._integration(request, object_id)
        if not integration.kind_class.inbound:
            self.message_user(request, "Outbound integrations have no inbound key.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:integrations_integration_change", args=[integration.pk]))
        if confirmed(request):
            remember_new_key(request, integration, api_key_rotate(integration=integration))
            self.message_user(
                request,
                f"Rotated the key of {integration.name}; the old key gets 401 on every web process within "
                f"{settings.API_KEY_CACHE_SECONDS:g} s.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:integrations_integration_key", args=[integration.pk]))
        active = integration.api_keys.filter(revoked_at__isnull=True).order_by("-created_at")
        return confirm_page(
            self,
            request,
            integration,
            title=f"Rotate the API key of {integration.name}?",
            message=f"A new key is made and shown once. The current key stops working: senders still using it "
            f"get 401 within {settings.API_KEY_CACHE_SECONDS:g} s, so update Segment right after.",
            items=[f"{key.public_id}.… (made {key.created_at:%Y-%m-%d}) will be revoked" for key in active],
            button="Yes, rotate the key",
            danger=True,
        )

    @action(description="Inbox", icon="inbox", url_path="inbox")
    def open_inbox(self, request: HttpRequest, object_id: str):
        integration = self._integration(request, object_id)
        return HttpResponseRedirect(changelist_url("integrations.inboxmessage", integration__id__exact=integration.pk))

    def _integration(self, request: HttpRequest, object_id: str) -> Integration:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        pk = parse_pk(object_id)
        return get_object_or_404(Integration, pk=pk if pk is not None else 0)

    # --- bulk actions -------------------------------------------------------------------------------
    @admin.action(description="Enable")
    def enable(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        count = queryset.filter(enabled=False).update(enabled=True, updated_at=timezone.now())
        api_key_cache_clear()
        self.message_user(request, f"Enabled {count} integration(s).", messages.SUCCESS)

    @admin.action(description="Disable (inbound calls get 401, nothing is sent)")
    def disable(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        count = queryset.filter(enabled=True).update(enabled=False, updated_at=timezone.now())
        api_key_cache_clear()
        self.message_user(request, f"Disabled {count} integration(s).", messages.SUCCESS)


def remember_new_key(request: HttpRequest, integration: Integration, key: str) -> None:
    """Keep a new key for the one page that shows it (the session is the staff member's own,
    server-side; the key page pops it). Never in a URL, a message or a log."""
    request.session[NEW_KEY_SESSION.format(pk=integration.pk)] = key


def _basic(key: str) -> str:
    import base64

    return base64.b64encode(f"{key}:".encode()).decode()


def _ago(moment: datetime | None, inbound: bool = True) -> str:
    if not inbound:
        return "outbound"
    if moment is None:
        return "never"
    from integrations.health import duration

    ago = duration(timezone.now() - moment)
    return format_html('<span title="{} UTC">{} ago</span>', f"{moment:%Y-%m-%d %H:%M:%S}", ago)


def integration_health(integration: Integration) -> SafeString:
    """Last received, today's figures and the inbox rows staff act on, each a link to its list."""
    now = timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    latest = (
        InboxMessage.objects.filter(integration=integration)
        .order_by("-received_at")
        .values_list("received_at", flat=True)
        .first()
    )
    usage = DailyUsage.objects.filter(integration=integration, day=now.date()).first()
    inbox = InboxMessage.objects.filter(integration=integration)
    since = midnight.strftime("%Y-%m-%d %H:%M:%S%z")
    rows = [
        (
            "Last received",
            _ago(latest),
            changelist_url("integrations.inboxmessage", integration__id__exact=integration.pk),
        ),
        (
            "Requests today",
            f"{usage.requests if usage else 0:,}"
            + (f" of {integration.daily_cap:,} (daily cap)" if integration.daily_cap else " (no cap)"),
            "",
        ),
        (
            "Messages today",
            f"{usage.messages if usage else 0:,}",
            changelist_url("integrations.inboxmessage", integration__id__exact=integration.pk, received_at__gte=since),
        ),
        (
            "Refused today",
            f"{usage.rejected if usage else 0:,}",
            changelist_url(
                "integrations.rejectedmessage", integration__id__exact=integration.pk, received_at__gte=since
            ),
        ),
    ]
    for status in (InboxStatus.FAILED, InboxStatus.WAITING, InboxStatus.PENDING):
        rows.append(
            (
                f"{InboxStatus(status).label} now",
                str(capped_count(inbox.filter(status=status))),
                changelist_url(
                    "integrations.inboxmessage", integration__id__exact=integration.pk, status__exact=status
                ),
            )
        )
    body = format_html_join(
        "",
        "<tr><th>{}</th><td>{}</td></tr>",
        ((label, link(url, value) if url else value) for label, value, url in rows),
    )
    return format_html('<table class="sy-table sy-health" style="max-width:560px">{}</table>', body)


def usage_series(rows: dict, first, days: int) -> dict:
    """Chart.js data: requests, messages and rejected per UTC day (zero for quiet days)."""
    labels, series = [], {"requests": [], "messages": [], "rejected": []}
    for offset in range(days):
        day = first + timedelta(days=offset)
        row = rows.get(day) or {}
        labels.append(f"{day:%b %d}")
        for name, values in series.items():
            values.append(row.get(name) or 0)
    colors = {"requests": "#6366f1", "messages": "#38bdf8", "rejected": "#dc2626"}
    return {
        "labels": labels,
        "datasets": [
            {"label": name.capitalize(), "data": values, "backgroundColor": colors[name], "maxBarThickness": 14}
            for name, values in series.items()
        ],
    }


def usage_chart(integration: Integration, days: int = CHART_DAYS) -> SafeString:
    """Requests, messages and rejected per day, with labelled axes: one query on DailyUsage."""
    from django.template.loader import render_to_string

    today = timezone.now().date()
    first = today - timedelta(days=days - 1)
    rows = {
        row["day"]: row
        for row in DailyUsage.objects.filter(integration=integration, day__gte=first, day__lte=today).values(
            "day", "requests", "messages", "rejected"
        )
    }
    data = usage_series(rows, first, days)
    return render_to_string(
        "admin/integrations/integration/usage_chart.html",
        {
            "data": json.dumps(data),
            "options": chart_options(y_title="per day", x_title="UTC day", legend=True),
            "totals": {d["label"]: sum(d["data"]) for d in data["datasets"]},
            "days": days,
        },
    )


# --- the inbox ------------------------------------------------------------------------------------
SEGMENT_TYPES = ("identify", "track", "page", "screen", "group", "alias", "delete")


class TypeFilter(admin.SimpleListFilter):
    """Fixed Segment types: a DISTINCT over the inbox would scan the whole table."""

    title = "type"
    parameter_name = "type"

    def lookups(self, request, model_admin):
        return [(t, t) for t in SEGMENT_TYPES]

    def queryset(self, request, queryset):
        return queryset.filter(type=self.value()) if self.value() else queryset


def retry_messages(queryset: QuerySet[InboxMessage]) -> int:
    # A claimed row belongs to a worker until its lease runs out; leave it alone.
    count = queryset.exclude(status=InboxStatus.PROCESSING).update(
        status=InboxStatus.PENDING, next_attempt_at=timezone.now(), reason="", attempts=0
    )
    if count:
        drain_soon()
    return count


def skip_messages(queryset: QuerySet[InboxMessage], username: str) -> int:
    return queryset.filter(status__in=[InboxStatus.PENDING, InboxStatus.WAITING, InboxStatus.FAILED]).update(
        status=InboxStatus.SKIPPED,
        next_attempt_at=None,
        reason=f"marked skipped by {username}",
        processed_at=timezone.now(),
    )


@admin.register(InboxMessage)
class InboxMessageAdmin(ModelAdmin):
    list_display = ("received", "status_badge", "what", "short_reason", "contact_link", "short_id", "source")
    list_display_links = ("received",)
    list_filter = ("status", TypeFilter, "integration", ("received_at", admin.DateFieldListFilter))
    list_filter_submit = True
    list_fullwidth = True
    search_fields = ("message_id", "user_id", "email")
    search_help_text = "Exact messageId, userId, email or row id."
    list_select_related = ("integration",)
    raw_id_fields = ("contact",)
    ordering = ("-received_at",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan the table once per filter choice
    list_per_page = 50
    actions = ("retry", "mark_skipped")
    actions_detail = ("retry_one", "skip_one")
    fieldsets = (
        (None, {"fields": ("integration", "type", "message_id", "status", "reason", "warnings_list", "contact")}),
        ("Who and when", {"fields": ("user_id", "anonymous_id", "email", "event", "timestamp", "received_at")}),
        ("Processing", {"fields": ("attempts", "next_attempt_at", "processed_at", "lane")}),
        ("Payload", {"fields": ("payload_json",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in InboxMessage._meta.fields] + ["payload_json", "warnings_list"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_search_results(self, request, queryset, search_term):
        """Exact matches only, so each term is one index lookup even on millions of rows."""
        term = search_term.strip()
        if not term:
            return queryset, False
        query = Q(message_id=term) | Q(user_id=term) | Q(email=term.lower())
        pk = parse_pk(term)
        if pk is not None:
            query |= Q(pk=pk)
        return queryset.filter(query), False

    # --- columns: short, wrapped or clipped, so the list fits a 1366-pixel screen ---------------------
    @display(description="Received (UTC)", ordering="received_at")
    def received(self, message: InboxMessage) -> str:
        return f"{message.received_at:%m-%d %H:%M:%S}"

    @display(description="Status", ordering="status", label=STATUS_VARIANT)
    def status_badge(self, message: InboxMessage) -> str:
        return message.status

    @display(description="Type · event")
    def what(self, message: InboxMessage) -> str:
        return type_and_event(message.type, message.event, length=40)

    @display(description="Reason")
    def short_reason(self, message: InboxMessage) -> str:
        if not message.reason:
            return "—"
        return format_html(
            '<span class="sy-wrap" title="{}">{}</span>', message.reason[:500], shorten(message.reason, 56)
        )

    @display(description="Contact")
    def contact_link(self, message: InboxMessage) -> str:
        who = message.email or message.user_id or message.anonymous_id
        if message.contact_id is None:
            return format_html('<span class="sy-muted sy-clip" title="{}">{}</span>', who, who) if who else "—"
        return format_html(
            '<a href="{}" class="sy-link sy-clip" title="{}">{}</a>',
            change_url("contacts.contact", message.contact_id),
            who,
            who or f"#{message.contact_id}",
        )

    @display(description="Message id")
    def short_id(self, message: InboxMessage) -> str:
        return format_html(
            '<span class="sy-mono" title="{}">{}</span>', message.message_id, shorten(message.message_id, 9)
        )

    @display(description="Integration", ordering="integration")
    def source(self, message: InboxMessage) -> str:
        return format_html('<span class="sy-clip" style="max-width:8rem">{}</span>', message.integration.name)

    # --- the change page -----------------------------------------------------------------------------
    @display(description="Payload")
    def payload_json(self, message: InboxMessage) -> str:
        return pretty_json(message.payload)

    @display(description="Warnings")
    def warnings_list(self, message: InboxMessage) -> str:
        if not message.warnings:
            return "—"
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((w,) for w in message.warnings)))

    # --- actions ---------------------------------------------------------------------------------------
    @admin.action(description="Retry now (back to pending)")
    def retry(self, request: HttpRequest, queryset: QuerySet[InboxMessage]) -> None:
        count = retry_messages(queryset)
        self.message_user(request, f"Queued {count} message(s) for another attempt.", messages.SUCCESS)

    @admin.action(description="Mark skipped")
    def mark_skipped(self, request: HttpRequest, queryset: QuerySet[InboxMessage]) -> None:
        count = skip_messages(queryset, request.user.get_username())
        self.message_user(
            request,
            f"Marked {count} message(s) skipped. Processed, skipped and in-progress messages were left alone.",
            messages.SUCCESS,
        )

    @action(description="Retry", icon="replay", url_path="retry", permissions=["change"])
    def retry_one(self, request: HttpRequest, object_id: str):
        rows, message = self._one(request, object_id)
        if not confirmed(request):
            return confirm_page(
                self,
                request,
                message,
                title=f"Retry {message}?",
                message="It goes back to pending, its attempts start again from zero, and a worker applies it "
                "within seconds.",
                button="Yes, retry it",
            )
        count = retry_messages(rows)
        if count:
            self.message_user(request, "Queued for another attempt: it is back to pending.", messages.SUCCESS)
        else:
            self.message_user(request, "A worker is applying this message now; left alone.", messages.WARNING)
        return self._back(object_id)

    @action(description="Mark skipped", icon="block", url_path="skip", permissions=["change"])
    def skip_one(self, request: HttpRequest, object_id: str):
        rows, message = self._one(request, object_id)
        if not confirmed(request):
            return confirm_page(
                self,
                request,
                message,
                title=f"Mark {message} skipped?",
                message="It will not be applied; the row keeps who skipped it as its reason.",
                button="Yes, skip it",
            )
        if skip_messages(rows, request.user.get_username()):
            self.message_user(request, "Marked skipped: it will not be applied.", messages.SUCCESS)
        else:
            self.message_user(
                request, "Only pending, waiting and failed messages can be skipped; left as it is.", messages.WARNING
            )
        return self._back(object_id)

    def _one(self, request: HttpRequest, object_id: str) -> tuple[QuerySet[InboxMessage], InboxMessage]:
        pk = parse_pk(object_id)
        rows = InboxMessage.objects.filter(pk=pk if pk is not None else 0)
        return rows, get_object_or_404(rows)

    def _back(self, object_id: str) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:integrations_inboxmessage_change", args=[object_id]))


@admin.register(RejectedMessage)
class RejectedMessageAdmin(ModelAdmin):
    list_display = ("received_at", "integration", "answer", "code", "short_message", "path", "index")
    list_filter = ("code", "status_code", "integration", ("received_at", admin.DateFieldListFilter))
    list_filter_submit = True
    list_fullwidth = True
    search_fields = ("=code", "message")
    list_select_related = ("integration",)
    ordering = ("-received_at",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan the table once per filter choice
    fields = (
        "received_at",
        "integration",
        "path",
        "status_code",
        "code",
        "message",
        "index",
        "remote_addr",
        "body_pretty",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @display(description="Answer", ordering="status_code", label={"401": "warning", "429": "warning"})
    def answer(self, rejected: RejectedMessage) -> str:
        return str(rejected.status_code)

    @display(description="Message")
    def short_message(self, rejected: RejectedMessage) -> str:
        return shorten(rejected.message, 90)

    @display(description="Body")
    def body_pretty(self, rejected: RejectedMessage) -> str:
        try:
            return pretty_json(json.loads(rejected.body))
        except ValueError:
            return format_html('<pre class="sy-json">{}</pre>', rejected.body)
