"""Staff UI for email: templates (preview, test send), the send log, and ESP events.

Conventions as elsewhere: unfold's ModelAdmin, badges for states, single-row actions as buttons
on the row's page, no COUNT(*) over the send log and no query per row.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import GenericTabularInline, ModelAdmin
from unfold.decorators import action, display

from campaigns.email.models import EmailEvent, EmailSend, EmailTemplate, SendStatus
from campaigns.email.rendering import TemplateError, template_errors
from campaigns.email.services import (
    email_preview,
    email_send_test,
    email_sends_retry,
    email_template_save,
    retryable,
)
from common.admin_tools import EstimatedCountPaginator, pretty_json
from common.ids import parse_pk
from common.workqueue.admin import AttemptInline, WorkItemAdminMixin
from contacts.models import Contact

STATUS_VARIANT = {
    SendStatus.SCHEDULED: "info",
    SendStatus.SENT: "success",
    SendStatus.SKIPPED: "default",
    SendStatus.FAILED: "danger",
    SendStatus.BOUNCED: "warning",
    SendStatus.COMPLAINED: "danger",
}


def _short(text: str, length: int = 60) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= length else text[: length - 1] + "…"


def _contact_named(text: str) -> Contact | None:
    """A contact by id or exact email, as staff type it."""
    text = (text or "").strip()
    if not text:
        return None
    pk = parse_pk(text)
    query = Q(pk=pk) if pk is not None else Q(email=text.lower())
    return Contact.objects.filter(query).first()


# --- templates ---------------------------------------------------------------------------------
class EmailTemplateForm(forms.ModelForm):
    logo_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text=EmailTemplate._meta.get_field("logo_url").help_text,
    )

    class Meta:
        model = EmailTemplate
        fields = ("name", "subject", "html", "text", "transactional", "logo_url")

    def clean(self):
        data = super().clean()
        for field, error in template_errors(
            subject=data.get("subject") or "", html=data.get("html") or "", text=data.get("text") or ""
        ).items():
            self.add_error(field, error)
        return data


@admin.register(EmailTemplate)
class EmailTemplateAdmin(ModelAdmin):
    form = EmailTemplateForm
    list_display = ("name", "subject_line", "kind", "logo", "updated_at")
    search_fields = ("name", "subject")
    ordering = ("name",)
    actions_detail = ("preview_one", "send_test_one")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "subject", "transactional", "logo_url")}),
        (
            "Body",
            {
                "fields": ("html", "text"),
                "description": "Django template syntax with contact and event: {{ contact.first_name }}, "
                "{{ contact.properties.favoriteColor }}, {{ event.properties.order_id }}. An HTML fragment goes "
                "into the email layout (logo, width, unsubscribe link); a whole document is sent as written, "
                "with the unsubscribe link added when it has no {{ unsubscribe_url }}.",
            },
        ),
        ("Times", {"fields": ("created_at", "updated_at")}),
    )

    def save_model(self, request: HttpRequest, obj: EmailTemplate, form, change: bool) -> None:
        email_template_save(template=obj, **{name: form.cleaned_data[name] for name in EmailTemplateForm.Meta.fields})

    @display(description="Subject")
    def subject_line(self, template: EmailTemplate) -> str:
        return _short(template.subject, 50)

    @display(description="Kind", label={"transactional": "info", "marketing": "success"})
    def kind(self, template: EmailTemplate) -> str:
        return "transactional" if template.transactional else "marketing"

    @display(description="Logo", boolean=True)
    def logo(self, template: EmailTemplate) -> bool:
        return bool(template.logo_url)

    # --- preview and test send ---------------------------------------------------------------------
    def _template(self, object_id: str) -> EmailTemplate:
        pk = parse_pk(str(object_id))
        return get_object_or_404(EmailTemplate, pk=pk if pk is not None else 0)

    @action(description="Preview", icon="preview", url_path="preview")
    def preview_one(self, request: HttpRequest, object_id: str):
        template = self._template(object_id)
        who = request.GET.get("contact", "")
        contact = _contact_named(who) if who else Contact.objects.order_by("-pk").first()
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview: {template}",
            "opts": self.model._meta,
            "original": template,
            "template": template,
            "contact": contact,
            "who": who,
            "missing": bool(who) and contact is None,
        }
        try:
            context["preview"] = email_preview(template=template, contact=contact)
        except TemplateError as error:
            context["error"] = str(error)
        return TemplateResponse(request, "email/admin/preview.html", context)

    @action(description="Send test", icon="send", url_path="send-test", permissions=["change"])
    def send_test_one(self, request: HttpRequest, object_id: str):
        template = self._template(object_id)
        to = (request.POST.get("to") or request.user.email or "").strip()
        who = (request.POST.get("contact") or "").strip()
        errors = []
        if request.method == "POST":
            contact = _contact_named(who) if who else None
            if who and contact is None:
                errors.append(f"No contact with the id or email {who!r}.")
            try:
                forms.EmailField().clean(to)
            except ValidationError:
                errors.append("Give the staff address to send the test to.")
            if not errors:
                try:
                    send = email_send_test(
                        template=template, contact=contact, to=to, actor=f"admin:{request.user.get_username()}"
                    )
                except TemplateError as error:
                    errors.append(f"Not sent: template error: {error}")
                else:
                    if send.status == SendStatus.SENT:
                        self.message_user(request, f"Test sent to {to}: {send.subject!r}.", messages.SUCCESS)
                    else:
                        self.message_user(request, f"The test to {to} failed: {send.reason}", messages.ERROR)
                    return HttpResponseRedirect(reverse("admin:campaigns_emailtemplate_change", args=[template.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Send a test of {template}",
            "opts": self.model._meta,
            "original": template,
            "template": template,
            "to": to,
            "who": who,
            "errors": errors,
        }
        return TemplateResponse(request, "email/admin/send_test.html", context)


# --- the send log ------------------------------------------------------------------------------
class SendAttemptInline(GenericTabularInline, AttemptInline):
    """Each attempt with the server's answer ("250 2.0.0 Ok: queued as …") or its error."""

    verbose_name_plural = "attempts (with the server's answer)"


