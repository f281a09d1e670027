"""Staff UI for loops: the loop with its steps inline, its figures and chart, the dry run;
enrolments with filters; each contact's enrolments on the contact page.

Conventions as elsewhere in the admin: unfold's ModelAdmin, labels for states, row actions as
buttons on the page, figures from the per-day counters (one query for a whole changelist
page), no COUNT(*) over enrolments.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display

from campaigns.audience import OPERATORS, AudienceError, audience_clean
from campaigns.email.models import EmailSend
from campaigns.loops import validation
from campaigns.loops.admin_pages import dry_run_page, figures_html
from campaigns.loops.dryrun import DEFAULT_EVENTS, MAX_EVENTS, loop_dry_run
from campaigns.loops.models import Enrolment, EnrolmentStatus, Loop, LoopDay, LoopStep
from campaigns.loops.services import enrolments_end, loop_delete
from campaigns.loops.stats import FIGURES
from common import clock
from common.admin_tools import EstimatedCountPaginator
from common.ids import parse_pk
from contacts.admin.contacts import register_contact_inline
from contacts.models import Contact

STATUS_VARIANT = {
    EnrolmentStatus.ACTIVE: "info",
    EnrolmentStatus.COMPLETED: "success",
    EnrolmentStatus.EXITED: "warning",
    EnrolmentStatus.UNSUBSCRIBED: "danger",
}


# --- the loop form --------------------------------------------------------------------------------
class EventNamesField(forms.CharField):
    """Event names, one per line."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(value)
        return value

    def to_python(self, value):
        lines = [line.strip() for line in (value or "").splitlines()]
        try:
            return validation.event_names([line for line in lines if line])
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None


class AudienceFormField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 6, "class": "font-mono"})

    def prepare_value(self, value):
        if isinstance(value, dict):
            return json.dumps(value, indent=2, ensure_ascii=False) if value else ""
        return value

    def to_python(self, value):
        text = (value or "").strip()
        if not text:
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(f"not JSON: {error}") from None
        try:
            return audience_clean(data)
        except AudienceError as error:
            raise forms.ValidationError(str(error)) from None


class LoopForm(forms.ModelForm):
    trigger_events = EventNamesField(required=False, help_text="Event names that start the loop, one per line.")
    exit_events = EventNamesField(required=False, help_text="Event names that stop the remaining steps, one per line.")
    audience = AudienceFormField(
        required=False,
        help_text='Empty: everyone. {"match": "all" or "any", "conditions": [{"property": "plan", "operator": "is", '
        f'"value": "pro"}}]}}, at most 5 conditions; operators: {", ".join(OPERATORS)}.',
    )

    class Meta:
        model = Loop
        fields = (
            "name",
            "enabled",
            "trigger_events",
            "exit_events",
            "reentry",
            "reentry_days",
            "mailing_list",
            "audience",
            "late_policy",
            "late_after_minutes",
        )

    def clean(self):
        data = super().clean()
        errors = validation.loop_consistency(
            enabled=data.get("enabled", False),
            trigger_events=data.get("trigger_events") or [],
            exit_events=data.get("exit_events") or [],
            reentry=data.get("reentry", ""),
            reentry_days=data.get("reentry_days"),
            steps=0,
        )
        errors.pop("steps", None)  # the steps are the inline's to check
        for name, message in errors.items():
            self.add_error(name, message)
        if data.get("reentry") != "after_days":
            data["reentry_days"] = None
        return data


class StepFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        if self.instance.enabled and not kept:
            raise forms.ValidationError("An enabled loop needs at least one step.")
        positions = [f.cleaned_data.get("position") for f in kept]
        if len(set(positions)) != len(positions):
            raise forms.ValidationError("Two steps have the same position.")


class LoopStepInline(TabularInline):
    model = LoopStep
    formset = StepFormSet
    extra = 0
    fields = ("position", "delay_value", "delay_unit", "template")
    ordering = ("position",)
    verbose_name_plural = "steps (each delay counts from the step before; the first from the event)"

    def get_extra(self, request, obj=None, **kwargs) -> int:
        return 1 if obj is None else 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("template")


def _figure(name: str):
    days = LoopDay.objects.filter(loop=OuterRef("pk")).values("loop").annotate(n=Sum(name)).values("n")
    return Coalesce(Subquery(days, output_field=IntegerField()), 0)


