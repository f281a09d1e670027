"""Orders attributed to affiliates by the drain (the segment and refersion kinds): by the buyer's
last click within the cookie window, else a referral code or a coupon; unqualified outside the
window and for self-referrals; one conversion per order; refunds reverse; commission from the
offer with the currency kept as given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from affiliates.models import Click, Conversion, Coupon
from affiliates.services import click_record
from contacts.models import Contact, ContactEvent
from tests.affiliates.conftest import apply, identify, make_affiliate, make_offer, page, track
from tests.conftest import make_integration

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def at(days: float = 0, **delta) -> str:
    return (T0 + timedelta(days=days, **delta)).isoformat().replace("+00:00", "Z")


def order(order_id: str = "o-1", *, total=120, currency="EUR", message_id=None, days=1, **properties):
    return {"order_id": order_id, "total": total, "currency": currency, **properties}


@pytest.fixture
def offer(db):
    return make_offer(commission_value=Decimal("10"), cookie_days=30)


@pytest.fixture
def peter(offer):
    affiliate = make_affiliate("PETER", email="peter@example.com", offer=offer)
    Coupon.objects.create(affiliate=affiliate, code="spring10")
    return affiliate


def click_at(affiliate, days: float, click_id: str) -> Click:
    with time_machine.travel(T0 + timedelta(days=days), tick=False):
        click = click_record(affiliate=affiliate, referrer="https://blog.example", user_agent="test")
    Click.objects.filter(pk=click.pk).update(click_id=click_id)
    click.click_id = click_id
    return click


def visit(click_id: str, *, anonymous_id: str = "anon-1", days: float = 0, code: str = "PETER", n: str = "1"):
    url = f"https://shop.example/landing?ref={code}&click_id={click_id}"
    return page(url, anonymous_id=anonymous_id, message_id=f"page-{click_id}-{n}", ts=at(days, minutes=1))


def completed(properties: dict, *, message_id: str = "oc-1", days: float = 1, **ids):
    ids = ids or {"anonymous_id": "anon-1"}
    return track("Order Completed", properties, message_id=message_id, ts=at(days), **ids)


# --- by click -------------------------------------------------------------------------------------------
def test_a_click_within_the_window_wins_the_order(segment_kind, peter):
    click = click_at(peter, 0, "click-a")
    rows = apply(segment_kind, visit("click-a"), completed(order(total=120, currency="EUR"), days=3))
    assert [r.status for r in rows] == ["waiting", "waiting"]  # an anonymous visitor nobody identified yet
    click.refresh_from_db()
    assert click.anonymous_id == "anon-1"  # tied to the visitor even while their calls wait
    # The visitor identifies; the waiting calls apply.
    apply(
        segment_kind, {**identify({"email": "buyer@example.com"}, user_id="buyer-1", ts=at(2)), "anonymousId": "anon-1"}
    )
    from integrations.drain import drain_inbox

    drain_inbox(max_seconds=10)
    conversion = Conversion.objects.get()
    assert (conversion.affiliate, conversion.click, conversion.attributed_by) == (peter, click, "click")
    assert (conversion.amount, conversion.currency, conversion.commission) == (Decimal("120"), "EUR", Decimal("12.00"))
    assert (conversion.status, conversion.reason) == ("pending", "")
    assert conversion.buyer_contact == Contact.objects.get(user_id="buyer-1")


def test_the_click_found_through_an_earlier_anonymous_id_of_the_buyer(segment_kind, peter):
    click_at(peter, 0, "click-a")
    identify_buyer = {
        **identify({"email": "buyer@example.com"}, user_id="buyer-1", ts=at(0, minutes=2)),
        "anonymousId": "anon-1",
    }
    apply(segment_kind, visit("click-a"), identify_buyer)
    # The order comes from the server with the userId only.
    (row,) = apply(segment_kind, completed(order(), user_id="buyer-1", days=5))
    assert row.status == "processed"
    assert Conversion.objects.get().attributed_by == "click"


def test_the_click_id_in_context_campaign_links_too(segment_kind, peter):
    click = click_at(peter, 0, "click-c")
    body = track(
        "Product Viewed",
        {},
        message_id="pv",
        user_id="buyer-1",
        ts=at(0, minutes=3),
        context={"campaign": {"ref": "PETER", "click_id": "click-c"}},
    )
    apply(segment_kind, body)
    click.refresh_from_db()
    assert click.user_id == "buyer-1"
    apply(segment_kind, completed(order(), user_id="buyer-1"))
    assert Conversion.objects.get().click == click


def test_the_last_click_wins(segment_kind, peter, offer):
    other = make_affiliate("OTHER", email="other@example.com", offer=offer)
    click_at(peter, 0, "click-p")
    click_at(other, 2, "click-o")
    rows = apply(
        segment_kind,
        {**visit("click-p"), "userId": "buyer-1"},
        {**visit("click-o", days=2, code="OTHER"), "userId": "buyer-1"},
        completed(order(), user_id="buyer-1", days=4),
    )
    assert rows[-1].status == "processed"
    assert Conversion.objects.get().affiliate == other
    # A click after the order does not take it back.
    click_at(peter, 5, "click-late")
    apply(
        segment_kind,
        {**visit("click-late", days=5), "userId": "buyer-1"},
        completed(order("o-2"), user_id="buyer-1", days=4.5, message_id="oc-2"),
    )
    assert Conversion.objects.get(order_id="o-2").affiliate == other


def test_a_click_outside_the_window_is_unqualified(segment_kind, peter):
    click_at(peter, 0, "click-a")
    apply(segment_kind, {**visit("click-a"), "userId": "buyer-1"})
    apply(segment_kind, completed(order(), user_id="buyer-1", days=31))
    conversion = Conversion.objects.get()
    assert (conversion.status, conversion.reason, conversion.commission) == (
        "unqualified",
        "outside the window",
        Decimal("0"),
    )
    assert conversion.affiliate == peter


def test_a_click_outside_the_window_loses_to_a_referral_code(segment_kind, peter, offer):
    other = make_affiliate("OTHER", email="other@example.com", offer=offer)
    click_at(peter, 0, "click-a")
    apply(segment_kind, {**visit("click-a"), "userId": "buyer-1"})
    apply(segment_kind, completed(order(referral_code="other"), user_id="buyer-1", days=40))
    conversion = Conversion.objects.get()
    assert (conversion.affiliate, conversion.attributed_by, conversion.status) == (other, "code", "pending")


# --- by code and coupon -------------------------------------------------------------------------------------
def test_a_referral_code_in_the_order_attributes_it(segment_kind, peter):
    (row,) = apply(segment_kind, completed(order(ref="peter"), user_id="buyer-1"))
    assert row.status == "processed" and row.warnings == []
    conversion = Conversion.objects.get()
    assert (conversion.affiliate, conversion.attributed_by, conversion.click) == (peter, "code", None)


def test_a_coupon_tied_to_the_affiliate_attributes_it(segment_kind, peter):
    apply(segment_kind, completed(order(coupon="Spring10"), user_id="buyer-1"))
    conversion = Conversion.objects.get()
    assert (conversion.affiliate, conversion.attributed_by) == (peter, "coupon")


def test_an_order_without_click_code_or_coupon_is_not_an_affiliates(segment_kind, peter):
    (row,) = apply(segment_kind, completed(order(coupon="NOBODY"), user_id="buyer-1"))
    assert row.status == "processed" and row.warnings == []
    assert not Conversion.objects.exists()
    assert ContactEvent.objects.get().name == "Order Completed"  # the contact's timeline as always


def test_denied_and_disabled_affiliates_earn_nothing(segment_kind, peter):
    peter.status = "disabled"
    peter.save()
    apply(segment_kind, completed(order(ref="PETER"), user_id="buyer-1"))
    assert not Conversion.objects.exists()


def test_a_pending_affiliates_order_is_a_pending_conversion(segment_kind, peter):
    peter.status = "pending"
    peter.save()
    apply(segment_kind, completed(order(ref="PETER"), user_id="buyer-1"))
    assert Conversion.objects.get().status == "pending"


def test_a_ref_on_the_site_without_our_click_id_is_a_click(segment_kind, peter):
    url = "https://shop.example/?ref=PETER"
    apply(
        segment_kind,
        page(url, anonymous_id="a-9", message_id="p1", ts=at(0), user_id="buyer-9"),
        page(url + "&page=2", anonymous_id="a-9", message_id="p2", ts=at(0, minutes=5), user_id="buyer-9"),
    )
    click = Click.objects.get()  # one visit, not one click per page
    assert (click.affiliate, click.source, click.user_id) == (peter, "landing", "buyer-9")
    assert (click.referrer, click.user_agent) == ("https://blog.example/post", "Mozilla/5.0 test")
    apply(segment_kind, completed(order(), user_id="buyer-9", days=2))
    assert Conversion.objects.get().attributed_by == "click"


def test_an_unknown_code_on_the_site_is_a_warning(segment_kind, peter):
    (row,) = apply(
        segment_kind, page("https://shop.example/?ref=NOBODY1", anonymous_id="a", message_id="p", ts=at(0), user_id="u")
    )
    assert row.status == "processed"
    assert row.warnings == ["referral code 'NOBODY1' is not an affiliate's"]


# --- unqualified ----------------------------------------------------------------------------------------------
def test_a_self_referral_is_unqualified(segment_kind, peter):
    apply(segment_kind, completed(order(ref="PETER", email="Peter@example.com"), user_id="buyer-1"))
    conversion = Conversion.objects.get()
    assert (conversion.status, conversion.reason, conversion.commission) == ("unqualified", "self-referral", 0)


def test_a_self_referral_by_the_buyers_contact_email(segment_kind, peter):
    apply(segment_kind, identify({"email": "peter@example.com"}, user_id="peter-u", ts=at(0)))
    apply(segment_kind, completed(order(ref="PETER"), user_id="peter-u"))
    assert Conversion.objects.get().reason == "self-referral"


def test_one_order_never_yields_two_conversions(segment_kind, peter):
    first = completed(order("o-1", ref="PETER"), user_id="buyer-1", message_id="m-1")
    again = completed(order("o-1", ref="PETER", total=999), user_id="buyer-1", message_id="m-2", days=1.1)
    rows = apply(segment_kind, first, again)
    assert [r.status for r in rows] == ["processed", "processed"]
    assert rows[1].warnings == ["duplicate order: order_id 'o-1' already has a conversion; one order never yields two"]
    # And in a later chunk.
    (row,) = apply(segment_kind, completed(order("o-1", ref="PETER"), user_id="buyer-1", message_id="m-3", days=2))
    conversion = Conversion.objects.get()
    assert row.warnings == [
        f"duplicate order: order_id 'o-1' already has a conversion (#{conversion.pk}); one order never yields two"
    ]
    assert (conversion.amount, conversion.duplicates) == (Decimal("120"), 2)


def test_the_same_message_applied_again_is_not_a_duplicate(segment_kind, peter):
    from integrations.drain import apply_rows
    from integrations.models import InboxMessage

    (row,) = apply(segment_kind, completed(order(ref="PETER"), user_id="buyer-1"))
    again = list(InboxMessage.objects.filter(pk=row.pk).select_related("integration"))
    apply_rows(again)
    assert again[0].warnings == []
    assert Conversion.objects.get().duplicates == 0


def test_malformed_order_properties_are_a_warning_and_the_event_is_kept(segment_kind, peter):
    (row,) = apply(segment_kind, completed({"order_id": "o-1", "total": "lots", "ref": "PETER"}, user_id="buyer-1"))
    assert row.status == "processed"
    assert row.warnings == ["properties.total must be a number, not 'lots'; not applied to affiliates"]
    assert not Conversion.objects.exists()
    assert ContactEvent.objects.count() == 1
    (row,) = apply(segment_kind, completed({"total": 5, "ref": "PETER"}, user_id="buyer-1", message_id="x"))
    assert row.warnings == ["properties.order_id is required (a string or a number); not applied to affiliates"]


# --- refunds ------------------------------------------------------------------------------------------------
PRODUCTS = [
    {"sku": "SKU-A", "price": 20, "quantity": 2},
    {"sku": "SKU-B", "price": 80, "quantity": 1},
]


def test_a_full_refund_reverses_the_conversion(segment_kind, peter):
    apply(segment_kind, completed(order(ref="PETER", products=PRODUCTS), user_id="buyer-1"))
    (row,) = apply(
        segment_kind, track("Order Refunded", {"order_id": "o-1"}, message_id="r-1", user_id="buyer-1", ts=at(5))
    )
    assert row.status == "processed" and row.warnings == []
    conversion = Conversion.objects.get()
    assert (conversion.status, conversion.commission, conversion.reversed_commission) == (
        "reversed",
        Decimal("0"),
        Decimal("12.00"),
    )
    assert conversion.refunded_amount == Decimal("120")


def test_a_partial_refund_reverses_the_refunded_products(segment_kind, peter):
    apply(segment_kind, completed(order(total=120, ref="PETER", products=PRODUCTS), user_id="buyer-1"))
    refund_one = {"order_id": "o-1", "products": [{"sku": "SKU-A", "quantity": 1}]}
    apply(segment_kind, track("Order Refunded", refund_one, message_id="r-1", user_id="buyer-1", ts=at(5)))
    conversion = Conversion.objects.get()
    assert (conversion.status, conversion.commission, conversion.reversed_commission) == (
        "pending",
        Decimal("10.00"),
        Decimal("2.00"),
    )
    assert conversion.refunded_amount == Decimal("20")
    # The rest of the order, then: reversed.
    rest = {"order_id": "o-1", "products": [{"sku": "SKU-A", "quantity": 1}, {"sku": "SKU-B", "quantity": 1}]}
    apply(segment_kind, track("Order Refunded", rest, message_id="r-2", user_id="buyer-1", ts=at(6)))
    conversion.refresh_from_db()
    assert (conversion.status, conversion.commission, conversion.reversed_commission) == (
        "reversed",
        Decimal("0"),
        Decimal("12.00"),
    )


def test_a_refund_applied_twice_takes_back_once(segment_kind, peter):
    from integrations.drain import apply_rows
    from integrations.models import InboxMessage

    apply(segment_kind, completed(order(ref="PETER", products=PRODUCTS), user_id="buyer-1"))
    refund = {"order_id": "o-1", "products": [{"sku": "SKU-A", "quantity": 1}]}
    (row,) = apply(segment_kind, track("Order Refunded", refund, message_id="r-1", user_id="buyer-1", ts=at(5)))
    apply_rows(list(InboxMessage.objects.filter(pk=row.pk).select_related("integration")))
    assert Conversion.objects.get().commission == Decimal("10.00")


def test_a_refund_of_a_product_not_in_the_order_is_a_warning(segment_kind, peter):
    apply(segment_kind, completed(order(ref="PETER", products=PRODUCTS), user_id="buyer-1"))
    refund = {"order_id": "o-1", "products": [{"sku": "SKU-Z", "quantity": 1}]}
    (row,) = apply(segment_kind, track("Order Refunded", refund, message_id="r-1", user_id="buyer-1", ts=at(5)))
    assert row.warnings == ["product 'SKU-Z' is not in order 'o-1', or was refunded already"]
    assert Conversion.objects.get().commission == Decimal("12.00")


def test_a_refund_of_an_order_no_affiliate_brought_changes_nothing(segment_kind, peter):
    (row,) = apply(segment_kind, track("Order Refunded", {"order_id": "x"}, message_id="r", user_id="b", ts=at(5)))
    assert row.status == "processed" and row.warnings == []


# --- commission ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("commission_type", "value", "sku_rates", "expected"),
    [
        # 25% of SKU-B's line (80 → 20) + 10% of the rest of the total (130 - 80 = 50 → 5).
        ("percent", "10", {"SKU-B": 25}, "25.00"),
        ("percent", "10", {}, "13.00"),
        # 3 per item for SKU-A (2 items) + SKU-B's own 7.50.
        ("flat_item", "3", {"SKU-B": "7.5"}, "13.50"),
        # 5 for the order (SKU-A is not rated) + 7.50 for SKU-B's item.
        ("flat_order", "5", {"SKU-B": "7.5"}, "12.50"),
        ("flat_order", "5", {}, "5.00"),
    ],
)
def test_commission_from_the_offer_with_per_sku_rates_and_the_currency_as_given(
    segment_kind, commission_type, value, sku_rates, expected
):
    offer = make_offer(commission_type=commission_type, commission_value=Decimal(value), sku_rates=sku_rates)
    make_affiliate("PETER", offer=offer)
    properties = order(total=130, currency="jpy", ref="PETER", products=PRODUCTS)
    apply(segment_kind, completed(properties, user_id="buyer-1"))
    conversion = Conversion.objects.get()
    assert conversion.commission == Decimal(expected)
    assert (conversion.amount, conversion.currency) == (Decimal("130"), "jpy")


def test_revenue_stands_in_for_a_missing_total(segment_kind, peter):
    apply(
        segment_kind, completed({"order_id": "o-1", "revenue": "99.90", "currency": "USD", "ref": "PETER"}, user_id="b")
    )
    conversion = Conversion.objects.get()
    assert (conversion.amount, conversion.commission) == (Decimal("99.90"), Decimal("9.99"))


# --- the refersion kind applies orders too; the segment kind costs nothing without them ---------------------------
def test_the_refersion_kind_applies_order_events(db, peter):
    integration, _key = make_integration("refersion")
    apply(integration, completed(order(ref="PETER"), user_id="buyer-1"))
    assert Conversion.objects.get().affiliate == peter


def test_a_chunk_without_orders_or_referral_parameters_opens_no_affiliates_batch(segment_kind, peter):
    from contacts.batch import ContactBatch
    from integrations.inbound.spec import normalize
    from integrations.models import InboxMessage

    def rows(*payloads):
        return [
            InboxMessage(integration=segment_kind, **normalize(p, path_type=None, received_at=T0)) for p in payloads
        ]

    behaviour = segment_kind.behaviour()
    plain = rows(identify({"email": "a@example.com"}), track("Signed Up", {}, message_id="s", user_id="u", ts=at(0)))
    assert type(behaviour.open_batch(plain)) is ContactBatch
    ordered = rows(completed(order(), user_id="u"))
    assert type(behaviour.open_batch(ordered)) is not ContactBatch
