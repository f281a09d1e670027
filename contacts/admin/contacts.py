"""Contacts: the list, the change page (typed properties, one timeline, memberships) and the
actions (unsubscribe, resubscribe, erase, CSV), in bulk and as buttons on a contact's page."""

from __future__ import annotations

import csv
import io
import json
from contextvars import ContextVar

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display

from common.admin_tools import (
    EstimatedCountPaginator,
    PageChangeList,
    confirm_page,
    confirmed,
    link,
    pretty_json,
)
from common.ids import parse_pk
from contacts.admin.contact_form import contact_form, property_fields
from contacts.admin.filters import AudienceFilter, HasPropertyFilter, MailingListFilter
from contacts.admin.timeline import PAGE_PARAM, page_number, timeline_page
from contacts.hashing import email_md5
from contacts.models import (
    AudienceMembership,
    Contact,
    ContactEvent,
    ContactIdentity,
    ListMembership,
    PropertyDefinition,
    Suppression,
    SuppressionReason,
)
from contacts.services import (
    STAFF_FIELDS,
    contact_create,
    contact_erase,
    contact_resubscribe,
    contact_unsubscribe,
    contact_update,
)

ERASE_LIMIT = 500
SEARCH_HELP = "Email (or its beginning), @domain (every address there), exact userId, or first and/or last name."
# The timeline page the change view was asked for (its readonly field sees only the contact).
_timeline_page: ContextVar[int] = ContextVar("timeline_page", default=1)


class MembershipInline(TabularInline):
    model = ListMembership
    extra = 0
    fields = ("mailing_list", "subscribed", "updated_at")
    readonly_fields = ("updated_at",)
    autocomplete_fields = ("mailing_list",)
    verbose_name_plural = "mailing list memberships"
    tab = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("mailing_list")


class AudienceInline(TabularInline):
    model = AudienceMembership
    extra = 0
    can_delete = False
    fields = ("key", "member", "entered_at", "exited_at")
    readonly_fields = fields
    verbose_name_plural = "Engage audiences"
    tab = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class IdentityInline(TabularInline):
    model = ContactIdentity
    extra = 0
    can_delete = False
    fields = ("anonymous_id", "created_at")
    readonly_fields = fields
    verbose_name_plural = "other ids (anonymousIds and merged ids)"
    tab = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


# Inlines the apps above contacts add to the contact page (contacts cannot import them): e.g.
# campaigns adds the contact's loop enrolments with `register_contact_inline(EnrolmentInline)`.
CONTACT_INLINES: list[type] = []


def register_contact_inline(inline: type) -> type:
    if inline not in CONTACT_INLINES:
        CONTACT_INLINES.append(inline)
    return inline


