"""Staff UI for the affiliate program: affiliates (filters, search, clicks and conversions inline,
commission totals, referral quality, a weekly chart, approve/deny/disable), offers, conversions
(approve, deny, payouts per affiliate and month with a CSV export), clicks; and on each contact's
page, the affiliate they are and the orders affiliates brought from them.

Conventions as elsewhere (README "Layout"): unfold's ModelAdmin, states as badges, capped
counts, one query per page for what rows show from other tables, buttons that ask first and say
what they did, figures that link to their lists.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display
from unfold.forms import PaginationInlineFormSet

from affiliates.codes import code_clean
from affiliates.models import (
    Affiliate,
    AffiliateStatus,
    Click,
    CommissionType,
    Conversion,
    Coupon,
    Offer,
)
from affiliates.orders import rates_of
from affiliates.selectors import commission_totals, money_string, money_text, payouts, referral_quality, weekly
from affiliates.services import (
    affiliate_create,
    affiliate_update,
    affiliates_link_contacts,
    affiliates_set_status,
    contact_affiliates_link,
    conversions_approve,
    conversions_deny,
)
from common import clock
from common.admin_tools import (
    EstimatedCountPaginator,
    PageChangeList,
    capped_count,
    chart_options,
    confirm_page,
    confirmed,
    link,
    pretty_json,
    shorten,
)
from common.ids import parse_pk
from contacts.admin.contacts import register_contact_inline

AFFILIATE_VARIANT = {"pending": "warning", "active": "success", "denied": "danger", "disabled": "default"}
CONVERSION_VARIANT = {
    "pending": "warning",
    "approved": "success",
    "denied": "danger",
    "unqualified": "default",
    "reversed": "info",
}
WEEKS = 12
STATUS_VERBS = {
    AffiliateStatus.ACTIVE: ("Approve", "Approved"),
    AffiliateStatus.DENIED: ("Deny", "Denied"),
    AffiliateStatus.DISABLED: ("Disable", "Disabled"),
}
COLOURS = ["#6366f1", "#10b981", "#f59e0b", "#ef4444", "#0ea5e9", "#a855f7"]


def actor(request: HttpRequest) -> str:
    return f"admin:{request.user.get_username()}"[:100]


def money(value: Decimal, currency: str) -> str:
    return f"{Decimal(value).quantize(Decimal('0.01')):,} {currency}".strip()


def conversions_url(**query) -> str:
    return reverse("admin:affiliates_conversion_changelist") + (f"?{urlencode(query)}" if query else "")


# --- the weekly chart -------------------------------------------------------------------------------------
def weekly_context(affiliate: Affiliate | None = None) -> dict:
    series = weekly(now=clock.now(), weeks=WEEKS, affiliate=affiliate)
    labels = [day.strftime("%m-%d") for day in series.weeks]
    counts = {
        "labels": labels,
        "datasets": [
            {"label": "clicks", "data": series.clicks, "backgroundColor": COLOURS[0]},
            {"label": "conversions", "data": series.conversions, "backgroundColor": COLOURS[1]},
        ],
    }
    commission = {
        "labels": labels,
        "datasets": [
            {"label": f"commission ({currency or 'no currency'})", "data": values, "borderColor": COLOURS[2 + n % 4]}
            for n, (currency, values) in enumerate(series.commission.items())
        ],
    }
    return {
        "weekly_counts": json.dumps(counts),
        "weekly_counts_options": chart_options(y_title="per week", x_title="week from (UTC)", legend=True),
        "weekly_commission": json.dumps(commission),
        "weekly_commission_options": chart_options(y_title="commission", x_title="week from (UTC)", legend=True),
        "weekly_has_commission": any(any(v) for v in series.commission.values()),
        "weeks": WEEKS,
    }


# --- offers ------------------------------------------------------------------------------------------------
class OfferForm(forms.ModelForm):
    landing_url = forms.URLField(
        max_length=2000,
        required=False,
        assume_scheme="https",
        help_text="Where the referral link lands; ?ref=CODE&click_id=… is added.",
    )

    class Meta:
        model = Offer
        fields = (
            "name",
            "commission_type",
            "commission_value",
            "sku_rates",
            "cookie_days",
            "landing_url",
            "auto_approve_days",
        )

    def clean_sku_rates(self):
        value = self.cleaned_data.get("sku_rates") or {}
        if not isinstance(value, dict):
            raise forms.ValidationError('An object of SKU to rate, e.g. {"SKU-1": 15}.')
        if len(rates_of(value)) != len(value) or any(
            isinstance(v, bool) or not isinstance(v, int | float | str) for v in value.values()
        ):
            raise forms.ValidationError("Every rate must be a number.")
        if any(rate < 0 for rate in rates_of(value).values()):
            raise forms.ValidationError("Rates are 0 or more.")
        return value

    def clean(self):
        data = super().clean()
        if data.get("commission_type") == CommissionType.PERCENT and (data.get("commission_value") or 0) > 100:
            self.add_error("commission_value", "A percent is at most 100.")
        return data


@admin.register(Offer)
class OfferAdmin(ModelAdmin):
    form = OfferForm
    list_display = ("name", "commission", "cookie_days", "landing", "auto_approval", "affiliate_count")
    search_fields = ("name",)
    readonly_fields = ("created_at", "updated_at")

    def get_changelist(self, request, **kwargs):
        return PageChangeList

    def annotate_page(self, request: HttpRequest, offers: list[Offer]) -> None:
        counts = dict(
            Affiliate.objects.filter(offer_id__in=[o.pk for o in offers])
            .values("offer_id")
            .annotate(n=Count("id"))
            .values_list("offer_id", "n")
            .order_by()
        )
        for offer in offers:
            offer.affiliates_n = counts.get(offer.pk, 0)

    @display(description="Commission")
    def commission(self, offer: Offer) -> str:
        value = offer.commission_value.normalize()
        text = {
            CommissionType.PERCENT: f"{value}% of the order",
            CommissionType.FLAT_ORDER: f"{value} per order",
            CommissionType.FLAT_ITEM: f"{value} per item",
        }[offer.commission_type]
        return text + (f" ({len(offer.sku_rates)} SKU rates)" if offer.sku_rates else "")

    @display(description="Landing page")
    def landing(self, offer: Offer) -> str:
        if not offer.landing_url:
            return "—"
        return format_html('<span class="sy-clip" title="{}">{}</span>', offer.landing_url, offer.landing_url)

    @display(description="Auto-approval")
    def auto_approval(self, offer: Offer) -> str:
        return f"after {offer.auto_approve_days} days" if offer.auto_approve_days is not None else "by staff"

    @display(description="Affiliates")
    def affiliate_count(self, offer: Offer) -> str:
        url = reverse("admin:affiliates_affiliate_changelist") + f"?offer__id__exact={offer.pk}"
        return link(url, getattr(offer, "affiliates_n", 0))

    def save_model(self, request, obj: Offer, form, change: bool) -> None:
        obj.updated_at = clock.now()
        super().save_model(request, obj, form, change)


# --- affiliates --------------------------------------------------------------------------------------------
class AffiliateForm(forms.ModelForm):
    referral_code = forms.CharField(
        max_length=32, required=False, help_text="Letters, digits, - and _ (3 to 32); made for you when left empty."
    )

    class Meta:
        model = Affiliate
        fields = ("email", "user_id", "first_name", "last_name", "name", "address", "status", "offer", "referral_code")

    def clean_email(self):
        email = (self.cleaned_data.get("email") or "").strip().lower()
        if email and "@" not in email:
            raise forms.ValidationError("Enter an email address.")
        return email or None

    def clean_user_id(self):
        return (self.cleaned_data.get("user_id") or "").strip() or None

    def clean_address(self):
        value = self.cleaned_data.get("address")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError("An object: street, city, state, postalCode, country.")
        return value

    def clean_referral_code(self):
        value = self.cleaned_data.get("referral_code") or ""
        if not value:
            return self.instance.referral_code if self.instance.pk else ""
        code = code_clean(value)
        if code is None:
            raise forms.ValidationError("Use 3 to 32 letters, digits, - or _.")
        taken = Affiliate.objects.filter(referral_code=code).exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError("Another affiliate has this code.")
        return code


class CouponInline(TabularInline):
    model = Coupon
    extra = 0
    fields = ("code", "created_at")
    readonly_fields = ("created_at",)
    verbose_name_plural = "coupons (an order using one is this affiliate's when no click is)"
    tab = True


class ReadOnlyInline(TabularInline):
    extra = 0
    can_delete = False
    tab = True
    per_page = 10

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ClickInline(ReadOnlyInline):
    model = Click
    fields = ("clicked_at", "source", "visitor", "referrer_text", "linked_at")
    readonly_fields = fields
    ordering = ("-clicked_at",)
    verbose_name_plural = "clicks"

    @display(description="Visitor")
    def visitor(self, click: Click) -> str:
        return click.user_id or click.anonymous_id or "not seen on the site yet"

    @display(description="Referrer")
    def referrer_text(self, click: Click) -> str:
        return format_html('<span class="sy-clip" title="{}">{}</span>', click.referrer, click.referrer or "—")


class ConversionInline(ReadOnlyInline):
    model = Conversion
    fk_name = "affiliate"
    fields = ("order_link", "status_badge", "amount_text", "commission_text", "attributed_by", "reason", "created_at")
    readonly_fields = fields
    ordering = ("-created_at",)
    verbose_name_plural = "conversions"

    @display(description="Order")
    def order_link(self, conversion: Conversion) -> str:
        return link(reverse("admin:affiliates_conversion_change", args=[conversion.pk]), conversion.order_id)

    @display(description="Status", label=CONVERSION_VARIANT)
    def status_badge(self, conversion: Conversion) -> str:
        return conversion.status

    @display(description="Amount")
    def amount_text(self, conversion: Conversion) -> str:
        return money(conversion.amount, conversion.currency)

    @display(description="Commission")
    def commission_text(self, conversion: Conversion) -> str:
        return money(conversion.commission, conversion.currency)


@admin.register(Affiliate)
class AffiliateAdmin(ModelAdmin):
    form = AffiliateForm
    list_display = ("affiliate", "full_name_text", "code", "state", "offer", "pending", "approved", "created_at")
    list_display_links = ("affiliate",)
    list_filter = ("status", "offer")
    list_filter_submit = True
    search_fields = ("email", "referral_code", "first_name", "last_name")
    search_help_text = "Email (or its beginning), exact referral code or userId, or first and/or last name."
    list_select_related = ("offer",)
    ordering = ("-created_at", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    inlines = (CouponInline, ConversionInline, ClickInline)
    actions = ("approve", "deny", "disable")
    actions_detail = ("approve_one", "deny_one", "disable_one")
    readonly_fields = (
        "referral_link",
        "contact_link",
        "figures",
        "properties_table",
        "source",
        "status_changed_at",
        "erased_at",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        ("Who", {"fields": ("email", "user_id", "first_name", "last_name", "name", "address", "contact_link")}),
        ("Program", {"fields": ("status", "offer", "referral_code", "referral_link")}),
        ("Figures", {"fields": ("figures",)}),
        ("Engage audiences and computed traits", {"fields": ("properties_table",)}),
        ("History", {"fields": ("source", "status_changed_at", "erased_at", "created_at", "updated_at")}),
    )

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (
                    None,
                    {
                        "fields": (
                            "email",
                            "user_id",
                            "first_name",
                            "last_name",
                            "address",
                            "status",
                            "offer",
                            "referral_code",
                        )
                    },
                )
            ]
        return super().get_fieldsets(request, obj)

    def get_changelist(self, request, **kwargs):
        return PageChangeList

    def annotate_page(self, request: HttpRequest, affiliates: list[Affiliate]) -> None:
        totals = commission_totals(a.pk for a in affiliates)
        for affiliate in affiliates:
            affiliate.totals = totals.get(affiliate.pk, {"pending": {}, "approved": {}})

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        query = Q(email__startswith=term.lower()) | Q(user_id=term)
        code = code_clean(term)
        if code:
            query |= Q(referral_code=code)
        if "@" not in term:
            first, _, last = term.partition(" ")
            query |= (
                Q(first_name__iexact=first, last_name__istartswith=last)
                if last
                else (Q(first_name__iexact=term) | Q(last_name__iexact=term))
            )
        return queryset.filter(query), False

    @display(description="Affiliate", ordering="email")
    def affiliate(self, affiliate: Affiliate) -> str:
        text = str(affiliate) if not affiliate.erased_at else f"erased ({affiliate.referral_code})"
        return format_html('<span class="sy-wrap" title="{}">{}</span>', text, shorten(text, 40))

    @display(description="Name")
    def full_name_text(self, affiliate: Affiliate) -> str:
        return shorten(affiliate.full_name, 30) or "—"

    @display(description="Code", ordering="referral_code")
    def code(self, affiliate: Affiliate) -> str:
        return format_html('<span class="sy-mono">{}</span>', affiliate.referral_code)

    @display(description="Status", label=AFFILIATE_VARIANT, ordering="status")
    def state(self, affiliate: Affiliate) -> str:
        return affiliate.status

    def _total(self, affiliate: Affiliate, status: str) -> str:
        totals = getattr(affiliate, "totals", None)
        if totals is None:
            totals = commission_totals([affiliate.pk]).get(affiliate.pk, {"pending": {}, "approved": {}})
        return link(
            conversions_url(affiliate__id__exact=affiliate.pk, status__exact=status), money_text(totals[status])
        )

    @display(description="Pending commission")
    def pending(self, affiliate: Affiliate) -> str:
        return self._total(affiliate, "pending")

    @display(description="Approved commission")
    def approved(self, affiliate: Affiliate) -> str:
        return self._total(affiliate, "approved")

    @display(description="Referral link")
    def referral_link(self, affiliate: Affiliate) -> str:
        if not affiliate.referral_code:
            return "—"
        return format_html('<span class="sy-mono" style="user-select: all">{}</span>', affiliate.referral_link)

    @display(description="Contact")
    def contact_link(self, affiliate: Affiliate) -> str:
        affiliates_link_contacts([affiliate])
        if affiliate.contact_id is None:
            return "no contact with this email or userId yet"
        return link(reverse("admin:contacts_contact_change", args=[affiliate.contact_id]), affiliate.contact)

    @display(description="Figures")
    def figures(self, affiliate: Affiliate) -> str:
        if affiliate.pk is None:
            return "—"
        totals = commission_totals([affiliate.pk]).get(affiliate.pk, {"pending": {}, "approved": {}})
        context = {
            "pending": money_text(totals["pending"]),
            "approved": money_text(totals["approved"]),
            "pending_url": conversions_url(affiliate__id__exact=affiliate.pk, status__exact="pending"),
            "approved_url": conversions_url(affiliate__id__exact=affiliate.pk, status__exact="approved"),
            "clicks": capped_count(Click.objects.filter(affiliate=affiliate)),
            "clicks_url": reverse("admin:affiliates_click_changelist") + f"?affiliate__id__exact={affiliate.pk}",
            "conversions": capped_count(Conversion.objects.filter(affiliate=affiliate)),
            "conversions_url": conversions_url(affiliate__id__exact=affiliate.pk),
            "quality": referral_quality(affiliate),
            **weekly_context(affiliate),
        }
        return SafeString(render_to_string("affiliates/admin/figures.html", context))

    @display(description="Properties")
    def properties_table(self, affiliate: Affiliate) -> str:
        if not affiliate.properties:
            return "none yet"
        rows = format_html_join(
            "",
            "<tr><td class='sy-mono'>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (name, json.dumps(value), (affiliate.properties_changed_at.get(name) or "")[:19].replace("T", " "))
                for name, value in sorted(affiliate.properties.items())
            ),
        )
        return format_html(
            '<table class="sy-table" id="sy-affiliate-properties"><thead><tr><th>Name</th><th>Value</th>'
            "<th>Changed (UTC)</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    def save_model(self, request, obj: Affiliate, form, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data}
        # The form checked uniqueness (email, userId, code): the services' own check is for races.
        if change:
            affiliate_update(affiliate=obj, actor=actor(request), **fields)
        else:
            saved = affiliate_create(actor=actor(request), **form.cleaned_data)
            obj.pk, obj.referral_code, obj.contact_id = saved.pk, saved.referral_code, saved.contact_id
            obj._state.adding = False

    # --- status: bulk actions and buttons ---------------------------------------------------------------
    def _status(self, request: HttpRequest, affiliates, status: str) -> None:
        verb, done = STATUS_VERBS[status]
        result = affiliates_set_status(affiliates=affiliates, status=status, actor=actor(request))
        self.message_user(request, result.text(done), messages.SUCCESS if result.changed else messages.WARNING)

    @admin.action(description="Approve (make active)")
    def approve(self, request: HttpRequest, queryset: QuerySet[Affiliate]) -> None:
        self._status(request, queryset.select_related(None).only("pk"), AffiliateStatus.ACTIVE)

    @admin.action(description="Deny (pending applications)")
    def deny(self, request: HttpRequest, queryset: QuerySet[Affiliate]) -> None:
        self._status(request, queryset.select_related(None).only("pk"), AffiliateStatus.DENIED)

    @admin.action(description="Disable (their links and codes stop earning)")
    def disable(self, request: HttpRequest, queryset: QuerySet[Affiliate]) -> None:
        self._status(request, queryset.select_related(None).only("pk"), AffiliateStatus.DISABLED)

    def _affiliate(self, object_id: str) -> Affiliate:
        pk = parse_pk(object_id)
        return get_object_or_404(Affiliate, pk=pk if pk is not None else 0)

    def _one(self, request: HttpRequest, object_id: str, status: str, message: str, danger: bool = False):
        affiliate = self._affiliate(object_id)
        verb, _done = STATUS_VERBS[status]
        if not confirmed(request):
            return confirm_page(
                self,
                request,
                affiliate,
                title=f"{verb} {affiliate}?",
                message=f"{message} They are {affiliate.status} now.",
                button=f"Yes, {verb.lower()}",
                danger=danger,
            )
        self._status(request, [affiliate], status)
        return HttpResponseRedirect(reverse("admin:affiliates_affiliate_change", args=[affiliate.pk]))

    @action(description="Approve", icon="check_circle", url_path="approve", permissions=["change"])
    def approve_one(self, request: HttpRequest, object_id: str):
        return self._one(
            request,
            object_id,
            AffiliateStatus.ACTIVE,
            "They become active: their link and codes earn, and their pending conversions can be approved.",
        )

    @action(description="Deny", icon="block", url_path="deny", permissions=["change"])
    def deny_one(self, request: HttpRequest, object_id: str):
        return self._one(
            request,
            object_id,
            AffiliateStatus.DENIED,
            "A pending application is denied: their link and codes earn nothing.",
            danger=True,
        )

    @action(description="Disable", icon="pause_circle", url_path="disable", permissions=["change"])
    def disable_one(self, request: HttpRequest, object_id: str):
        return self._one(
            request,
            object_id,
            AffiliateStatus.DISABLED,
            "Their link still takes visitors to the shop, but records no click, and their codes earn nothing.",
            danger=True,
        )


# --- conversions -------------------------------------------------------------------------------------------
@admin.register(Conversion)
class ConversionAdmin(ModelAdmin):
    list_display = (
        "order",
        "affiliate_link",
        "state",
        "amount_text",
        "commission_text",
        "attributed_by",
        "reason_text",
        "created_at",
    )
    list_display_links = ("order",)
    list_filter = ("status", "attributed_by", "offer", ("created_at", admin.DateFieldListFilter))
    list_filter_submit = True
    list_select_related = ("affiliate",)
    search_fields = ("order_id",)
    search_help_text = "Exact order_id, or an affiliate's referral code."
    ordering = ("-created_at", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    actions = ("approve_selected", "deny_selected")
    actions_detail = ("approve_one", "deny_one")
    actions_list = ("payouts_page",)
    fieldsets = (
        (None, {"fields": ("order_id", "affiliate_link", "offer", "status", "reason", "attributed_by", "click")}),
        ("Money", {"fields": ("amount", "currency", "commission", "reversed_commission", "refunded_amount")}),
        ("The order", {"fields": ("lines_table", "refunds_json", "duplicates")}),
        ("The buyer", {"fields": ("buyer_link", "buyer_user_id", "buyer_anonymous_id", "buyer_email")}),
        ("Times", {"fields": ("order_at", "created_at", "approved_at", "decided_at", "decided_by", "reversed_at")}),
        ("Source", {"fields": ("source", "source_message_id")}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Conversion._meta.fields] + [
            "affiliate_link",
            "lines_table",
            "refunds_json",
            "buyer_link",
        ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # kept for accounting; refunds reverse them

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        query = Q(order_id=term)
        code = code_clean(term)
        if code:
            query |= Q(affiliate__referral_code=code)
        return queryset.filter(query), False

    @display(description="Order", ordering="order_id")
    def order(self, conversion: Conversion) -> str:
        return format_html('<span class="sy-clip" title="{}">{}</span>', conversion.order_id, conversion.order_id)

    @display(description="Affiliate")
    def affiliate_link(self, conversion: Conversion) -> str:
        if conversion.affiliate_id is None:
            return "removed"
        affiliate = conversion.affiliate
        return link(reverse("admin:affiliates_affiliate_change", args=[affiliate.pk]), shorten(str(affiliate), 32))

    @display(description="Status", label=CONVERSION_VARIANT, ordering="status")
    def state(self, conversion: Conversion) -> str:
        return conversion.status

    @display(description="Amount", ordering="amount")
    def amount_text(self, conversion: Conversion) -> str:
        return money(conversion.amount, conversion.currency)

    @display(description="Commission", ordering="commission")
    def commission_text(self, conversion: Conversion) -> str:
        return money(conversion.commission, conversion.currency)

    @display(description="Reason")
    def reason_text(self, conversion: Conversion) -> str:
        return format_html(
            '<span class="sy-wrap-narrow" title="{}">{}</span>', conversion.reason, shorten(conversion.reason, 40)
        )

    @display(description="Products")
    def lines_table(self, conversion: Conversion) -> str:
        if not conversion.lines:
            return "none sent"
        rows = format_html_join(
            "",
            "<tr><td class='sy-mono'>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (line["sku"], line["price"], line["quantity"], line["per_item"], line.get("refunded", 0))
                for line in conversion.lines
            ),
        )
        return format_html(
            '<table class="sy-table"><thead><tr><th>SKU</th><th>Price</th><th>Quantity</th>'
            "<th>Commission per item</th><th>Refunded</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @display(description="Refunds")
    def refunds_json(self, conversion: Conversion) -> str:
        return pretty_json(conversion.refunds) if conversion.refunds else "none"

    @display(description="Contact")
    def buyer_link(self, conversion: Conversion) -> str:
        if conversion.buyer_contact_id is None:
            return "—"
        return link(reverse("admin:contacts_contact_change", args=[conversion.buyer_contact_id]), "the buyer's contact")

    # --- approve and deny ------------------------------------------------------------------------------
    def _report(self, request: HttpRequest, result, verb: str) -> None:
        self.message_user(request, result.text(verb), messages.SUCCESS if result.done else messages.WARNING)

    @admin.action(description="Approve (pending ones)")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Conversion]) -> None:
        ids = list(queryset.values_list("pk", flat=True)[:5000])
        self._report(request, conversions_approve(ids=ids, actor=actor(request)), "Approved")

    @admin.action(description="Deny (pending ones; approved ones cannot be denied)")
    def deny_selected(self, request: HttpRequest, queryset: QuerySet[Conversion]) -> None:
        ids = list(queryset.values_list("pk", flat=True)[:5000])
        self._report(request, conversions_deny(ids=ids, actor=actor(request)), "Denied")

    def _conversion(self, object_id: str) -> Conversion:
        pk = parse_pk(object_id)
        return get_object_or_404(Conversion, pk=pk if pk is not None else 0)

    def _decide(self, request, object_id, call, verb, message, danger=False):
        conversion = self._conversion(object_id)
        if not confirmed(request):
            return confirm_page(
                self,
                request,
                conversion,
                title=f"{verb} the conversion of order {conversion.order_id}?",
                message=message,
                button=f"Yes, {verb.lower()}",
                danger=danger,
            )
        done = {"Approve": "Approved", "Deny": "Denied"}[verb]
        self._report(request, call(ids=[conversion.pk], actor=actor(request)), done)
        return HttpResponseRedirect(reverse("admin:affiliates_conversion_change", args=[conversion.pk]))

    @action(description="Approve", icon="check_circle", url_path="approve", permissions=["change"])
    def approve_one(self, request: HttpRequest, object_id: str):
        return self._decide(
            request,
            object_id,
            conversions_approve,
            "Approve",
            "The commission becomes payable. An approved conversion cannot be denied later; only a refund "
            'reverses it. "Affiliate Conversion Approved" goes to the affiliate\'s timeline (loops may start) '
            "and to Segment, where an outbound integration sends conversions.",
        )

    @action(description="Deny", icon="block", url_path="deny", permissions=["change"])
    def deny_one(self, request: HttpRequest, object_id: str):
        return self._decide(
            request, object_id, conversions_deny, "Deny", "The affiliate earns nothing for this order.", danger=True
        )

    # --- payouts -----------------------------------------------------------------------------------------
    @action(description="Payouts", icon="payments", url_path="payouts", permissions=["view"])
    def payouts_page(self, request: HttpRequest):
        if not self.has_view_permission(request):
            raise PermissionDenied
        today = clock.now().date()
        error = ""
        since = _month(request.GET.get("from")) or _add_months(today.replace(day=1), -5)
        last = _month(request.GET.get("to")) or today.replace(day=1)
        if (request.GET.get("from") and not _month(request.GET.get("from"))) or (
            request.GET.get("to") and not _month(request.GET.get("to"))
        ):
            error = "Months are YYYY-MM; showing the last six months."
        if last < since:
            since, last = last, since
        if (last.year - since.year) * 12 + last.month - since.month > 120:
            since, error = _add_months(last, -120), "At most ten years at a time."
        affiliate = None
        if request.GET.get("affiliate"):
            pk = parse_pk(request.GET["affiliate"])
            affiliate = Affiliate.objects.filter(pk=pk if pk is not None else 0).first()
        rows = payouts(since=since, until=_add_months(last, 1), affiliate_id=affiliate.pk if affiliate else None)
        if request.GET.get("format") == "csv":
            return _payouts_csv(rows, since, last)
        for row in rows:
            month_start = row.month.isoformat()
            month_end = _add_months(row.month, 1).isoformat()
            base = {"affiliate__id__exact": row.affiliate_id} if row.affiliate_id else {}
            row.approved_url = conversions_url(status__exact="approved", **base)
            row.pending_url = conversions_url(
                status__exact="pending", created_at__gte=month_start, created_at__lt=month_end, **base
            )
        query = {"from": since.strftime("%Y-%m"), "to": last.strftime("%Y-%m"), "format": "csv"}
        if affiliate:
            query["affiliate"] = affiliate.pk
        context = {
            **self.admin_site.each_context(request),
            "title": "Payouts per affiliate and month",
            "opts": self.model._meta,
            "rows": rows,
            "since": since,
            "last_month": last,
            "affiliate": affiliate,
            "error": error,
            "csv_query": urlencode(query),
            **weekly_context(affiliate),
        }
        return TemplateResponse(request, "affiliates/admin/payouts.html", context)


def _month(text: str | None) -> date | None:
    try:
        year, month = (int(part) for part in (text or "").split("-"))
        return date(year, month, 1)
    except (TypeError, ValueError):
        return None


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _payouts_csv(rows, since: date, last: date) -> HttpResponse:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "month",
            "affiliate_id",
            "affiliate",
            "referral_code",
            "currency",
            "approved_commission",
            "approved_conversions",
            "pending_commission",
            "pending_conversions",
            "reversed_commission",
        ]
    )
    for row in rows:
        writer.writerow(
            [
                row.month.strftime("%Y-%m"),
                row.affiliate_id or "",
                _cell(row.affiliate),
                row.referral_code,
                row.currency,
                money_string(row.approved),
                row.approved_count,
                money_string(row.pending),
                row.pending_count,
                money_string(row.reversed),
            ]
        )
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="payouts-{since:%Y-%m}-to-{last:%Y-%m}.csv"'
    return response


def _cell(text: str) -> str:
    """A spreadsheet must not run a name that starts like a formula."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


