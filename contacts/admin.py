"""Staff UI for contacts, their properties, lists, suppressions and erasures.

Built for a million contacts: no full COUNT(*), exact or prefix searches that hit indexes,
EXISTS filters, and the page's related rows fetched in bulk.
"""

from __future__ import annotations

import csv
import io
import json
import re

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from common.admin_tools import EstimatedCountPaginator, pretty_json
from contacts.admin_filters import AudienceFilter, HasPropertyFilter, MailingListFilter
from contacts.models import (
    AudienceMembership,
    Contact,
    ContactEvent,
    ContactIdentity,
    ErasureRecord,
    ListMembership,
    MailingList,
    PropertyDefinition,
    Suppression,
    SuppressionReason,
)
from contacts.services import contact_erase, contact_unsubscribe, email_md5, suppressions_add

TIMELINE_SIZE = 20
ERASE_LIMIT = 500
MD5_RE = re.compile(r"^[0-9a-fA-F]{32}$")


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
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)

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


@admin.register(ContactEvent)
class ContactEventAdmin(admin.ModelAdmin):
    list_display = ("timestamp", "contact", "type", "name", "integration")
    list_filter = ("type", "integration")
    search_fields = ("=name",)
    search_help_text = "Exact event name."
    list_select_related = ("contact", "integration")
    raw_id_fields = ("contact",)
    ordering = ("-timestamp",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan the table once per filter choice
    fields = ("contact", "type", "name", "timestamp", "integration", "inbox_message_id", "properties_json")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Properties")
    def properties_json(self, event: ContactEvent) -> str:
        return pretty_json(event.properties)


# --- definitions and lists --------------------------------------------------------------------------
@admin.register(PropertyDefinition)
class PropertyDefinitionAdmin(admin.ModelAdmin):
    list_display = ("name", "type", "source", "description", "created_at")
    list_filter = ("type", "source")
    search_fields = ("name",)

    def get_readonly_fields(self, request, obj=None):
        # Stored values were checked against this name and type; changing them would orphan them.
        return ("name", "type", "source", "created_at") if obj else ("source", "created_at")

    def get_changeform_initial_data(self, request):
        return {**super().get_changeform_initial_data(request), "source": "staff"}


@admin.register(MailingList)
class MailingListAdmin(admin.ModelAdmin):
    list_display = ("name", "list_id", "subscribers", "description", "created_at")
    search_fields = ("name", "list_id")
    readonly_fields = ("created_at",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(subscriber_count=Count("memberships", filter=Q(memberships__subscribed=True)))
        )

    @admin.display(description="Subscribed members", ordering="subscriber_count")
    def subscribers(self, mailing_list: MailingList) -> str:
        url = reverse("admin:contacts_contact_changelist") + "?" + urlencode({"list": mailing_list.pk})
        return format_html('<a href="{}">{}</a>', url, f"{mailing_list.subscriber_count:,}")


# --- suppression and erasure ------------------------------------------------------------------------
class SuppressionUploadForm(forms.Form):
    file = forms.FileField(
        help_text="A CSV file: a column named email (plain addresses) or md5 (lowercase-email MD5 hashes). "
        "Without a header, each row's first cell is read as an email or an MD5."
    )
    reason = forms.ChoiceField(
        choices=SuppressionReason.choices, initial=SuppressionReason.UPLOADED, help_text="Recorded on new rows."
    )
    keep_plain = forms.BooleanField(
        required=False, help_text="Also keep plain email addresses (otherwise only their MD5 is stored)."
    )
    note = forms.CharField(required=False, max_length=255, help_text="Where the list came from, for the record.")


def read_suppression_csv(stream) -> tuple[list[str], list[str], int]:
    """(emails, md5s, invalid rows) from an uploaded CSV, with or without a header."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    reader = csv.reader(text)
    emails: list[str] = []
    md5s: list[str] = []
    invalid = 0
    column = 0
    first = next(reader, None)
    if first is None:
        return emails, md5s, invalid
    names = [cell.strip().lower() for cell in first]
    header = next((n for n in ("email", "md5", "email_md5") if n in names), None)
    rows = reader if header is not None else _chain(first, reader)
    if header is not None:
        column = names.index(header)
    for row in rows:
        if len(row) <= column or not row[column].strip():
            continue
        value = row[column].strip()
        if "@" in value and " " not in value:
            emails.append(value)
        elif MD5_RE.match(value):
            md5s.append(value.lower())
        else:
            invalid += 1
    return emails, md5s, invalid


def _chain(first, rest):
    yield first
    yield from rest


class SuppressionForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ["email", "email_md5", "user_id", "reason", "note"]
        help_texts = {
            "email": "Optional: a plain address. Its MD5 is filled in for you.",
            "email_md5": "MD5 of the lowercase email. Give this, an email, or a userId.",
            "user_id": "A userId to suppress.",
        }

    def clean(self):
        cleaned = super().clean()
        email = (cleaned.get("email") or "").strip().lower()
        cleaned["email"] = email
        if email:
            cleaned["email_md5"] = email_md5(email)
            self.instance.email_md5 = cleaned["email_md5"]
        elif cleaned.get("email_md5"):
            cleaned["email_md5"] = cleaned["email_md5"].strip().lower()
            if not MD5_RE.match(cleaned["email_md5"]):
                self.add_error("email_md5", "An MD5 is 32 hexadecimal characters.")
        cleaned["user_id"] = (cleaned.get("user_id") or "").strip() or None
        cleaned["email_md5"] = cleaned.get("email_md5") or None
        if not cleaned["email_md5"] and not cleaned["user_id"]:
            raise forms.ValidationError("Give an email, an MD5 or a userId.")
        return cleaned


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    form = SuppressionForm
    list_display = ("__str__", "email_md5", "user_id", "reason", "note", "created_at")
    list_filter = ("reason",)
    search_fields = ("email_md5", "user_id")
    search_help_text = "An email (matched by its MD5), an MD5, or a userId; exact."
    ordering = ("-created_at",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan the table once per filter choice
    change_list_template = "admin/contacts/suppression/change_list.html"
    readonly_fields = ("created_at",)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if "@" in term:
            return queryset.filter(email_md5=email_md5(term)), False
        return queryset.filter(Q(email_md5=term.lower()) | Q(user_id=term)), False

    def get_urls(self):
        upload = path(
            "upload/",
            self.admin_site.admin_view(self.upload_view),
            name="contacts_suppression_upload",
        )
        return [upload, *super().get_urls()]

    def upload_view(self, request: HttpRequest):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = SuppressionUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            emails, md5s, invalid = read_suppression_csv(form.cleaned_data["file"].file)
            created = suppressions_add(
                emails=emails,
                md5s=md5s,
                reason=form.cleaned_data["reason"],
                note=form.cleaned_data["note"] or f"uploaded by {request.user.get_username()}",
                keep_plain=form.cleaned_data["keep_plain"],
            )
            total = len({email_md5(e) for e in emails} | set(md5s))
            self.message_user(
                request,
                f"Read {total} distinct address(es): {created} new suppression(s), {total - created} already suppressed"
                + (f", {invalid} row(s) skipped as neither an email nor an MD5." if invalid else "."),
                messages.SUCCESS if not invalid else messages.WARNING,
            )
            return HttpResponseRedirect(reverse("admin:contacts_suppression_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload suppressions",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/contacts/suppression/upload.html", context)


@admin.register(ErasureRecord)
class ErasureRecordAdmin(admin.ModelAdmin):
    list_display = ("created_at", "requested_by", "contact_pk", "integration", "events_deleted", "inbox_redacted")
    list_filter = ("integration",)
    search_fields = ("=requested_by", "=message_id")
    list_select_related = ("integration",)
    ordering = ("-created_at",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan the table once per filter choice

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
