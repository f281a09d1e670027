"""Contacts: the list, the change page with its inlines, and the actions (unsubscribe, erase, CSV)."""

from __future__ import annotations

import csv
import io
import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Prefetch, Q, QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from common.admin_tools import EstimatedCountPaginator, pretty_json
from contacts.admin.filters import AudienceFilter, HasPropertyFilter, MailingListFilter
from contacts.models import (
    AudienceMembership,
    Contact,
    ContactEvent,
    ContactIdentity,
    ListMembership,
    PropertyDefinition,
)
from contacts.services import STAFF_FIELDS, contact_create, contact_erase, contact_unsubscribe, contact_update

TIMELINE_SIZE = 20
ERASE_LIMIT = 500


# --- contacts -------------------------------------------------------------------------------------
class ContactForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = ["email", "user_id", "first_name", "last_name", "phone"]
        help_texts = {
            "email": "Stored lowercase; unique.",
            "user_id": "The sender's userId; unique.",
        }

    def clean_email(self) -> str | None:
        email = (self.cleaned_data.get("email") or "").strip().lower()
        if email and "@" not in email:
            raise forms.ValidationError("Enter an email address (it needs an @).")
        return email or None

    def clean_user_id(self) -> str | None:
        return (self.cleaned_data.get("user_id") or "").strip() or None


class MembershipInline(admin.TabularInline):
    model = ListMembership
    extra = 0
    fields = ("mailing_list", "subscribed", "updated_at")
    readonly_fields = ("updated_at",)
    autocomplete_fields = ("mailing_list",)
    verbose_name_plural = "mailing list memberships"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("mailing_list")


