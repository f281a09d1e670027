"""The affiliates admin: lists with filters and search, the affiliate page (figures, referral
quality, chart, inlines, contact), status actions that ask first and say what they did,
conversions with approve/deny, payouts with a CSV export, and the contact page's affiliate."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from affiliates.models import Affiliate, Click, Conversion, Coupon
from common import clock
from contacts.models import Contact
from tests.affiliates.conftest import make_affiliate, make_offer

NOW = datetime(2024, 6, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def program(db):
    with time_machine.travel(NOW, tick=False):
        offer = make_offer(name="Spring", auto_approve_days=14)
        contact = Contact.objects.create(email="peter@example.com", user_id="5678")
        peter = make_affiliate(
            "PETER",
            email="peter@example.com",
            user_id="5678",
            offer=offer,
            contact=contact,
            properties={"vip": True},
            properties_changed_at={"vip": "2024-06-01T00:00:00.000000+00:00"},
        )
        other = make_affiliate("OTHER", email="other@example.com", offer=offer, status="pending")
        Coupon.objects.create(affiliate=peter, code="SPRING10")
        click = Click.objects.create(
            affiliate=peter,
            click_id="click-1",
            clicked_at=NOW - timedelta(days=3),
            referrer="https://blog.example",
            anonymous_id="anon-1",
        )
        buyers = [
            Contact.objects.create(email=f"b{n}@example.com", properties={"nps_score": score})
            for n, score in enumerate([10, 9, 3])
        ]
        rows = [
            ("o-1", "pending", "10", "EUR", buyers[0], 0),
            ("o-2", "approved", "20", "EUR", buyers[1], 0),
            ("o-3", "approved", "5", "USD", buyers[2], 30),
            ("o-4", "unqualified", "0", "EUR", None, 0),
        ]
        for order_id, status, commission, currency, buyer, refunded in rows:
            Conversion.objects.create(
                affiliate=peter,
                offer=offer,
                click=click,
                order_id=order_id,
                amount=Decimal("100"),
                currency=currency,
                commission=Decimal(commission),
                status=status,
                buyer_contact=buyer,
                refunded_amount=Decimal(refunded),
                order_at=NOW - timedelta(days=2),
                created_at=NOW - timedelta(days=2),
                approved_at=NOW - timedelta(days=1) if status == "approved" else None,
                reason="self-referral" if status == "unqualified" else "",
            )
    return {"offer": offer, "peter": peter, "other": other, "contact": contact}


def get(client, url):
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def test_the_affiliate_list_has_totals_filters_and_search(staff, program):
    html = get(staff, reverse("admin:affiliates_affiliate_changelist"))
    assert "PETER" in html and "OTHER" in html
    assert "10.00 EUR" in html  # pending
    assert "20.00 EUR + 5.00 USD" in html  # approved, per currency
    html = get(staff, reverse("admin:affiliates_affiliate_changelist") + "?status__exact=pending")
    assert "OTHER" in html and "PETER" not in html
    html = get(staff, reverse("admin:affiliates_affiliate_changelist") + f"?offer__id__exact={program['offer'].pk}")
    assert "PETER" in html
    for term in ("peter@", "peter", "5678", "Aff"):
        html = get(staff, reverse("admin:affiliates_affiliate_changelist") + f"?q={term}")
        assert "PETER" in html, term


def test_the_affiliate_page_shows_figures_quality_chart_inlines_and_contact(staff, program):
    peter = program["peter"]
    with time_machine.travel(NOW, tick=False):
        html = get(staff, reverse("admin:affiliates_affiliate_change", args=[peter.pk]))
    assert "sy-affiliate-figures" in html and "sy-weekly" in html
    # NPS of the customers referred (10 and 9 promoters, 3 a detractor): (2 - 1) / 3.
    assert '33 <span class="sy-muted">(3 responses)</span>' in html
    assert '33.3% <span class="sy-muted">(1 of 3 orders)</span>' in html
    assert "o-1" in html and "click-1" in html
    assert "anon-1" in html and "SPRING10" in html
    assert reverse("admin:contacts_contact_change", args=[program["contact"].pk]) in html
    assert "sy-affiliate-properties" in html and "2024-06-01 00:00:00" in html
    assert f"/r/{peter.referral_code}" in html


def test_no_surveys_yet(staff, program):
    Contact.objects.exclude(pk=program["contact"].pk).update(properties={})
    html = get(staff, reverse("admin:affiliates_affiliate_change", args=[program["peter"].pk]))
    assert "no surveys yet" in html


def test_status_buttons_ask_first_then_say_what_they_did(staff, program):
    other = program["other"]
    url = reverse("admin:affiliates_affiliate_approve_one", args=[other.pk])
    page = get(staff, url)
    assert "They are pending now." in page
    other.refresh_from_db()
    assert other.status == "pending"
    response = staff.post(url, {"confirm": "yes"}, follow=True)
    assert "Approved 1 affiliate(s)." in response.content.decode()
    other.refresh_from_db()
    assert other.status == "active"
    response = staff.post(
        reverse("admin:affiliates_affiliate_deny_one", args=[other.pk]), {"confirm": "yes"}, follow=True
    )
    assert "Denied 0 affiliate(s); 1 left as they were (active)." in response.content.decode()


def test_bulk_status_actions_report_counts(staff, program):
    ids = [program["peter"].pk, program["other"].pk]
    response = staff.post(
        reverse("admin:affiliates_affiliate_changelist"),
        {"action": "disable", "_selected_action": ids},
        follow=True,
    )
    assert "Disabled 2 affiliate(s)." in response.content.decode()
    assert set(Affiliate.objects.values_list("status", flat=True)) == {"disabled"}


def test_adding_an_affiliate_makes_a_code_and_links_the_contact(staff, program):
    response = staff.post(
        reverse("admin:affiliates_affiliate_add"),
        {
            "email": "New@Example.com",
            "first_name": "New",
            "last_name": "One",
            "address": "{}",
            "status": "pending",
            "offer": program["offer"].pk,
            "referral_code": "",
            "user_id": "",
            "coupons-TOTAL_FORMS": "1",
            "coupons-INITIAL_FORMS": "0",
            "coupons-0-code": "new5",
            "conversions-TOTAL_FORMS": "0",
            "conversions-INITIAL_FORMS": "0",
            "clicks-TOTAL_FORMS": "0",
            "clicks-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    new = Affiliate.objects.get(email="new@example.com")
    assert len(new.referral_code) == 8
    assert new.coupons.get().code == "NEW5"


def test_conversions_list_approve_and_deny(staff, program):
    html = get(staff, reverse("admin:affiliates_conversion_changelist") + "?status__exact=pending")
    assert "o-1" in html and "o-2" not in html
    assert "o-3" in get(staff, reverse("admin:affiliates_conversion_changelist") + "?q=o-3")
    pending = Conversion.objects.get(order_id="o-1")
    page = get(staff, reverse("admin:affiliates_conversion_approve_one", args=[pending.pk]))
    assert "cannot be denied later" in page
    response = staff.post(
        reverse("admin:affiliates_conversion_approve_one", args=[pending.pk]), {"confirm": "yes"}, follow=True
    )
    assert "Approved 1 conversion(s)." in response.content.decode()
    approved = Conversion.objects.filter(status="approved").values_list("pk", flat=True)
    response = staff.post(
        reverse("admin:affiliates_conversion_changelist"),
        {"action": "deny_selected", "_selected_action": list(approved)},
        follow=True,
    )
    assert "Denied 0 conversion(s); 3 not: approved conversions cannot be denied; only a refund reverses them." in (
        response.content.decode()
    )
    html = get(staff, reverse("admin:affiliates_conversion_change", args=[pending.pk]))
    assert "the buyer&#x27;s contact" in html or "the buyer's contact" in html


def test_payouts_per_affiliate_and_month_with_a_csv_export(staff, program):
    url = reverse("admin:affiliates_conversion_payouts_page")
    with time_machine.travel(NOW, tick=False):
        html = get(staff, url)
        assert "sy-payout-rows" in html
        assert "2024-06" in html and "PETER" in html
        response = staff.get(url + "?from=2024-01&to=2024-06&format=csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_currency = {r["currency"]: r for r in rows}
    assert by_currency["EUR"]["approved_commission"] == "20.00"
    assert by_currency["EUR"]["pending_commission"] == "10.00"
    assert by_currency["USD"]["approved_commission"] == "5.00"
    assert {r["referral_code"] for r in rows} == {"PETER"}
    assert get(staff, url + "?from=garbage").count("Months are YYYY-MM") == 1


def test_the_contact_page_shows_the_affiliate_and_their_conversions(staff, program):
    html = get(staff, reverse("admin:contacts_contact_change", args=[program["contact"].pk]))
    assert reverse("admin:affiliates_affiliate_change", args=[program["peter"].pk]) in html
    assert "sy-contact-conversions" in html and "o-2" in html
    buyer = Contact.objects.get(email="b0@example.com")
    html = get(staff, reverse("admin:contacts_contact_change", args=[buyer.pk]))
    assert "orders referred by affiliates" in html.lower() and "o-1" in html


def test_every_affiliates_page_opens(staff, program):
    for model in ("affiliate", "offer", "conversion", "click"):
        get(staff, reverse(f"admin:affiliates_{model}_changelist"))
        obj = {
            "affiliate": program["peter"],
            "offer": program["offer"],
            "conversion": Conversion.objects.first(),
            "click": Click.objects.first(),
        }[model]
        get(staff, reverse(f"admin:affiliates_{model}_change", args=[obj.pk]))
    get(staff, reverse("admin:affiliates_offer_add"))
    get(staff, reverse("admin:affiliates_affiliate_add"))
    html = get(staff, reverse("admin:index"))
    assert reverse("admin:affiliates_conversion_payouts_page") in html
    assert clock.now()


def test_the_contact_page_links_an_affiliate_added_before_the_contact(staff, db):
    affiliate = make_affiliate("EARLY", email="early@example.com")
    contact = Contact.objects.create(email="early@example.com")
    html = get(staff, reverse("admin:contacts_contact_change", args=[contact.pk]))
    assert reverse("admin:affiliates_affiliate_change", args=[affiliate.pk]) in html
    affiliate.refresh_from_db()
    assert affiliate.contact == contact
