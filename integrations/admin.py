"""Staff UI for integrations, their keys and usage, and the inbound inbox."""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from common.ids import parse_pk
from integrations.admin_forms import field_name, form_for_kind
from common.admin_tools import EstimatedCountPaginator, pretty_json
from integrations.inbound.store import drain_soon
from integrations.keys import api_key_cache_clear, api_key_create, api_key_rotate
from integrations.kinds.base import KINDS
from integrations.models import ApiKey, DailyUsage, InboxMessage, InboxStatus, Integration, RejectedMessage

CHART_DAYS = 14


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    can_delete = False
    fields = ("public_id", "state", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    ordering = ("-created_at",)
    verbose_name_plural = "API keys (only the public part is kept; rotate to get a new secret)"

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="State")
    def state(self, key: ApiKey) -> str:
        return "active" if key.active else "revoked"


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "enabled", "requests_today", "key_prefix", "created_at")
    list_filter = ("kind", "enabled")
    search_fields = ("name",)
    actions = ("rotate_key", "enable", "disable")
    inlines = (ApiKeyInline,)
    readonly_fields = ("usage_chart", "created_at", "updated_at")

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

    @admin.display(description="Requests today / daily cap", ordering="today_requests")
    def requests_today(self, integration: Integration) -> str:
        if not integration.kind_class.inbound:
            return "outbound"
        used = integration.today_requests or 0
        if integration.daily_cap is None:
            return f"{used:,} / no cap"
        percent = min(100, round(100 * used / integration.daily_cap))
        return format_html(
            '{} / {} <span class="sy-meter"><span style="width:{}%"></span></span>',
            f"{used:,}",
            f"{integration.daily_cap:,}",
            percent,
        )

    @admin.display(description="Key prefix")
    def key_prefix(self, integration: Integration) -> str:
        return f"{integration.active_key}.…" if integration.active_key else "—"

    # --- the change form ------------------------------------------------------------------------
    def kind_for(self, request: HttpRequest, obj: Integration | None):
        if obj is not None:
            return obj.kind_class
        chosen = request.POST.get("kind") or request.GET.get("kind")
        return KINDS.get(chosen) if chosen else None

    def get_form(self, request: HttpRequest, obj: Integration | None = None, change: bool = False, **kwargs):
        kwargs["form"] = form_for_kind(self.kind_for(request, obj))
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Integration | None = None):
        fields = list(super().get_readonly_fields(request, obj))
        return ["kind", *fields] if obj is not None else fields

    def get_fieldsets(self, request: HttpRequest, obj: Integration | None = None):
        kind_class = self.kind_for(request, obj)
        main = ["kind", "name", "enabled"]
        if kind_class is None or kind_class.inbound:
            main += ["daily_cap", "shared_secret"]
        fieldsets = [(None, {"fields": main})]
        if kind_class is None:
            links = format_html_join(
                ", ", '<a href="?kind={}">{}</a>', ((name, cls.label) for name, cls in sorted(KINDS.items()))
            )
            fieldsets[0][1]["description"] = format_html(
                "Choose a kind to see its settings here: {}. Inbound kinds get an API key on save, shown once.",
                links,
            )
        elif kind_class.settings:
            fieldsets.append(
                (
                    f"{kind_class.label} settings",
                    {
                        "fields": [field_name(spec) for spec in kind_class.settings],
                        "description": kind_class.description,
                    },
                )
            )
        if obj is not None:
            fieldsets.append(("Usage, last 14 days", {"fields": ["usage_chart"]}))
            fieldsets.append(("History", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}))
        return fieldsets

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        initial = super().get_changeform_initial_data(request)
        kind_class = self.kind_for(request, None)
        if kind_class is not None and "daily_cap" not in initial:
            initial["daily_cap"] = kind_class.default_daily_cap
        return initial

    def save_model(self, request: HttpRequest, obj: Integration, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change and obj.kind_class.inbound:
            key = api_key_create(integration=obj)
            self.message_user(
                request,
                f"The API key of {obj.name} is {key} — copy it now, it is not shown again.",
                messages.WARNING,
            )

    @admin.display(description="Daily usage")
    def usage_chart(self, integration: Integration) -> SafeString:
        return usage_chart(integration)

    # --- actions --------------------------------------------------------------------------------
    @admin.action(description="Rotate the API key (revokes the current one)")
    def rotate_key(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        rotated, skipped = [], 0
        for integration in queryset:
            if not integration.kind_class.inbound:
                skipped += 1
                continue
            rotated.append((integration.name, api_key_rotate(integration=integration)))
        for name, key in rotated:
            self.message_user(
                request, f"New API key for {name}: {key} — copy it now, it is not shown again.", messages.WARNING
            )
        summary = f"Rotated {len(rotated)} key(s); the old keys get 401 on every web process within {settings.API_KEY_CACHE_SECONDS:g} s."
        if skipped:
            summary += f" Skipped {skipped} outbound integration(s), which have no inbound key."
        self.message_user(request, summary, messages.SUCCESS)

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


def usage_chart(integration: Integration, days: int = CHART_DAYS) -> SafeString:
    """Bars per day for requests, messages and rejected: one query, inline SVG, no assets."""
    today = timezone.now().date()
    first = today - timedelta(days=days - 1)
    rows = {row.day: row for row in DailyUsage.objects.filter(integration=integration, day__gte=first, day__lte=today)}
    series = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row = rows.get(day)
        series.append((day, row.requests if row else 0, row.messages if row else 0, row.rejected if row else 0))
    return render_to_string(
        "admin/integrations/integration/usage_chart.html",
        {"bars": chart_bars(series), "totals": [sum(s[i] for s in series) for i in (1, 2, 3)], "days": days},
    )


def chart_bars(series: list[tuple]) -> list[dict]:
    peak = max([1, *(max(s[1:]) for s in series)])
    height, bar, gap = 120, 8, 10
    bars = []
    for index, (day, *values) in enumerate(series):
        x = index * (3 * bar + gap)
        for position, (label, value) in enumerate(zip(("requests", "messages", "rejected"), values, strict=True)):
            h = round(height * value / peak)
            bars.append(
                {
                    "x": x + position * bar,
                    "y": height - h,
                    "h": h,
                    "w": bar - 1,
                    "series": label,
                    "title": f"{day:%b %d}: {value:,} {label}",
                }
            )
        bars.append({"label_x": x + bar * 1.5, "label": f"{day:%d}"})
    return bars


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


@admin.register(InboxMessage)
class InboxMessageAdmin(admin.ModelAdmin):
    list_display = ("received_at", "message_id", "integration", "type", "status", "user_id", "email", "attempts")
    list_display_links = ("received_at", "message_id")
    list_filter = ("status", TypeFilter, "integration", ("received_at", admin.DateFieldListFilter))
    search_fields = ("message_id", "user_id", "email")
    search_help_text = "Exact messageId, userId or email."
    list_select_related = ("integration",)
    raw_id_fields = ("contact",)
    ordering = ("-received_at",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan the table once per filter choice
    actions = ("retry", "mark_skipped")
    fieldsets = (
        (None, {"fields": ("integration", "type", "message_id", "status", "reason", "warnings_list", "contact")}),
        ("Who and when", {"fields": ("user_id", "anonymous_id", "email", "event", "timestamp", "received_at")}),
        ("Processing", {"fields": ("attempts", "next_attempt_at", "processed_at")}),
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

    @admin.display(description="Payload")
    def payload_json(self, message: InboxMessage) -> str:
        return pretty_json(message.payload)

    @admin.display(description="Warnings")
    def warnings_list(self, message: InboxMessage) -> str:
        if not message.warnings:
            return "—"
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((w,) for w in message.warnings)))

    @admin.action(description="Retry now (back to pending)")
    def retry(self, request: HttpRequest, queryset: QuerySet[InboxMessage]) -> None:
        # A claimed row belongs to a worker until its lease runs out; leave it alone.
        count = queryset.exclude(status=InboxStatus.PROCESSING).update(
            status=InboxStatus.PENDING, next_attempt_at=timezone.now(), reason="", attempts=0
        )
        if count:
            drain_soon()
        self.message_user(request, f"Queued {count} message(s) for another attempt.", messages.SUCCESS)

    @admin.action(description="Mark skipped")
    def mark_skipped(self, request: HttpRequest, queryset: QuerySet[InboxMessage]) -> None:
        count = queryset.filter(status__in=[InboxStatus.PENDING, InboxStatus.WAITING, InboxStatus.FAILED]).update(
            status=InboxStatus.SKIPPED,
            next_attempt_at=None,
            reason=f"marked skipped by {request.user.get_username()}",
            processed_at=timezone.now(),
        )
        self.message_user(
            request,
            f"Marked {count} message(s) skipped. Processed, skipped and in-progress messages were left alone.",
            messages.SUCCESS,
        )


@admin.register(RejectedMessage)
class RejectedMessageAdmin(admin.ModelAdmin):
    list_display = ("received_at", "integration", "status_code", "code", "short_message", "path", "index")
    list_filter = ("code", "status_code", "integration", ("received_at", admin.DateFieldListFilter))
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

    @admin.display(description="Message")
    def short_message(self, rejected: RejectedMessage) -> str:
        return rejected.message if len(rejected.message) <= 90 else rejected.message[:89] + "…"

    @admin.display(description="Body")
    def body_pretty(self, rejected: RejectedMessage) -> str:
        try:
            return pretty_json(json.loads(rejected.body))
        except ValueError:
            return format_html('<pre class="sy-json">{}</pre>', rejected.body)