@admin.register(Loop)
class LoopAdmin(ModelAdmin):
    form = LoopForm
    inlines = (LoopStepInline,)
    list_display = ("name", "state", "triggers", "step_count", *FIGURES)
    list_filter = ("enabled", "reentry")
    search_fields = ("name",)
    actions = ("enable", "disable")
    actions_detail = ("dry_run", "open_enrolments")
    readonly_fields = ("figures", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "enabled")}),
        ("Trigger", {"fields": ("trigger_events", "exit_events", "reentry", "reentry_days")}),
        (
            "Who",
            {
                "fields": ("mailing_list", "audience"),
                "description": "Checked when the event comes in; the list is checked again before each step.",
            },
        ),
        ("Late steps", {"fields": ("late_policy", "late_after_minutes"), "classes": ["collapse"]}),
        ("Figures", {"fields": ("figures",)}),
        ("History", {"fields": ("created_at", "updated_at"), "classes": ["collapse"]}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Loop]:
        steps = LoopStep.objects.filter(loop=OuterRef("pk")).values("loop").annotate(n=Count("id")).values("n")
        return (
            super()
            .get_queryset(request)
            .annotate(
                steps_n=Coalesce(Subquery(steps, output_field=IntegerField()), 0),
                **{f"{name}_n": _figure(name) for name in FIGURES},
            )
        )

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return [fs for fs in fieldsets if fs[0] not in ("Figures", "History")]
        return fieldsets

    @display(description="State", label={"enabled": "success", "disabled": "default"}, ordering="enabled")
    def state(self, loop: Loop) -> str:
        return "enabled" if loop.enabled else "disabled"

    @display(description="Triggers")
    def triggers(self, loop: Loop) -> str:
        return ", ".join(loop.trigger_events) or "—"

    @display(description="Steps", ordering="steps_n")
    def step_count(self, loop: Loop) -> int:
        return loop.steps_n

    @display(description="Started", ordering="started_n")
    def started(self, loop: Loop) -> int:
        return loop.started_n

    @display(description="Emailed", ordering="emailed_n")
    def emailed(self, loop: Loop) -> int:
        return loop.emailed_n

    @display(description="Exited", ordering="exited_n")
    def exited(self, loop: Loop) -> int:
        return loop.exited_n

    @display(description="Unsubscribed", ordering="unsubscribed_n")
    def unsubscribed(self, loop: Loop) -> int:
        return loop.unsubscribed_n

    @display(description="Figures")
    def figures(self, loop: Loop) -> str:
        if loop.pk is None:
            return "—"
        totals = {name: getattr(loop, f"{name}_n", 0) for name in FIGURES}
        return figures_html(loop.pk, totals)

    def save_model(self, request, obj: Loop, form, change: bool) -> None:
        obj.updated_at = clock.now()
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj: Loop) -> None:
        loop_delete(loop=obj)

    def delete_queryset(self, request, queryset: QuerySet[Loop]) -> None:
        for loop in queryset:
            loop_delete(loop=loop)

    # --- actions --------------------------------------------------------------------------------
    @admin.action(description="Enable")
    def enable(self, request: HttpRequest, queryset: QuerySet[Loop]) -> None:
        without = [loop.name for loop in queryset if not loop.trigger_events or not loop.steps.exists()]
        count = queryset.exclude(name__in=without).update(enabled=True, updated_at=clock.now())
        self.message_user(request, f"Enabled {count} loop(s).", messages.SUCCESS)
        if without:
            self.message_user(
                request, f"Not enabled (no trigger event or no step): {', '.join(without)}.", messages.WARNING
            )

    @admin.action(description="Disable (due steps are skipped until enabled again)")
    def disable(self, request: HttpRequest, queryset: QuerySet[Loop]) -> None:
        count = queryset.update(enabled=False, updated_at=clock.now())
        self.message_user(request, f"Disabled {count} loop(s); nothing starts, and due steps are skipped.")

    @action(description="Dry run", icon="science", url_path="dry-run", permissions=["view"])
    def dry_run(self, request: HttpRequest, object_id: str) -> HttpResponse:
        loop = self._loop(request, object_id)
        try:
            limit = max(1, min(int(request.GET.get("n", DEFAULT_EVENTS)), MAX_EVENTS))
        except ValueError:
            limit = DEFAULT_EVENTS
        rows = loop_dry_run(loop=loop, limit=limit)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Dry run of {loop.name}",
            "opts": self.model._meta,
            "original": loop,
            "loop": loop,
            "rows": rows,
            "starts": sum(1 for row in rows if row.starts),
            "limit": limit,
            "max": MAX_EVENTS,
            "names": ", ".join(repr(n) for n in loop.trigger_events) or "(no trigger events)",
            "back_url": reverse("admin:campaigns_loop_change", args=[loop.pk]),
        }
        return HttpResponse(dry_run_page(request, context))

    @action(description="Enrolments", icon="group", url_path="enrolments", permissions=["view"])
    def open_enrolments(self, request: HttpRequest, object_id: str) -> HttpResponse:
        loop = self._loop(request, object_id)
        return HttpResponseRedirect(reverse("admin:campaigns_enrolment_changelist") + f"?loop__id__exact={loop.pk}")

    def _loop(self, request: HttpRequest, object_id: str) -> Loop:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        pk = parse_pk(object_id)
        return get_object_or_404(Loop, pk=pk if pk is not None else 0)


