"""Suppressions: people never created, emailed or sent out again until staff lift it."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.db.models.functions import MD5
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from common.admin_tools import (
    EstimatedCountPaginator,
    PageChangeList,
    change_url,
    confirm_page,
    confirmed,
    link,
)
from common.ids import parse_pk
from contacts.admin.upload import MD5_RE, SuppressionUploadForm, read_suppression_csv
from contacts.models import Contact, Suppression, SuppressionReason
from contacts.services import email_md5, suppressions_add, suppressions_lift

LIFT_LIMIT = 1000
REASON_VARIANT = {
    SuppressionReason.ERASED: "danger",
    SuppressionReason.UNSUBSCRIBED: "warning",
    SuppressionReason.BOUNCED: "danger",
    SuppressionReason.COMPLAINED: "danger",
    SuppressionReason.UPLOADED: "info",
}
LIFT_EFFECT = {
    SuppressionReason.ERASED: "the erased person may be created again by their next message",
    SuppressionReason.UNSUBSCRIBED: "a later opt-in or a staff resubscribe may mail them again",
    SuppressionReason.BOUNCED: "the address may be mailed again (it bounced before)",
    SuppressionReason.COMPLAINED: "the address may be mailed again (they complained before)",
    SuppressionReason.UPLOADED: "the address may be mailed and sent out again",
}


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


def matching_contacts(suppressions: list[Suppression]) -> dict[int, Contact]:
    """The contact each suppression names, for a page of them, in one query: by userId, plain
    email, or md5(email) (the contact_email_md5 index on PostgreSQL)."""
    user_ids = {s.user_id for s in suppressions if s.user_id}
    md5s = {s.email_md5 for s in suppressions if s.email_md5}
    if not user_ids and not md5s:
        return {}
    query = Q(user_id__in=user_ids) | Q(email__in={s.email for s in suppressions if s.email})
    contacts = Contact.objects.only("pk", "email", "user_id")
    if md5s:
        contacts = contacts.annotate(email_hash=MD5("email"))
        query |= Q(email_hash__in=md5s)
    contacts = list(contacts.filter(query))
    by_user = {c.user_id: c for c in contacts if c.user_id}
    by_md5 = {getattr(c, "email_hash", None) or email_md5(c.email): c for c in contacts if c.email}
    found = {}
    for suppression in suppressions:
        contact = by_user.get(suppression.user_id) or by_md5.get(suppression.email_md5)
        if contact is not None:
            found[suppression.pk] = contact
    return found


@admin.register(Suppression)
class SuppressionAdmin(ModelAdmin):
    form = SuppressionForm
    list_display = ("who", "reason_badge", "contact", "note", "created_at")
    list_display_links = ("who",)
    list_filter = ("reason", ("created_at", admin.DateFieldListFilter))
    list_filter_submit = True
    search_fields = ("email_md5", "user_id")
    search_help_text = "An email (matched by its MD5), an MD5, or a userId; exact."
    ordering = ("-created_at",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan the table once per filter choice
    readonly_fields = ("created_at", "contact")
    actions = ("lift",)
    actions_list = ("upload",)
    actions_detail = ("lift_one",)

    def get_changelist(self, request, **kwargs):
        return PageChangeList

    def annotate_page(self, request: HttpRequest, suppressions: list[Suppression]) -> None:
        contacts = matching_contacts(suppressions)
        for suppression in suppressions:
            suppression.matched = contacts.get(suppression.pk)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if "@" in term:
            return queryset.filter(email_md5=email_md5(term)), False
        return queryset.filter(Q(email_md5=term.lower()) | Q(user_id=term)), False

    @display(description="Suppressed")
    def who(self, suppression: Suppression) -> str:
        if suppression.email:
            return suppression.email
        if suppression.user_id and not suppression.email_md5:
            return f"userId {suppression.user_id}"
        label = f"email md5 {suppression.email_md5[:10]}…" if suppression.email_md5 else ""
        if suppression.user_id:
            label = f"userId {suppression.user_id} + {label}"
        return format_html('<span title="{}">{}</span>', suppression.email_md5 or "", label)

    @display(description="Reason", ordering="reason", label=REASON_VARIANT)
    def reason_badge(self, suppression: Suppression) -> str:
        return suppression.reason

    @display(description="Contact")
    def contact(self, suppression: Suppression) -> str:
        contact = getattr(suppression, "matched", None)
        if contact is None and not hasattr(suppression, "matched") and suppression.pk is not None:
            contact = matching_contacts([suppression]).get(suppression.pk)
        if contact is None:
            erased = suppression.reason == SuppressionReason.ERASED
            return format_html('<span class="sy-muted">{}</span>', "erased" if erased else "no contact")
        return link(change_url("contacts.contact", contact.pk), str(contact))

    # --- lifting ------------------------------------------------------------------------------------
    @admin.action(description="Lift (they may be created, emailed and sent out again)")
    def lift(self, request: HttpRequest, queryset: QuerySet[Suppression]):
        if not self.has_delete_permission(request):
            raise PermissionDenied
        selected = list(queryset.order_by("pk")[: LIFT_LIMIT + 1])
        if len(selected) > LIFT_LIMIT:
            self.message_user(request, f"Lift at most {LIFT_LIMIT:,} suppressions at a time.", messages.ERROR)
            return None
        if confirmed(request):
            count = suppressions_lift(ids=[s.pk for s in selected])
            self.message_user(request, f"Lifted {count} suppression(s).", messages.SUCCESS)
            return None
        return confirm_page(
            self,
            request,
            None,
            title=f"Lift {len(selected)} suppression(s)?",
            message="Each row is deleted: " + "; ".join(sorted({LIFT_EFFECT[s.reason] for s in selected})) + ".",
            items=[f"{s} ({s.get_reason_display()})" for s in selected[:50]],
            button="Yes, lift them",
            danger=True,
            hidden=[("action", "lift"), ("index", "0")] + [(helpers.ACTION_CHECKBOX_NAME, s.pk) for s in selected],
            cancel_url=reverse("admin:contacts_suppression_changelist"),
        )

    @action(description="Lift", icon="undo", url_path="lift", permissions=["delete"])
    def lift_one(self, request: HttpRequest, object_id: str):
        pk = parse_pk(object_id)
        suppression = get_object_or_404(Suppression, pk=pk if pk is not None else 0)
        if not confirmed(request):
            return confirm_page(
                self,
                request,
                suppression,
                title=f"Lift the suppression of {suppression}?",
                message=f"The row is deleted: {LIFT_EFFECT[suppression.reason]}.",
                button="Yes, lift it",
                danger=True,
            )
        suppressions_lift(ids=[suppression.pk])
        self.message_user(request, f"Lifted the suppression of {suppression}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:contacts_suppression_changelist"))

    # --- upload (a button above the list) ---------------------------------------------------------------
    @action(description="Upload CSV", icon="upload_file", url_path="upload", permissions=["add"])
    def upload(self, request: HttpRequest):
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