# --- clicks --------------------------------------------------------------------------------------------------
@admin.register(Click)
class ClickAdmin(ModelAdmin):
    list_display = ("click_id", "affiliate_link", "clicked_at", "source", "visitor", "linked_at")
    list_filter = ("source", ("clicked_at", admin.DateFieldListFilter))
    list_select_related = ("affiliate",)
    search_fields = ("click_id",)
    search_help_text = "Exact click id, an affiliate's referral code, or a visitor's anonymousId or userId."
    ordering = ("-clicked_at", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Click._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        query = Q(click_id=term) | Q(anonymous_id=term) | Q(user_id=term)
        code = code_clean(term)
        if code:
            query |= Q(affiliate__referral_code=code)
        return queryset.filter(query), False

    @display(description="Affiliate")
    def affiliate_link(self, click: Click) -> str:
        return link(
            reverse("admin:affiliates_affiliate_change", args=[click.affiliate_id]), click.affiliate.referral_code
        )

    @display(description="Visitor")
    def visitor(self, click: Click) -> str:
        return format_html('<span class="sy-clip">{}</span>', click.user_id or click.anonymous_id or "—")


# --- on the contact's page -------------------------------------------------------------------------------------
class DisplayOnlyFormSet(PaginationInlineFormSet):
    """Rows to read: saving the contact neither needs nor reads this inline's forms."""

    def is_valid(self) -> bool:
        return True

    def save(self, commit: bool = True) -> list:
        self.new_objects, self.changed_objects, self.deleted_objects = [], [], []
        return []


class ContactAffiliateInline(TabularInline):
    """The affiliate this contact is (same email or userId), with their latest conversions."""

    model = Affiliate
    formset = DisplayOnlyFormSet
    fk_name = "contact"
    extra = 0
    can_delete = False
    fields = ("affiliate_link", "status", "referral_code", "commission", "recent_conversions")
    readonly_fields = fields
    verbose_name_plural = "affiliate"
    tab = True

    def get_formset(self, request, obj=None, **kwargs):
        if obj is not None:
            contact_affiliates_link(obj)  # an affiliate added before this contact existed
        return super().get_formset(request, obj, **kwargs)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @display(description="Affiliate")
    def affiliate_link(self, affiliate: Affiliate) -> str:
        return link(reverse("admin:affiliates_affiliate_change", args=[affiliate.pk]), affiliate.full_name or affiliate)

    @display(description="Commission")
    def commission(self, affiliate: Affiliate) -> str:
        totals = commission_totals([affiliate.pk]).get(affiliate.pk, {"pending": {}, "approved": {}})
        return format_html("{} pending, {} approved", money_text(totals["pending"]), money_text(totals["approved"]))

    @display(description="Their conversions (latest 10)")
    def recent_conversions(self, affiliate: Affiliate) -> str:
        latest = list(Conversion.objects.filter(affiliate=affiliate).order_by("-created_at", "-id")[:10])
        if not latest:
            return "none yet"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    link(reverse("admin:affiliates_conversion_change", args=[c.pk]), c.order_id),
                    c.status,
                    money(c.commission, c.currency),
                    f"{c.created_at:%Y-%m-%d}",
                )
                for c in latest
            ),
        )
        more = link(conversions_url(affiliate__id__exact=affiliate.pk), "all conversions")
        return format_html(
            '<table class="sy-table sy-contact-conversions"><thead><tr><th>Order</th><th>Status</th><th>Commission</th>'
            "<th>Recorded</th></tr></thead><tbody>{}</tbody></table>{}",
            rows,
            more,
        )


class ContactOrderInline(TabularInline):
    """Orders this contact placed that an affiliate brought."""

    model = Conversion
    formset = DisplayOnlyFormSet
    fk_name = "buyer_contact"
    extra = 0
    can_delete = False
    per_page = 10
    fields = ("order_link", "affiliate_code", "status", "amount_text", "created_at")
    readonly_fields = fields
    ordering = ("-created_at",)
    verbose_name_plural = "orders referred by affiliates"
    tab = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("affiliate")

    @display(description="Order")
    def order_link(self, conversion: Conversion) -> str:
        return link(reverse("admin:affiliates_conversion_change", args=[conversion.pk]), conversion.order_id)

    @display(description="Affiliate")
    def affiliate_code(self, conversion: Conversion) -> str:
        return conversion.affiliate.referral_code if conversion.affiliate_id else "removed"

    @display(description="Amount")
    def amount_text(self, conversion: Conversion) -> str:
        return money(conversion.amount, conversion.currency)


register_contact_inline(ContactAffiliateInline)
register_contact_inline(ContactOrderInline)