# --- enrolments -----------------------------------------------------------------------------------
def _step_text(enrolment: Enrolment) -> str:
    if enrolment.status != EnrolmentStatus.ACTIVE or enrolment.next_due_at is None:
        return f"ended after step {enrolment.position}" if enrolment.position else "—"
    return f"step {enrolment.position}, due {enrolment.next_due_at:%Y-%m-%d %H:%M} UTC"


def _send_url(pk: int) -> str:
    try:
        return reverse("admin:campaigns_emailsend_change", args=[pk])
    except NoReverseMatch:
        return "#"


@admin.register(Enrolment)
class EnrolmentAdmin(ModelAdmin):
    list_display = ("id", "loop", "contact_link", "state", "next_step", "emails_sent", "started_at", "reason")
    list_filter = ("status", "loop")
    list_select_related = ("loop", "contact")
    search_fields = ("contact__email",)
    search_help_text = "The contact's exact email or userId."
    ordering = ("-id",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    actions = ("exit",)
    fieldsets = (
        (None, {"fields": ("loop", "contact", "status", "reason", "next_step", "emails_sent")}),
        ("Trigger", {"fields": ("trigger_event_id", "event_at", "event_json")}),
        ("Emails", {"fields": ("emails",)}),
        ("Times", {"fields": ("started_at", "ended_at")}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Enrolment._meta.fields] + ["next_step", "event_json", "emails"]

    def has_add_permission(self, request) -> bool:
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        contacts = Contact.objects.filter(email=term.lower()) | Contact.objects.filter(user_id=term)
        return queryset.filter(contact_id__in=contacts.values("pk")), False

    @display(description="Contact", ordering="contact__email")
    def contact_link(self, enrolment: Enrolment) -> str:
        if enrolment.contact_id is None:
            return "erased"
        url = reverse("admin:contacts_contact_change", args=[enrolment.contact_id])
        return format_html('<a class="sy-link" href="{}">{}</a>', url, enrolment.contact)

    @display(description="Status", label={s.value: v for s, v in STATUS_VARIANT.items()}, ordering="status")
    def state(self, enrolment: Enrolment) -> str:
        return enrolment.status

    @display(description="Next step")
    def next_step(self, enrolment: Enrolment) -> str:
        return _step_text(enrolment)

    @display(description="Trigger event (as templates see it)")
    def event_json(self, enrolment: Enrolment) -> str:
        from common.admin_tools import pretty_json

        return pretty_json(enrolment.event) if enrolment.event else "—"

    @display(description="The loop's emails to this contact")
    def emails(self, enrolment: Enrolment) -> str:
        keys = [enrolment.step_key(p) for p in range(1, max(enrolment.position, 1) + 1)]
        sends = list(EmailSend.objects.filter(key__in=keys).order_by("due_at").select_related("template"))
        if not sends:
            return "—"
        rows = format_html_join(
            "",
            '<tr><td><a class="sy-link" href="{}">step {}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    _send_url(s.pk),
                    s.key.rsplit(":", 1)[-1],
                    s.template,
                    f"{s.due_at:%Y-%m-%d %H:%M}",
                    s.status,
                    s.reason or "",
                )
                for s in sends
            ),
        )
        return format_html(
            '<table class="sy-table"><thead><tr><th>Step</th><th>Template</th><th>Due (UTC)</th><th>Status</th>'
            "<th>Reason</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.action(description="Exit (stop their remaining steps)")
    def exit(self, request: HttpRequest, queryset: QuerySet[Enrolment]) -> None:
        count = enrolments_end(
            queryset=queryset, status=EnrolmentStatus.EXITED, reason=f"exited by {request.user.get_username()}"
        )
        self.message_user(request, f"Stopped {count} enrolment(s); the others had already ended.")


class DisplayOnlyFormSet(forms.BaseInlineFormSet):
    """Rows to read, not to edit: saving the contact neither needs nor reads this inline's
    forms, so a save posted without them (a script, an older page) still goes through."""

    def is_valid(self) -> bool:
        return True

    def save(self, commit: bool = True) -> list:
        self.new_objects, self.changed_objects, self.deleted_objects = [], [], []
        return []


class ContactEnrolmentInline(TabularInline):
    """On the contact page: the contact's loops, newest first, with the next due step."""

    model = Enrolment
    formset = DisplayOnlyFormSet
    fk_name = "contact"
    extra = 0
    can_delete = False
    fields = ("loop_link", "status", "next_step", "emails_sent", "started_at", "reason")
    readonly_fields = fields
    verbose_name_plural = "loop enrolments"
    tab = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("loop").order_by("-started_at")

    @display(description="Loop")
    def loop_link(self, enrolment: Enrolment) -> str:
        url = reverse("admin:campaigns_enrolment_change", args=[enrolment.pk])
        return format_html('<a class="sy-link" href="{}">{}</a>', url, enrolment.loop.name)

    @display(description="Next step")
    def next_step(self, enrolment: Enrolment) -> str:
        return _step_text(enrolment)


register_contact_inline(ContactEnrolmentInline)
