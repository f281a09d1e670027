"""Staff UI for survey campaigns: the campaign (reminders and autoresponders inline, its setup,
figures, weekly trend and split, Activate / Pause / Export buttons), dispatches with their
reasons, and responses with filters and CSV export; each contact's answers on their page.

Conventions as elsewhere: unfold's ModelAdmin, badges for states, buttons that ask first,
capped counts, figures from the raw counts (never a COUNT over responses per row).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display

from campaigns.loops.admin import AudienceFormField, DisplayOnlyFormSet, EventNamesField
from campaigns.surveys.admin_pages import figures_html, setup_html
from campaigns.surveys.export import responses_csv_response
from campaigns.surveys.models import (
    Autoresponder,
    Campaign,
    CampaignReminder,
    CampaignStatus,
    DispatchStatus,
    Reason,
    SurveyDispatch,
    SurveyResponse,
)
from campaigns.surveys.scales import SCALES
from campaigns.surveys.services import (
    MAX_REMINDERS,
    CampaignProblem,
    activation_problem,
    campaign_activate,
    campaign_pause,
    template_problem,
)
from campaigns.surveys.stats import figures_many
from common import clock
from common.admin_tools import EstimatedCountPaginator, confirm_page, confirmed, pretty_json, shorten
from common.ids import parse_pk
from contacts.admin.contacts import register_contact_inline
from contacts.models import Contact

STATUS_VARIANT = {
    CampaignStatus.DRAFT: "default",
    CampaignStatus.READY: "info",
    CampaignStatus.ACTIVE: "success",
    CampaignStatus.PAUSED: "warning",
}
DISPATCH_VARIANT = {
    DispatchStatus.SCHEDULED: "info",
    DispatchStatus.SENT: "success",
    DispatchStatus.RESPONDED: "success",
    DispatchStatus.SKIPPED: "default",
}
CATEGORY_VARIANT = {}
for _scale in SCALES.values():
    CATEGORY_VARIANT.update(dict(zip(_scale.names, ("success", "default", "danger"), strict=True)))


# --- the campaign --------------------------------------------------------------------------------
class CampaignForm(forms.ModelForm):
    trigger_events = EventNamesField(
        required=False, help_text="Track event names that send the survey, one per line (exact match)."
    )
    audience = AudienceFormField(
        required=False,
        help_text='Empty: everyone. {"match": "all" or "any", "conditions": [{"property": "country", "operator": '
        '"is", "value": "USA"}]}, at most 5 conditions, checked when the event comes in.',
    )

    class Meta:
        model = Campaign
        fields = (
            "name",
            "metric",
            "template",
            "question",
            "trigger_events",
            "integration",
            "contact_list",
            "reply_to",
            "audience",
            "not_surveyed_days",
            "sample_percent",
            "delay_value",
            "delay_unit",
            "throttle_days",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields.get("integration")
        if field is not None:
            # Only inbound integrations trigger surveys (the outbound kind sends to Segment).
            field.queryset = field.queryset.exclude(kind="segment_source")

    def clean_sample_percent(self):
        value = self.cleaned_data.get("sample_percent")
        if value is None or not 1 <= value <= 100:
            raise forms.ValidationError("a percent from 1 to 100 (100: every trigger)")
        return value

    def clean_not_surveyed_days(self):
        return self.cleaned_data.get("not_surveyed_days") or None

    def clean_throttle_days(self):
        return self.cleaned_data.get("throttle_days") or None

    def clean(self):
        data = super().clean()
        campaign = self.instance
        if campaign.pk and campaign.live and data.get("template") is not None:
            problem = template_problem(data["template"])
            if problem is not None:
                self.add_error("template", f"{problem.message} ({problem.code}); pause the campaign to change it")
        if campaign.pk and data.get("metric") and data["metric"] != campaign.metric and campaign.responses.exists():
            self.add_error("metric", "the campaign has responses on its scale; make a new campaign for another metric")
        return data


class ReminderFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        if len(kept) > MAX_REMINDERS:
            raise forms.ValidationError(f"At most {MAX_REMINDERS} reminders.")
        positions = [f.cleaned_data.get("position") for f in kept]
        if len(set(positions)) != len(positions):
            raise forms.ValidationError("Two reminders have the same position.")


class ReminderInline(TabularInline):
    model = CampaignReminder
    formset = ReminderFormSet
    extra = 0
    max_num = MAX_REMINDERS
    fields = ("position", "delay_value", "delay_unit", "template")
    ordering = ("position",)
    verbose_name_plural = (
        "reminders (each a delay after the survey email; only to those who have not answered, stopped by an answer "
        "or an unsubscribe)"
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("template")


class AutoresponderInline(TabularInline):
    model = Autoresponder
    extra = 0
    max_num = 3
    fields = ("kind", "template", "enabled")
    verbose_name_plural = (
        "autoresponders (a random 5–60 minutes after the answer; at most one per response: a detractor's or "
        "promoter's before the no-comment one)"
    )


@admin.register(Campaign)
class CampaignAdmin(ModelAdmin):
    form = CampaignForm
    inlines = (ReminderInline, AutoresponderInline)
    list_display = ("name", "metric", "status_badge", "triggers", "sent", "responses", "score")
    list_filter = ("status", "metric")
    search_fields = ("name",)
    list_select_related = ("template",)
    actions_detail = ("activate_one", "pause_one", "open_responses", "open_dispatches", "export_one")
    readonly_fields = ("setup", "figures", "status", "activated_at", "first_event_at", "created_at", "updated_at")
    fieldsets = (
        ("Setup", {"fields": ("setup",)}),
        (None, {"fields": ("name", "metric", "template", "question")}),
        ("Trigger", {"fields": ("trigger_events", "integration")}),
        ("Who", {"fields": ("audience", "not_surveyed_days", "contact_list", "reply_to")}),
        (
            "Schedule",
            {
                "fields": ("sample_percent", "delay_value", "delay_unit", "throttle_days"),
                "description": "Sample: the percent of triggers that get a survey, decided per message (a replay "
                "decides the same). Delay: after the event (0: at once). Throttle: no new survey in this campaign "
                "for N days after the last one. At most one survey per contact in 24 hours across all campaigns.",
            },
        ),
        ("Figures", {"fields": ("figures",)}),
        ("History", {"fields": ("status", "activated_at", "first_event_at", "created_at", "updated_at")}),
    )

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return [fs for fs in fieldsets if fs[0] not in ("Setup", "Figures", "History")]
        return fieldsets

    def get_changelist(self, request, **kwargs):
        from common.admin_tools import PageChangeList

        return PageChangeList

    def annotate_page(self, request, rows: list[Campaign]) -> None:
        found = figures_many(rows)
        for campaign in rows:
            campaign.figures_ = found[campaign.pk]

    @display(description="Status", ordering="status", label={s.value: v for s, v in STATUS_VARIANT.items()})
    def status_badge(self, campaign: Campaign) -> str:
        return campaign.status

    @display(description="Triggers")
    def triggers(self, campaign: Campaign) -> str:
        text = ", ".join(campaign.trigger_events or []) or "—"
        return format_html('<span class="sy-clip" title="{}">{}</span>', text, shorten(text, 48))

    @display(description="Sent")
    def sent(self, campaign: Campaign):
        return self._figure(campaign, "sent", "campaigns.surveydispatch")

    @display(description="Responses")
    def responses(self, campaign: Campaign):
        return self._figure(campaign, "responses", "campaigns.surveyresponse")

    @display(description="Score")
    def score(self, campaign: Campaign) -> str:
        figures = getattr(campaign, "figures_", None)
        return "—" if figures is None or figures.score is None else str(figures.score)

    def _figure(self, campaign: Campaign, name: str, app_model: str):
        from common.admin_tools import changelist_url, link

        figures = getattr(campaign, "figures_", None)
        value = getattr(figures, name, 0) if figures is not None else 0
        return link(changelist_url(app_model, campaign__id__exact=campaign.pk), value)

    @display(description="Setup")
    def setup(self, campaign: Campaign) -> str:
        if campaign.pk is None:
            return "—"
        problem = activation_problem(campaign) if not campaign.live else None
        return setup_html(campaign, problem)

    @display(description="Figures")
    def figures(self, campaign: Campaign) -> str:
        return figures_html(campaign) if campaign.pk else "—"

    def save_model(self, request, obj: Campaign, form, change: bool) -> None:
        obj.updated_at = clock.now()
        super().save_model(request, obj, form, change)

    # --- buttons ---------------------------------------------------------------------------------
    def _campaign(self, request: HttpRequest, object_id: str) -> Campaign:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        pk = parse_pk(str(object_id))
        return get_object_or_404(Campaign.objects.select_related("template"), pk=pk if pk is not None else 0)

    def _back(self, campaign: Campaign) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    @action(description="Activate", icon="play_arrow", url_path="activate", permissions=["change"])
    def activate_one(self, request: HttpRequest, object_id: str):
        campaign = self._campaign(request, object_id)
        if campaign.live:
            self.message_user(request, f"Already {campaign.status}; left as it was.", messages.WARNING)
            return self._back(campaign)
        problem = activation_problem(campaign)
        if problem is not None:
            self.message_user(request, f"Not activated ({problem.code}): {problem.message}.", messages.ERROR)
            return self._back(campaign)
        if not confirmed(request):
            return confirm_page(
                self,
                request,
                campaign,
                title=f"Activate {campaign}?",
                message="It becomes ready, and active at the first matching event: every track named "
                f"{', '.join(repr(n) for n in campaign.trigger_events)} then surveys its contact, by the rules of "
                "the campaign.",
                button="Yes, activate",
            )
        try:
            campaign = campaign_activate(campaign=campaign)
        except CampaignProblem as problem:
            self.message_user(request, f"Not activated ({problem.code}): {problem.message}.", messages.ERROR)
        else:
            self.message_user(request, f"Activated: {campaign.get_status_display()}.", messages.SUCCESS)
        return self._back(campaign)

    @action(description="Pause", icon="pause", url_path="pause", permissions=["change"])
    def pause_one(self, request: HttpRequest, object_id: str):
        campaign = self._campaign(request, object_id)
        if not campaign.live:
            self.message_user(request, f"It is {campaign.status}, not running; left as it was.", messages.WARNING)
            return self._back(campaign)
        if not confirmed(request):
            return confirm_page(
                self,
                request,
                campaign,
                title=f"Pause {campaign}?",
                message="No new surveys start; surveys and reminders that come due while it is paused are skipped "
                "(reason: paused). Answers to surveys already sent are still taken.",
                button="Yes, pause",
                danger=True,
            )
        campaign_pause(campaign=campaign)
        self.message_user(request, "Paused.", messages.SUCCESS)
        return self._back(campaign)

    @action(description="Responses", icon="reviews", url_path="responses", permissions=["view"])
    def open_responses(self, request: HttpRequest, object_id: str):
        campaign = self._campaign(request, object_id)
        url = reverse("admin:campaigns_surveyresponse_changelist")
        return HttpResponseRedirect(f"{url}?campaign__id__exact={campaign.pk}")

    @action(description="Dispatches", icon="outgoing_mail", url_path="dispatches", permissions=["view"])
    def open_dispatches(self, request: HttpRequest, object_id: str):
        campaign = self._campaign(request, object_id)
        url = reverse("admin:campaigns_surveydispatch_changelist")
        return HttpResponseRedirect(f"{url}?campaign__id__exact={campaign.pk}")

    @action(description="Export responses (CSV)", icon="download", url_path="export", permissions=["view"])
    def export_one(self, request: HttpRequest, object_id: str) -> HttpResponse:
        campaign = self._campaign(request, object_id)
        rows = SurveyResponse.objects.filter(campaign=campaign).order_by("-created_at", "-id")
        return responses_csv_response(rows, filename=f"survey-{campaign.pk}-responses.csv")


# --- dispatches -----------------------------------------------------------------------------------
class WentOutFilter(admin.SimpleListFilter):
    title = "surveyed"
    parameter_name = "surveyed"

    def lookups(self, request, model_admin):
        return [("yes", "sent or answered"), ("no", "scheduled or skipped")]

    def queryset(self, request, queryset):
        went = Q(status__in=(DispatchStatus.SENT, DispatchStatus.RESPONDED))
        if self.value() == "yes":
            return queryset.filter(went)
        if self.value() == "no":
            return queryset.exclude(went)
        return queryset


def _contact_cell(contact_id, label) -> str:
    if contact_id is None:
        return "—"
    url = reverse("admin:contacts_contact_change", args=[contact_id])
    return format_html('<a class="sy-link" href="{}">{}</a>', url, label)


def _contact_search(queryset, term: str):
    term = term.strip()
    if not term:
        return queryset, False
    contacts = Contact.objects.filter(Q(email=term.lower()) | Q(user_id=term)).values("pk")
    return queryset.filter(contact_id__in=contacts), False


@admin.register(SurveyDispatch)
class SurveyDispatchAdmin(ModelAdmin):
    list_display = ("id", "campaign", "who", "status_badge", "reason_badge", "short_note", "due_at", "sent_at")
    list_filter = ("status", "reason", WentOutFilter, "campaign")
    list_filter_submit = True
    list_select_related = ("campaign", "contact")
    search_fields = ("user_id",)
    search_help_text = "The contact's exact email or userId."
    ordering = ("-id",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    fieldsets = (
        (None, {"fields": ("campaign", "contact_link", "user_id", "status", "reason", "note")}),
        ("When", {"fields": ("event_at", "due_at", "sent_at", "responded_at", "created_at")}),
        ("Trigger", {"fields": ("trigger", "event_json")}),
        ("Links opened", {"fields": ("scanner", "opens")}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in SurveyDispatch._meta.fields] + ["contact_link", "event_json"]

    def has_add_permission(self, request) -> bool:
        return False

    def get_search_results(self, request, queryset, search_term):
        return _contact_search(queryset, search_term)

    @display(description="Contact", ordering="contact__email")
    def who(self, dispatch: SurveyDispatch) -> str:
        if dispatch.contact_id is None:
            return f"userId {dispatch.user_id}" if dispatch.user_id else "—"
        return _contact_cell(dispatch.contact_id, dispatch.contact)

    @display(description="Contact")
    def contact_link(self, dispatch: SurveyDispatch) -> str:
        return _contact_cell(dispatch.contact_id, dispatch.contact) if dispatch.contact_id else "—"

    @display(description="Status", ordering="status", label={s.value: v for s, v in DISPATCH_VARIANT.items()})
    def status_badge(self, dispatch: SurveyDispatch) -> str:
        return dispatch.status

    @display(description="Reason", ordering="reason", label={r.value: "warning" for r in Reason})
    def reason_badge(self, dispatch: SurveyDispatch) -> str:
        return dispatch.reason or "—"

    @display(description="Detail")
    def short_note(self, dispatch: SurveyDispatch) -> str:
        if not dispatch.note:
            return "—"
        return format_html('<span class="sy-clip" title="{}">{}</span>', dispatch.note, shorten(dispatch.note, 56))

    @display(description="Trigger event")
    def event_json(self, dispatch: SurveyDispatch) -> str:
        return pretty_json(dispatch.event) if dispatch.event else "—"


# --- responses ------------------------------------------------------------------------------------
class CategoryFilter(admin.SimpleListFilter):
    title = "category"
    parameter_name = "category"

    def lookups(self, request, model_admin):
        names = dict.fromkeys(name for scale in SCALES.values() for name in scale.names)
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        return queryset.filter(category=self.value()) if self.value() else queryset


class CommentFilter(admin.SimpleListFilter):
    title = "comment"
    parameter_name = "commented"

    def lookups(self, request, model_admin):
        return [("yes", "with a comment"), ("no", "without")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(comment="")
        if self.value() == "no":
            return queryset.filter(comment="")
        return queryset


@admin.register(SurveyResponse)
class SurveyResponseAdmin(ModelAdmin):
    list_display = ("created_at", "campaign", "who", "score", "category_badge", "short_comment", "via", "scanner")
    list_filter = ("campaign", CategoryFilter, CommentFilter, "scanner", "via")
    list_filter_submit = True
    list_select_related = ("campaign",)
    search_fields = ("email",)
    search_help_text = "The respondent's exact email or userId."
    ordering = ("-created_at", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    actions = ("export_csv",)
    fields = (
        "campaign",
        "dispatch_link",
        "contact_link",
        "email",
        "score",
        "category",
        "comment",
        "via",
        "scanner",
        "created_at",
        "updated_at",
    )

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_search_results(self, request, queryset, search_term):
        return _contact_search(queryset, search_term)

    @display(description="Respondent", ordering="email")
    def who(self, response: SurveyResponse) -> str:
        return _contact_cell(response.contact_id, response.email or f"contact {response.contact_id}")

    @display(description="Contact")
    def contact_link(self, response: SurveyResponse) -> str:
        return _contact_cell(response.contact_id, response.email or f"contact {response.contact_id}")

    @display(description="Survey")
    def dispatch_link(self, response: SurveyResponse) -> str:
        url = reverse("admin:campaigns_surveydispatch_change", args=[response.dispatch_id])
        return format_html('<a class="sy-link" href="{}">dispatch {}</a>', url, response.dispatch_id)

    @display(description="Category", ordering="category", label=CATEGORY_VARIANT)
    def category_badge(self, response: SurveyResponse) -> str:
        return response.category

    @display(description="Comment")
    def short_comment(self, response: SurveyResponse) -> str:
        if not response.comment:
            return "—"
        return format_html(
            '<span class="sy-wrap" title="{}">{}</span>', response.comment, shorten(response.comment, 80)
        )

    @admin.action(description="Export the selected responses (CSV)")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[SurveyResponse]) -> HttpResponse:
        return responses_csv_response(queryset.order_by("-created_at", "-id"), filename="survey-responses.csv")


class ContactResponseInline(TabularInline):
    """On the contact page: their survey answers, newest first."""

    model = SurveyResponse
    formset = DisplayOnlyFormSet
    fk_name = "contact"
    extra = 0
    can_delete = False
    fields = ("campaign", "score", "category", "comment", "created_at")
    readonly_fields = fields
    verbose_name_plural = "survey responses"
    tab = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("campaign").order_by("-created_at")


register_contact_inline(ContactResponseInline)
