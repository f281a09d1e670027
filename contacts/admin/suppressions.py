"""Suppressions: people never created, emailed or sent out again until staff lift it."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from common.admin_tools import EstimatedCountPaginator
from contacts.admin.upload import MD5_RE, SuppressionUploadForm, read_suppression_csv
from contacts.models import (
    Suppression,
)
from contacts.services import email_md5, suppressions_add


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
