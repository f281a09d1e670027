"""End to end: in headless Chromium a visitor follows an affiliate's referral link on a live
Switchyard, lands on a shop page of another origin that sends its page call (with its URL) to
Switchyard through analytics.js, signs in and orders; the drain attributes the order, and the
staff API shows the conversion. A screenshot of the landing page goes to test-artifacts/."""

from __future__ import annotations

import threading
from decimal import Decimal
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from affiliates.models import Affiliate, Click, Offer
from integrations.drain import drain_inbox
from tests.clients.conftest import ANALYTICS_JS, ARTIFACTS, PageHandler, free_port, orm, wait_for
from tests.conftest import make_integration

pytestmark = [pytest.mark.browser, pytest.mark.live]
HERE = Path(__file__).resolve().parent


class ShopHandler(PageHandler):
    files = {
        "/shop": (HERE / "shop.html", "text/html; charset=utf-8"),
        "/analytics-next.js": (ANALYTICS_JS, "text/javascript; charset=utf-8"),
    }


@pytest.fixture
def shop():
    if not ANALYTICS_JS.exists():
        pytest.skip("@segment/analytics-next is not installed: run `make node-install` (npm ci)")
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), partial(ShopHandler, directory=str(HERE)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_referral_link_click_page_call_and_order_end_as_a_conversion_in_the_api(switchyard, shop, browser):
    def set_up():
        _integration, key = make_integration("segment", name="shop website")
        offer = Offer.objects.create(
            name="Launch",
            commission_type="percent",
            commission_value=Decimal("10"),
            sku_rates={"TEE-2": 50},
            landing_url=f"{shop}/shop?writeKey={key}&apiHost=127.0.0.1:{switchyard.port}/v1",
        )
        affiliate = Affiliate.objects.create(
            email="peter@example.com", referral_code="PETER", status="active", offer=offer
        )
        user = get_user_model().objects.create_user("script", password="x", is_staff=True)
        return affiliate.pk, Token.objects.create(user=user).key

    affiliate_id, token = orm(set_up)
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{switchyard.url}/r/peter", referer="https://blog.example/best-mugs")
    # The link recorded a click and sent the visitor on with ref and click_id.
    landed = urlsplit(page.url)
    assert f"{landed.scheme}://{landed.netloc}{landed.path}" == f"{shop}/shop"
    query = parse_qs(landed.query)
    assert query["ref"] == ["PETER"]
    click = orm(lambda: Click.objects.get())
    assert query["click_id"] == [click.click_id]
    assert click.referrer == "https://blog.example/best-mugs"
    page.wait_for_function("window.done.includes('page')")
    page.screenshot(path=str(ARTIFACTS / "affiliates-landing.png"), full_page=True)

    # The page call reached Switchyard; the drain ties the click to the visitor.
    def drained_click():
        drain_inbox(max_seconds=10)
        found = Click.objects.get()
        return found if found.anonymous_id else None

    click = wait_for(lambda: orm(drained_click), seconds=30)
    assert click and click.anonymous_id

    page.evaluate("window.checkout('order-1001')")
    page.wait_for_function("window.done.includes('order')")
    context.close()

    api = f"{switchyard.url}/api/v1/conversions/?affiliate={affiliate_id}"

    def conversions():
        orm(lambda: drain_inbox(max_seconds=10))
        body = requests.get(api, headers={"Authorization": f"Token {token}"}, timeout=10).json()
        return body["results"] if body.get("count") else None

    results = wait_for(conversions, seconds=30)
    assert results, "the order never became a conversion"
    (conversion,) = results
    # 50% of the tee's line (20) + 10% of the rest of the total (59.90 - 20 = 39.90).
    assert {k: conversion[k] for k in ("affiliate", "order_id", "amount", "currency", "commission", "status")} == {
        "affiliate": affiliate_id,
        "order_id": "order-1001",
        "amount": "59.90",
        "currency": "EUR",
        "commission": "13.99",
        "status": "pending",
    }