@admin.register(Contact)
class ContactAdmin(ModelAdmin):
    list_display = ("contact", "full_name", "subscription", "source", "seen", "events", "created_at")
    list_display_links = ("contact",)
    list_filter = (
        "subscribed",
        "source",
        ("created_at", admin.DateFieldListFilter),
        ("last_seen_at", admin.DateFieldListFilter),
        MailingListFilter,
        AudienceFilter,
        HasPropertyFilter,
    )
    list_filter_submit = True
    search_fields = ("email", "user_id", "first_name", "last_name")
    search_help_text = SEARCH_HELP
    list_select_related = ("source",)
    ordering = ("-created_at",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan the table once per filter choice
    list_per_page = 50
    inlines = (MembershipInline, AudienceInline, IdentityInline)
    actions = ("unsubscribe", "resubscribe", "erase", "export_csv")
    actions_detail = ("unsubscribe_one", "resubscribe_one", "erase_one")
    readonly_fields = (
        "subscribed",
        "subscription_changed_at",
        "subscription_reason",
        "raw_traits_json",
        "address_json",
        "source",
        "last_seen_at",
        "created_at",
        "updated_at",
        "timeline",
    )

    # --- the list -----------------------------------------------------------------------------------
    def get_changelist(self, request, **kwargs):
        return PageChangeList

    def annotate_page(self, request: HttpRequest, contacts: list[Contact]) -> None:
        """Events per contact of the page: one GROUP BY over event_contact_time, not a subquery
        per row (nor one in the count)."""
        counts = dict(
            ContactEvent.objects.filter(contact_id__in=[c.pk for c in contacts])
            .values_list("contact_id")
            .annotate(n=Count("id"))
            .order_by()
        )
        events = reverse("admin:contacts_contactevent_changelist")
        for contact in contacts:
            contact.event_count = counts.get(contact.pk, 0)
            contact.events_url = f"{events}?contact__id__exact={contact.pk}"

    @display(description="Contact", ordering="email")
    def contact(self, contact: Contact) -> str:
        return str(contact)

    @display(description="Name")
    def full_name(self, contact: Contact) -> str:
        return contact.name or "—"

    @display(description="Subscribed", ordering="subscribed", label={"subscribed": "success", "unsubscribed": "danger"})
    def subscription(self, contact: Contact) -> str:
        return "subscribed" if contact.subscribed else "unsubscribed"

    @display(description="Last seen", ordering="last_seen_at")
    def seen(self, contact: Contact) -> str:
        return f"{contact.last_seen_at:%Y-%m-%d %H:%M}" if contact.last_seen_at else "—"

    @display(description="Events")
    def events(self, contact: Contact) -> str:
        count = getattr(contact, "event_count", None)
        if not count:
            return "0" if count == 0 else "—"
        return link(contact.events_url, f"{count:,}")

    def get_search_results(self, request, queryset, search_term):
        """Each form of term is an indexed lookup (email prefix, exact userId, names), except an
        email domain, which reads addresses until it has a page (there is no index on the end of
        an address)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.startswith("@") and " " not in term:
            return queryset.filter(email__endswith=term.lower()), False
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

    # --- the change page ------------------------------------------------------------------------------
    def _form_class(self, request, obj):
        """The form with a field per property, made once per request."""
        forms = request.__dict__.setdefault("_sy_contact_forms", {})
        key = obj.pk if obj is not None else None
        if key not in forms:
            forms[key] = contact_form(obj)
        return forms[key]

    def get_inlines(self, request, obj):
        return [*super().get_inlines(request, obj), *CONTACT_INLINES]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = self._form_class(request, obj)
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        form_class = self._form_class(request, obj)
        main = (None, {"fields": ("email", "user_id", ("first_name", "last_name"), "phone")})
        if obj is None:
            return (main,)
        props = property_fields(form_class)
        return (
            main,
            (
                "Subscription",
                {
                    "fields": (("subscribed", "subscription_changed_at"), "subscription_reason"),
                    "description": "Change it with the Unsubscribe and Resubscribe buttons, so suppressions stay "
                    "in step.",
                },
            ),
            ("Timeline", {"fields": ("timeline",), "classes": ["tab"]}),
            (
                "Properties",
                {
                    "fields": (*props, "raw_traits_json", "address_json"),
                    "description": "Typed custom properties: an edit is checked against the property's type and "
                    "stamped, so an older Segment message does not overwrite it. Empty removes the value.",
                    "classes": ["tab"],
                },
            ),
            ("Record", {"fields": ("source", "last_seen_at", "created_at", "updated_at"), "classes": ["tab"]}),
        )

    def get_fields(self, request, obj=None):
        return list(flatten_fieldsets(self.get_fieldsets(request, obj)))

    def save_model(self, request, obj, form, change):
        """Through the same services as the API: each changed field is stamped now, so a Segment
        message dated before the edit cannot overwrite it, and recorded in the history."""
        changed = {name: form.cleaned_data[name] for name in form.changed_data if name in STAFF_FIELDS}
        properties = form.changed_properties()
        actor = f"admin:{request.user.get_username()}"[:100]
        if change:
            contact_update(contact=obj, properties=properties or None, actor=actor, **changed)
        else:
            created = contact_create(actor=actor, properties=properties or None, **changed)
            obj.pk, obj._state.adding = created.pk, False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Removing a person goes through Erase, which suppresses them and leaves a record.
        return False

    @display(description="Traits kept without a definition")
    def raw_traits_json(self, contact: Contact) -> str:
        return pretty_json(contact.raw_traits) if contact.raw_traits else "—"

    @display(description="Address")
    def address_json(self, contact: Contact) -> str:
        return pretty_json(contact.address) if contact.address else "—"

    @display(description="Events and changes")
    def timeline(self, contact: Contact) -> str:
        if contact.pk is None:
            return "—"
        page = timeline_page(contact, _timeline_page.get())
        return render_to_string("admin/contacts/contact/timeline.html", {"page": page})

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        token = _timeline_page.set(page_number(request.GET.get(PAGE_PARAM)))
        try:
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if isinstance(response, TemplateResponse):
                response.render()  # while the page number is set: readonly fields render lazily
            return response
        finally:
            _timeline_page.reset(token)

    # --- buttons on a contact's page ------------------------------------------------------------------
    def _contact(self, request: HttpRequest, object_id: str) -> Contact:
        pk = parse_pk(object_id)
        return get_object_or_404(Contact, pk=pk if pk is not None else 0)

    def _back(self, contact: Contact) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:contacts_contact_change", args=[contact.pk]))

    def has_unsubscribe_permission(self, request: HttpRequest, object_id=None) -> bool:
        return self.has_change_permission(request) and self._subscribed(request, object_id) is not False

    def has_resubscribe_permission(self, request: HttpRequest, object_id=None) -> bool:
        return self.has_change_permission(request) and self._subscribed(request, object_id) is not True

    def _subscribed(self, request: HttpRequest, object_id) -> bool | None:
        """The contact's state, once per request, so only the button that applies shows."""
        if object_id is None:
            return None
        cache = request.__dict__.setdefault("_sy_subscribed", {})
        if object_id not in cache:
            pk = parse_pk(str(object_id))
            cache[object_id] = (
                Contact.objects.filter(pk=pk if pk is not None else 0).values_list("subscribed", flat=True).first()
            )
        return cache[object_id]

    @action(description="Unsubscribe", icon="unsubscribe", url_path="unsubscribe", permissions=["unsubscribe"])
    def unsubscribe_one(self, request: HttpRequest, object_id: str):
        contact = self._contact(request, object_id)
        if not confirmed(request):
            return confirm_page(
                self,
                request,
                contact,
                title=f"Unsubscribe {contact}?",
                message="They get no more marketing email, and their address is added to the suppression list "
                "(unsubscribed), so a later message cannot subscribe them again without their own opt-in.",
                button="Yes, unsubscribe",
                danger=True,
            )
        count = contact_unsubscribe(
            contacts=[contact], reason=f"unsubscribed by {request.user.get_username()} in the admin"
        )
        self.message_user(
            request,
            "Unsubscribed; their address is suppressed." if count else "Already unsubscribed; left as it was.",
            messages.SUCCESS if count else messages.WARNING,
        )
        return self._back(contact)

    @action(description="Resubscribe", icon="mark_email_read", url_path="resubscribe", permissions=["resubscribe"])
    def resubscribe_one(self, request: HttpRequest, object_id: str):
        contact = self._contact(request, object_id)
        blocked = bounced_or_complained(contact)
        if not confirmed(request):
            message = "They get marketing email again, and their own unsubscribe suppression is lifted."
            if blocked:
                message += f" Their address is also suppressed as {blocked}: that stays until you lift it."
            return confirm_page(
                self, request, contact, title=f"Resubscribe {contact}?", message=message, button="Yes, resubscribe"
            )
        if contact.subscribed:
            self.message_user(request, "Already subscribed; left as it was.", messages.WARNING)
            return self._back(contact)
        contact_resubscribe(contact=contact, reason=f"resubscribed by {request.user.get_username()} in the admin")
        text = "Resubscribed."
        if blocked:
            text += f" Their address stays suppressed ({blocked}) until that suppression is lifted."
        self.message_user(request, text, messages.SUCCESS if not blocked else messages.WARNING)
        return self._back(contact)

    @action(description="Erase", icon="delete_forever", url_path="erase", permissions=["change"])
    def erase_one(self, request: HttpRequest, object_id: str):
        contact = self._contact(request, object_id)
        if not confirmed(request):
            events = ContactEvent.objects.filter(contact=contact).count()
            return confirm_page(
                self,
                request,
                contact,
                title=f"Erase {contact}?",
                message=f"Erasing deletes this contact, their properties, memberships, history and {events} "
                "event(s), and redacts their inbox messages. Their email (as MD5) and userId are suppressed, so "
                "later messages cannot bring them back. Only a record that the erasure happened is kept. "
                "This cannot be undone.",
                button="Yes, erase",
                danger=True,
            )
        record = contact_erase(contact=contact, requested_by=f"admin:{request.user.get_username()}"[:100])
        self.message_user(
            request,
            f"Erased {contact} and {record.events_deleted} event(s); their email and userId are suppressed.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:contacts_contact_changelist"))

    # --- bulk actions -----------------------------------------------------------------------------------
    @admin.action(description="Unsubscribe (and suppress their emails)")
    def unsubscribe(self, request: HttpRequest, queryset: QuerySet[Contact]) -> None:
        count = contact_unsubscribe(
            contacts=queryset.select_related(None).only("pk"),
            reason=f"unsubscribed by {request.user.get_username()} in the admin",
        )
        self.message_user(request, f"Unsubscribed {count} contact(s); the rest were already unsubscribed.")

    @admin.action(description="Resubscribe (and lift their own unsubscribes)")
    def resubscribe(self, request: HttpRequest, queryset: QuerySet[Contact]) -> None:
        reason = f"resubscribed by {request.user.get_username()} in the admin"
        contacts = list(queryset.filter(subscribed=False).order_by("pk")[: ERASE_LIMIT + 1])
        if len(contacts) > ERASE_LIMIT:
            self.message_user(request, f"Resubscribe at most {ERASE_LIMIT} contacts at a time.", messages.ERROR)
            return
        for contact in contacts:
            contact_resubscribe(contact=contact, reason=reason)
        self.message_user(request, f"Resubscribed {len(contacts)} contact(s); the rest were already subscribed.")

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

    @admin.action(description="Export CSV (a column per property)")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Contact]) -> StreamingHttpResponse:
        lists = Prefetch(
            "memberships",
            queryset=ListMembership.objects.filter(subscribed=True).select_related("mailing_list"),
            to_attr="subscribed_lists",
        )
        rows = queryset.select_related(None).order_by("pk").prefetch_related(lists).iterator(chunk_size=2000)
        names = list(PropertyDefinition.objects.order_by("name").values_list("name", flat=True))
        return csv_response(rows, names)


def csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def csv_response(rows, property_names: list[str]) -> StreamingHttpResponse:
    header = [
        "id",
        "email",
        "user_id",
        "first_name",
        "last_name",
        "phone",
        "subscribed",
        "mailing_lists",
        *property_names,
        "created_at",
        "last_seen_at",
    ]

    def lines():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        for contact in rows:
            properties = contact.properties or {}
            writer.writerow(
                [
                    contact.pk,
                    contact.email or "",
                    contact.user_id or "",
                    contact.first_name,
                    contact.last_name,
                    contact.phone,
                    "true" if contact.subscribed else "false",
                    " ".join(m.mailing_list.list_id for m in contact.subscribed_lists),
                    *(csv_value(properties.get(name)) for name in property_names),
                    contact.created_at.isoformat(),
                    contact.last_seen_at.isoformat() if contact.last_seen_at else "",
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


def bounced_or_complained(contact: Contact) -> str:
    """Why the contact's address stays unmailable whatever they choose, or ""."""
    if not contact.email:
        return ""
    reason = (
        Suppression.objects.filter(
            email_md5=email_md5(contact.email),
            reason__in=[SuppressionReason.BOUNCED, SuppressionReason.COMPLAINED],
        )
        .values_list("reason", flat=True)
        .first()
    )
    return reason or ""
