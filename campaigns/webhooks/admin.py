"""Staff UI for webhooks: subscriptions, and the delivery log with each attempt and a Replay
button (asks first, says what it did)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import GenericTabularInline, ModelAdmin
from unfold.decorators import action, display

from campaigns.webhooks.api import secret_problem, url_problem
from campaigns.webhooks.models import Delivery, DeliveryStatus, WebhookEvent, WebhookSubscription
from campaigns.webhooks.services import deliveries_replay
from common import clock
from common.admin_tools import EstimatedCountPaginator, changelist_url, confirm_page, confirmed, link, shorten
from common.ids import parse_pk
from common.workqueue.admin import AttemptInline, WorkItemAdminMixin


class SubscriptionForm(forms.ModelForm):
    url = forms.URLField(max_length=1000, assume_scheme="https")
    events = forms.MultipleChoiceField(choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookSubscription
        fields = ("url", "secret", "events", "enabled")

    def clean_url(self):
        url = self.cleaned_data["url"]
        problem = url_problem(url)
        if problem:
            raise forms.ValidationError(problem)
        return url

    def clean_secret(self):
        secret = (self.cleaned_data.get("secret") or "").strip()
        problem = secret_problem(secret)
        if problem:
            raise forms.ValidationError(problem)
        return secret


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ModelAdmin):
    form = SubscriptionForm
    list_display = ("url", "event_list", "state", "disabled_reason", "deliveries_link")
    list_filter = ("enabled",)
    search_fields = ("url",)
    readonly_fields = ("disabled_reason", "created_at", "updated_at")

    def save_model(self, request, obj: WebhookSubscription, form, change: bool) -> None:
        if "enabled" in form.changed_data and obj.enabled:
            obj.disabled_reason = ""
        obj.updated_at = clock.now()
        super().save_model(request, obj, form, change)

    @display(description="Events")
    def event_list(self, subscription: WebhookSubscription) -> str:
        return ", ".join(subscription.events or []) or "—"

    @display(description="State", label={"enabled": "success", "disabled": "danger"})
    def state(self, subscription: WebhookSubscription) -> str:
        return "enabled" if subscription.enabled else "disabled"

    @display(description="Deliveries")
    def deliveries_link(self, subscription: WebhookSubscription) -> str:
        return link(changelist_url("campaigns.delivery", subscription__id__exact=subscription.pk), "log")


class DeliveryAttemptInline(GenericTabularInline, AttemptInline):
    verbose_name_plural = "attempts (with the receiver's answer)"


@admin.register(Delivery)
class DeliveryAdmin(WorkItemAdminMixin, ModelAdmin):
    list_display = ("id", "created_at", "kind", "event_type", "target", "status_badge", "status_code", "attempts")
    list_filter = ("status", "kind", "event_type", "subscription")
    list_filter_submit = True
    list_select_related = ("subscription",)
    ordering = ("-id",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    inlines = (DeliveryAttemptInline,)
    actions = ("replay",)
    actions_detail = ("replay_one",)
    fieldsets = (
        (None, {"fields": ("kind", "event_type", "url", "subscription", "notification", "status", "status_code")}),
        ("Message", {"fields": ("message_id", "payload", "created_at", "delivered_at")}),
        (
            "Queue",
            {"fields": ("queue_state", "next_attempt_at", "attempts", "last_error", "claimed_by", "finished_at")},
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Delivery._meta.fields] + ["queue_state"]

    def has_add_permission(self, request) -> bool:
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("run_again_now", None)  # Replay says what it does
        return actions

    @display(description="To")
    def target(self, delivery: Delivery) -> str:
        return format_html('<span class="sy-clip" title="{}">{}</span>', delivery.url, shorten(delivery.url, 48))

    @display(
        description="Status",
        ordering="status",
        label={DeliveryStatus.PENDING: "info", DeliveryStatus.DELIVERED: "success", DeliveryStatus.FAILED: "danger"},
    )
    def status_badge(self, delivery: Delivery) -> str:
        return delivery.status

    def _report(self, request, result, verb: str) -> None:
        text = f"{result.changed} {verb}"
        if result.running:
            text += f"; {result.running} being sent right now, left alone"
        self.message_user(request, text + ".", messages.SUCCESS if result.changed else messages.WARNING)

    @admin.action(description="Replay (send again now, same id and body)")
    def replay(self, request: HttpRequest, queryset) -> None:
        self._report(request, deliveries_replay(pks=queryset.values_list("pk", flat=True)), "queued to send again now")

    @action(description="Replay", icon="replay", url_path="replay", permissions=["change"])
    def replay_one(self, request: HttpRequest, object_id: str):
        pk = parse_pk(str(object_id))
        delivery = get_object_or_404(Delivery, pk=pk if pk is not None else 0)
        if not confirmed(request):
            return confirm_page(
                self,
                request,
                delivery,
                title=f"Send delivery {delivery.pk} again?",
                message=f"The {delivery.event_type} message goes to {delivery.url} again now, with the same "
                "webhook-id and body (signed anew), whatever happened before; the receiver can drop it as a repeat.",
                button="Yes, send again",
            )
        self._report(request, deliveries_replay(pks=[delivery.pk]), "queued to send again now")
        return HttpResponseRedirect(reverse("admin:campaigns_delivery_change", args=[delivery.pk]))