@admin.register(EmailSend)
class EmailSendAdmin(WorkItemAdminMixin, ModelAdmin):
    list_display = ("id", "to", "template", "purpose", "status_badge", "short_reason", "due_at", "sent_at", "attempts")
    list_display_links = ("id", "to")
    list_filter = ("status", "purpose", "template")
    list_filter_submit = True
    list_fullwidth = True
    search_fields = ("to",)
    search_help_text = "An exact address, or a send id."
    list_select_related = ("template",)
    ordering = ("-id",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan the log once per filter choice
    list_per_page = 50
    inlines = (SendAttemptInline,)
    actions = ("retry_failed",)
    actions_detail = ("retry_one",)
    fieldsets = (
        (None, {"fields": ("to", "contact_link", "template", "purpose", "status", "reason", "origin")}),
        ("When", {"fields": ("due_at", "sent_at", "late_policy", "late_after_minutes", "created_at")}),
        ("Message", {"fields": ("subject", "message_id", "provider_id", "transactional", "reply_to", "context_json")}),
        (
            "Queue",
            {
                "fields": (
                    "queue_state",
                    "next_attempt_at",
                    "attempts",
                    "last_error",
                    "send_started_at",
                    "rate_window",
                    "claimed_by",
                    "claimed_at",
                    "finished_at",
                    "unsubscribed_at",
                    "key",
                )
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in EmailSend._meta.fields] + ["contact_link", "context_json", "queue_state"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        # "Run again now" would resend a sent email: only failed sends are retried, by retry_failed.
        actions.pop("run_again_now", None)
        return actions

    def get_search_results(self, request, queryset, search_term):
        """Exact matches only (the address is stored lowercased), so each is one index lookup."""
        term = search_term.strip()
        if not term:
            return queryset, False
        query = Q(to=term.lower())
        pk = parse_pk(term)
        if pk is not None:
            query |= Q(pk=pk)
        return queryset.filter(query), False

    @display(description="Status", ordering="status", label=STATUS_VARIANT)
    def status_badge(self, send: EmailSend) -> str:
        return send.status

    @display(description="Reason")
    def short_reason(self, send: EmailSend) -> str:
        if not send.reason:
            return "—"
        return format_html('<span title="{}">{}</span>', send.reason, _short(send.reason, 48))

    @display(description="Contact")
    def contact_link(self, send: EmailSend) -> str:
        if send.contact_id is None:
            return "— (staff address, or erased)"
        url = reverse("admin:contacts_contact_change", args=[send.contact_id])
        return format_html('<a href="{}">contact {}</a>', url, send.contact_id)

    @display(description="Event (what the template saw)")
    def context_json(self, send: EmailSend) -> str:
        return pretty_json(send.context)

    @admin.action(description="Retry failed sends")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[EmailSend]) -> None:
        result, other = email_sends_retry(pks=queryset.values_list("pk", flat=True))
        text = f"{result.changed} failed send(s) queued to send again now"
        if result.running:
            text += f"; {result.running} being sent right now, left alone"
        if other:
            text += f"; {other} not failed (sent, skipped or scheduled), left alone"
        self.message_user(request, text + ".", messages.SUCCESS if result.changed else messages.WARNING)

    @action(description="Retry", icon="replay", url_path="retry", permissions=["change"])
    def retry_one(self, request: HttpRequest, object_id: str):
        pk = parse_pk(str(object_id))
        send = get_object_or_404(EmailSend, pk=pk if pk is not None else 0)
        if not EmailSend.objects.filter(retryable(), pk=send.pk).exists():
            self.message_user(request, f"Only failed sends are retried; this one is {send.status}.", messages.WARNING)
        elif request.method != "POST":
            context = {
                **self.admin_site.each_context(request),
                "title": f"Send {send} again?",
                "opts": self.model._meta,
                "original": send,
                "send": send,
            }
            return TemplateResponse(request, "email/admin/retry.html", context)
        else:
            result, _ = email_sends_retry(pks=[send.pk])
            if result.changed:
                self.message_user(request, "Queued to send again now.", messages.SUCCESS)
            else:
                self.message_user(request, "It is being sent right now; left alone.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:campaigns_emailsend_change", args=[send.pk]))


# --- ESP events ------------------------------------------------------------------------------------
@admin.register(EmailEvent)
class EmailEventAdmin(ModelAdmin):
    list_display = ("received_at", "kind_badge", "recipient", "esp", "send_link", "suppressed", "short_detail")
    list_filter = ("kind", "esp", "suppressed")
    search_fields = ("recipient",)
    search_help_text = "An exact address."
    ordering = ("-received_at",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in EmailEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().lower()
        return (queryset.filter(recipient=term), False) if term else (queryset, False)

    @display(
        description="Kind",
        ordering="kind",
        label={"hard_bounce": "danger", "soft_bounce": "warning", "complaint": "danger", "unsubscribe": "default"},
    )
    def kind_badge(self, event: EmailEvent) -> str:
        return event.kind

    @display(description="Send")
    def send_link(self, event: EmailEvent) -> str:
        if event.send_id is None:
            return "—"
        url = reverse("admin:campaigns_emailsend_change", args=[event.send_id])
        return format_html('<a href="{}">send {}</a>', url, event.send_id)

    @display(description="Answer")
    def short_detail(self, event: EmailEvent) -> str:
        return _short(event.mta_response or event.description, 60) or "—"
