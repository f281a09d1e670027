"""The admin's index as an operations dashboard, and the sidebar.

It reads several apps (the inbox, integrations, background tasks), so it lives in config, the
top layer. Every figure is cheap on a million-row inbox: counts are capped (COUNT over at most
10,001 index entries, shown "10,000+"), "latest" and "oldest" are one index entry each, and the
per-day figures come from DailyUsage (a row per integration per day). bench and EXPLAIN notes:
README "Layout", admin conventions.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import OuterRef, Subquery, Sum
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from common import admin_tools
from common.admin_tools import Count, capped_count, changelist_url, chart_options
from integrations.admin import latest_received, usage_series
from integrations.health import duration, last_drains
from integrations.models import DailyUsage, InboxMessage, InboxStatus, Integration, RejectedMessage

WINDOW = timedelta(hours=24)
CHART_DAYS = 14

# One colour per state, the same on the dashboard and in the inbox list's badges.
STATUS_VARIANT = {
    InboxStatus.PENDING: "info",
    InboxStatus.PROCESSING: "info",
    InboxStatus.PROCESSED: "success",
    InboxStatus.SKIPPED: "default",
    InboxStatus.WAITING: "warning",
    InboxStatus.REFUSED: "warning",
    InboxStatus.FAILED: "danger",
}
VARIANT_COLOR = {
    "info": "#3b82f6",
    "success": "#16a34a",
    "default": "#9ca3af",
    "warning": "#f59e0b",
    "danger": "#dc2626",
}


# --- the sidebar ------------------------------------------------------------------------------
def _item(title: str, icon: str, app_model: str, **query) -> dict:
    app_label, model_name = app_model.split(".")

    def allowed(request: HttpRequest) -> bool:
        return request.user.has_perm(f"{app_label}.view_{model_name}")

    return {
        "title": title,
        "icon": icon,
        "link": lambda request: changelist_url(app_model, **query),
        "permission": allowed,
    }


def navigation(request: HttpRequest) -> list[dict]:
    """What staff open most, grouped by job; every other page is under "All applications"."""
    failed = _item("Failed messages", "error", "integrations.inboxmessage", status__exact="failed")
    badge = failed_badge(request)
    if badge:
        failed.update(badge=badge, badge_variant="danger")
    return [
        {
            "title": "Operations",
            "items": [
                {"title": "Dashboard", "icon": "dashboard", "link": reverse("admin:index")},
                _item("Inbox", "inbox", "integrations.inboxmessage"),
                failed,
                _item("Refused requests", "block", "integrations.rejectedmessage"),
                _item("Integrations", "hub", "integrations.integration"),
            ],
        },
        {
            "title": "People",
            "items": [
                _item("Contacts", "group", "contacts.contact"),
                _item("Suppressions", "do_not_disturb_on", "contacts.suppression"),
                _item("Erasures", "delete_forever", "contacts.erasurerecord"),
                _item("Events", "timeline", "contacts.contactevent"),
                _item("Properties", "tune", "contacts.propertydefinition"),
                _item("Mailing lists", "mail", "contacts.mailinglist"),
            ],
        },
        {
            "title": "Email and loops",
            "items": [
                _item("Loops", "all_inclusive", "campaigns.loop"),
                _item("Enrolments", "how_to_reg", "campaigns.enrolment"),
                _item("Email templates", "drafts", "campaigns.emailtemplate"),
                _item("Email sends", "forward_to_inbox", "campaigns.emailsend"),
                _item("Bounces and complaints", "mark_email_unread", "campaigns.emailevent"),
            ],
        },
        {
            "title": "Surveys",
            "items": [
                _item("Campaigns", "campaign", "campaigns.campaign"),
                _item("Responses", "reviews", "campaigns.surveyresponse"),
                _item("Dispatches", "outgoing_mail", "campaigns.surveydispatch"),
                _item("Notifications", "notifications", "campaigns.notificationrule"),
                _item("Webhooks", "webhook", "campaigns.webhooksubscription"),
                _item("Webhook deliveries", "send", "campaigns.delivery"),
            ],
        },
        {
            "title": "Segment source",
            "items": [
                _item("Outbound messages", "outbox", "integrations.outboxitem"),
                _item("Sync runs", "history", "integrations.syncrun"),
                _item("Visitors", "person_search", "integrations.visitor"),
            ],
        },
        {
            "title": "Affiliates",
            "items": [
                _item("Affiliates", "handshake", "affiliates.affiliate"),
                _item("Conversions", "shopping_cart", "affiliates.conversion"),
                {
                    "title": "Payouts",
                    "icon": "payments",
                    "link": lambda request: reverse("admin:affiliates_conversion_payouts_page"),
                    "permission": lambda request: request.user.has_perm("affiliates.view_conversion"),
                },
                _item("Offers", "sell", "affiliates.offer"),
                _item("Clicks", "ads_click", "affiliates.click"),
            ],
        },
        {
            "title": "Background tasks",
            "collapsible": True,
            "items": [
                _item("Scheduled tasks", "schedule", "django_q.schedule"),
                _item("Failed tasks", "report", "django_q.failure"),
                _item("Successful tasks", "task_alt", "django_q.success"),
            ],
        },
    ]


def failed_badge(request: HttpRequest) -> str:
    """Failed inbox rows waiting for staff, on the sidebar: one capped index count ("" for none)."""
    if not request.user.has_perm("integrations.view_inboxmessage"):
        return ""
    count = capped_count(InboxMessage.objects.filter(status=InboxStatus.FAILED))
    return str(count) if count else ""


# --- the dashboard ------------------------------------------------------------------------------
@dataclass
class StatusFigure:
    status: str
    label: str
    count: Count
    url: str
    variant: str


@dataclass
class IntegrationHealth:
    integration: Integration
    url: str
    last_received: datetime | None
    last_received_ago: str
    requests: int
    cap: int | None
    percent: int
    failed: Count
    failed_url: str
    waiting: Count
    waiting_url: str
    inbound: bool
    rejected: int = 0
    rejected_url: str = ""
    notes: list[str] = field(default_factory=list)


def dashboard_callback(request: HttpRequest, context: dict) -> dict:
    """unfold's DASHBOARD_CALLBACK: the figures of templates/admin/index.html."""
    context.update(dashboard(timezone.now()))
    return context