class AudienceInline(admin.TabularInline):
    model = AudienceMembership
    extra = 0
    can_delete = False
    fields = ("key", "member", "entered_at", "exited_at")
    readonly_fields = fields
    verbose_name_plural = "Engage audiences"

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class IdentityInline(admin.TabularInline):
    model = ContactIdentity
    extra = 0
    can_delete = False
    fields = ("anonymous_id", "created_at")
    readonly_fields = fields
    verbose_name_plural = "other ids (anonymousIds and merged ids)"

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    form = ContactForm
    list_display = ("__str__", "user_id", "first_name", "last_name", "subscribed", "source", "created_at")
    list_filter = ("subscribed", MailingListFilter, AudienceFilter, HasPropertyFilter)
    search_fields = ("email", "user_id", "first_name", "last_name")
    search_help_text = "Email (or its beginning), exact userId, or first and/or last name."
    list_select_related = ("source",)
    ordering = ("-created_at",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan the table once per filter choice
    list_per_page = 50
    inlines = (MembershipInline, AudienceInline, IdentityInline)
    actions = ("unsubscribe", "erase", "export_csv")
    readonly_fields = (
        "subscribed",
        "subscription_changed_at",
        "subscription_reason",
        "properties_table",
        "raw_traits_json",
        "address_json",
        "source",
        "last_seen_at",
        "created_at",
        "updated_at",
        "timeline",
    )
    fieldsets = (
        (None, {"fields": ("email", "user_id", "first_name", "last_name", "phone")}),
        (
            "Subscription",
            {
                "fields": ("subscribed", "subscription_changed_at", "subscription_reason"),
                "description": "Change it with the Unsubscribe action or the API, so suppressions stay in step.",
            },
        ),
        ("Properties", {"fields": ("properties_table", "raw_traits_json", "address_json")}),
        ("Latest events", {"fields": ("timeline",)}),
        ("Record", {"fields": ("source", "last_seen_at", "created_at", "updated_at")}),
    )

    def get_search_results(self, request, queryset, search_term):
        """Each form of term is an indexed lookup: email prefix, exact userId, names."""
        term = search_term.strip()
        if not term:
            return queryset, False
        query = Q(email__startswith=term.lower()) | Q(user_id=term)
        words = term.split()
        if len(words) == 2:
            # Exact matches in the usual spellings, not iexact: UPPER() would defeat the index.
            first, last = words
            query |= Q(
                first_name__in={first, first.lower(), first.capitalize()},
                last_name__in={last, last.lower(), last.capitalize()},
            )
        elif len(words) == 1 and "@" not in term:
            variants = {term, term.lower(), term.capitalize()}
            query |= Q(last_name__in=variants) | Q(first_name__in=variants)
        return queryset.filter(query), False

    def save_model(self, request, obj, form, change):
        """Through the same services as the API: each changed field is stamped now, so a Segment
        message dated before the edit cannot overwrite it."""
        changed = {name: form.cleaned_data[name] for name in form.changed_data if name in STAFF_FIELDS}
        actor = f"admin:{request.user.get_username()}"[:100]
        if change:
            contact_update(contact=obj, actor=actor, **changed)
        else:
            created = contact_create(actor=actor, **changed)
            obj.pk, obj._state.adding = created.pk, False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Removing a person goes through Erase, which suppresses them and leaves a record.
        return False

    @admin.display(description="Properties")
    def properties_table(self, contact: Contact) -> str:
        if not contact.properties:
            return "—"
        types = dict(PropertyDefinition.objects.filter(name__in=contact.properties).values_list("name", "type"))
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    name,
                    types.get(name, "?"),
                    ", ".join(map(str, value))
                    if isinstance(value, list)
                    else json.dumps(value, ensure_ascii=False)
                    if not isinstance(value, str)
                    else value,
                    contact.stamps.get(name, "")[:19].replace("T", " "),
                )
                for name, value in sorted(contact.properties.items())
            ),
        )
        return format_html(
            '<table class="sy-table"><thead><tr><th>Name</th><th>Type</th><th>Value</th><th>Set at (UTC)</th>'
            "</tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Traits kept without a definition")
    def raw_traits_json(self, contact: Contact) -> str:
        return pretty_json(contact.raw_traits) if contact.raw_traits else "—"

    @admin.display(description="Address")
    def address_json(self, contact: Contact) -> str:
        return pretty_json(contact.address) if contact.address else "—"

    @admin.display(description="Timeline")
    def timeline(self, contact: Contact) -> str:
        if contact.pk is None:
            return "—"
        events = list(
            ContactEvent.objects.filter(contact=contact)
            .select_related("integration")
            .order_by("-timestamp")[: TIMELINE_SIZE + 1]
        )
        url = reverse("admin:contacts_contactevent_changelist") + "?" + urlencode({"contact__id__exact": contact.pk})
        return render_to_string(
            "admin/contacts/contact/timeline.html",
            {"events": events[:TIMELINE_SIZE], "more": len(events) > TIMELINE_SIZE, "all_url": url},
        )

    # --- actions --------------------------------------------------------------------------------
    @admin.action(description="Unsubscribe (and suppress their emails)")
    def unsubscribe(self, request: HttpRequest, queryset: QuerySet[Contact]) -> None:
        count = contact_unsubscribe(
            contacts=queryset.select_related(None).only("pk"),
            reason=f"unsubscribed by {request.user.get_username()} in the admin",
        )
        self.message_user(request, f"Unsubscribed {count} contact(s); the rest were already unsubscribed.")

    @admin.action(description="Erase (GDPR: delete personal data and suppress)")
    def erase(self, request: HttpRequest, queryset: QuerySet[Contact]):
        selected = list(queryset.order_by("pk")[: ERASE_LIMIT + 1])
        if len(selected) > ERASE_LIMIT:
            self.message_user(
                request, f"Erase at most {ERASE_LIMIT} contacts at a time; use the API for more.", messages.ERROR
            )
            return None
        if request.POST.get("confirm") == "yes":
            username = request.user.get_username()
            events = 0
            for contact in selected:
                events += contact_erase(contact=contact, requested_by=f"admin:{username}"[:100]).events_deleted
            self.message_user(
                request,
                f"Erased {len(selected)} contact(s) and {events} event(s); their emails and userIds are suppressed.",
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Erase contacts?",
            "contacts": selected,
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
            "event_count": ContactEvent.objects.filter(contact__in=selected).count(),
        }
        return TemplateResponse(request, "admin/contacts/contact/erase_confirmation.html", context)

    @admin.action(description="Export CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Contact]) -> StreamingHttpResponse:
        lists = Prefetch(
            "memberships",
            queryset=ListMembership.objects.filter(subscribed=True).select_related("mailing_list"),
            to_attr="subscribed_lists",
        )
        rows = queryset.order_by("pk").prefetch_related(lists).iterator(chunk_size=2000)
        header = [
            "id",
            "email",
            "user_id",
            "first_name",
            "last_name",
            "subscribed",
            "mailing_lists",
            "properties",
            "created_at",
        ]

        def lines():
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(header)
            for contact in rows:
                writer.writerow(
                    [
                        contact.pk,
                        contact.email or "",
                        contact.user_id or "",
                        contact.first_name,
                        contact.last_name,
                        "true" if contact.subscribed else "false",
                        " ".join(m.mailing_list.list_id for m in contact.subscribed_lists),
                        json.dumps(contact.properties, ensure_ascii=False, sort_keys=True),
                        contact.created_at.isoformat(),
                    ]
                )
                if buffer.tell() > 64_000:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
            yield buffer.getvalue()

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="contacts-{timezone.now():%Y%m%d-%H%M}.csv"'
        return response