def dashboard(now: datetime) -> dict:
    since = now - WINDOW
    statuses = inbox_by_status(since)
    oldest = oldest_pending()
    finished, failure = last_drains()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rejected = capped_count(RejectedMessage.objects.filter(received_at__gte=midnight))
    return {
        "since": since,
        "statuses": statuses,
        "received_24h": _sum_counts(s.count for s in statuses),
        "status_chart": status_chart(statuses),
        "status_chart_options": chart_options(y_title="messages", x_title="state", legend=False),
        "oldest_pending": oldest,
        "oldest_pending_age": duration(now - oldest[0]) if oldest else "",
        "oldest_pending_url": reverse("admin:integrations_inboxmessage_change", args=[oldest[1]]) if oldest else "",
        "pending_url": changelist_url("integrations.inboxmessage", status__exact=InboxStatus.PENDING),
        "last_drain": finished,
        "last_drain_age": duration(now - finished) if finished else "",
        "drain_failure": failure,
        "drain_failures_url": changelist_url("django_q.failure"),
        "rejected_today": rejected,
        "rejected_url": changelist_url("integrations.rejectedmessage", received_at__gte=_param(midnight)),
        "health": integration_health(now),
        "usage_chart": usage_chart(now.date()),
        "chart_days": CHART_DAYS,
    }


def _param(moment: datetime) -> str:
    """A datetime as the admin's date filters take it in a query string."""
    return moment.strftime("%Y-%m-%d %H:%M:%S%z")


def _sum_counts(counts) -> Count:
    counts = list(counts)
    return Count(sum(counts), capped=any(c.capped for c in counts))


def inbox_by_status(since: datetime) -> list[StatusFigure]:
    """Messages received since `since`, per state: one capped count each on inbox_status_received
    (status, received_at): an index-only range scan of at most 10,001 entries."""
    figures = []
    for status, label in InboxStatus.choices:
        count = capped_count(InboxMessage.objects.filter(status=status, received_at__gte=since))
        url = changelist_url("integrations.inboxmessage", status__exact=status, received_at__gte=_param(since))
        figures.append(StatusFigure(status, label, count, url, STATUS_VARIANT[status]))
    return figures


def oldest_pending() -> tuple[datetime, int] | None:
    """The longest-waiting pending message: the first entry of inbox_status_received for 'pending'."""
    return (
        InboxMessage.objects.filter(status=InboxStatus.PENDING)
        .order_by("received_at")
        .values_list("received_at", "pk")
        .first()
    )


def status_chart(statuses: list[StatusFigure]) -> str:
    """Chart.js data for unfold's bar chart: one bar per state."""
    return json.dumps(
        {
            "labels": [s.label for s in statuses],
            "datasets": [
                {
                    "label": "Messages received in the last 24 hours",
                    "data": [int(s.count) for s in statuses],
                    "backgroundColor": [VARIANT_COLOR[s.variant] for s in statuses],
                    "maxBarThickness": 36,
                }
            ],
        }
    )


def usage_chart(today) -> dict:
    first = today - timedelta(days=CHART_DAYS - 1)
    rows = {
        row["day"]: row
        for row in DailyUsage.objects.filter(day__gte=first, day__lte=today)
        .values("day")
        .annotate(requests=Sum("requests"), messages=Sum("messages"), rejected=Sum("rejected"))
        .order_by()
    }
    return {
        "data": json.dumps(usage_series(rows, first, CHART_DAYS)),
        "options": chart_options(y_title="per day", x_title="UTC day", legend=True),
    }


def integration_health(now: datetime) -> list[IntegrationHealth]:
    """Each integration's last message, today's requests against its cap, and its failed and
    waiting rows. One query for the integrations, one for their last messages (an entry of
    inbox_integration_received each), and one capped scan per state for the counts."""
    today = now.date()
    usage = DailyUsage.objects.filter(integration=OuterRef("pk"), day=today)
    integrations = list(
        Integration.objects.annotate(
            today_requests=Subquery(usage.values("requests")[:1]),
            today_rejected=Subquery(usage.values("rejected")[:1]),
        ).order_by("name")
    )
    latest = latest_received([i.pk for i in integrations])
    for integration in integrations:
        integration.last_received = latest.get(integration.pk)
    failed = per_integration(InboxStatus.FAILED)
    waiting = per_integration(InboxStatus.WAITING)
    rows = []
    for integration in integrations:
        pk = integration.pk
        inbox = "integrations.inboxmessage"
        requests = integration.today_requests or 0
        cap = integration.daily_cap
        rows.append(
            IntegrationHealth(
                integration=integration,
                url=reverse("admin:integrations_integration_change", args=[pk]),
                last_received=integration.last_received,
                last_received_ago=f"{duration(now - integration.last_received)} ago"
                if integration.last_received
                else "",
                requests=requests,
                cap=cap,
                percent=min(100, round(100 * requests / cap)) if cap else 0,
                failed=failed(pk),
                failed_url=changelist_url(inbox, integration__id__exact=pk, status__exact=InboxStatus.FAILED),
                waiting=waiting(pk),
                waiting_url=changelist_url(inbox, integration__id__exact=pk, status__exact=InboxStatus.WAITING),
                inbound=integration.kind_class.inbound,
                rejected=integration.today_rejected or 0,
                rejected_url=changelist_url(
                    "integrations.rejectedmessage",
                    integration__id__exact=pk,
                    received_at__gte=_param(now.replace(hour=0, minute=0, second=0, microsecond=0)),
                ),
            )
        )
    return rows


def per_integration(status: str):
    """Rows in `status` per integration, from at most COUNT_CAP + 1 of them (the newest, along
    inbox_status_received). Exact while the state holds fewer; past that every figure is a
    lower bound and says so ("312+")."""
    cap = admin_tools.COUNT_CAP
    ids = list(
        InboxMessage.objects.filter(status=status)
        .order_by("-received_at")
        .values_list("integration_id", flat=True)[: cap + 1]
    )
    capped = len(ids) > cap
    counts = Counter(ids[:cap])

    def count(pk: int) -> Count:
        value = counts.get(pk, 0)
        return Count(value, capped=capped)

    return count
