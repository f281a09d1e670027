"""End to end in headless Chromium: a shop page on its own origin loads /capture.js from a live
Switchyard; the visitor browses a product, adds it to the cart and submits an email. After the
(shortened) delay the collector has the Grow identify and the Reclaim tracks in the seed's
shapes; suppression and the custom filters are honoured; an order completed stops Reclaim.
Screenshots land in test-artifacts/."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import time_machine
from django.template.loader import render_to_string
from django.utils import timezone

from contacts.services import suppressions_add
from integrations.capture.models import Visitor
from integrations.models import InboxMessage
from integrations.outbound.models import OutboxItem, OutboxSource, OutboxStatus
from tests.clients.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, Switchyard, database_url, free_port, orm
from tests.outbound.support import drain, send, source_integration

pytestmark = [pytest.mark.browser, pytest.mark.live]

GROW_TRAITS = {
    "address_city",
    "address_line_1",
    "address_postal",
    "address_state",
    "clicked_at",
    "created_at",
    "email",
    "email_domain",
    "extra_data",
    "first_name",
    "id",
    "landing_page_domain",
    "landing_page_url",
    "last_name",
    "page_title",
    "referrer",
    "updated_at",
}


class ShopHandler(BaseHTTPRequestHandler):
    """The company's own site: any path is the shop page (the landing page is its URL)."""

    def __init__(self, *args, page: dict, **kwargs):
        self.page = page
        super().__init__(*args, **kwargs)

    def do_GET(self):  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path == "/thanks":
            body = b"<!doctype html><title>Thanks</title><h1>Thanks! Check your inbox.</h1>"
        else:
            body = render_to_string("capture/shop.html", {**self.page, "title": f"Shop {path}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def live(django_db_setup, django_db_blocker, transactional_db):
    from django.db import connection

    with django_db_blocker.unblock():
        settings = dict(connection.settings_dict)
    server = Switchyard(free_port(), database_url(settings))
    try:
        server.start()
    except requests.ReadTimeout:
        # A busy machine: gunicorn is up but slow to answer its first request; give it longer.
        requests.options(f"{server.url}/v1/track", timeout=60)
    yield server
    server.stop()


@pytest.fixture
def browser(monkeypatch):
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    playwright_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def shop():
    page: dict = {}
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), partial(ShopHandler, page=page))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", page
    server.shutdown()
    server.server_close()


def visit(browser, url: str, email: str, *, add: bool = True, buy: bool = False, shot: str = ""):
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(url)
    page.wait_for_function("document.getElementById('status').textContent.includes('ready')")
    if add:
        page.click("#add")
    if buy:
        page.click("#buy")
    page.fill("input[name=email]", email)
    page.fill("input[name=first_name]", email.split("@")[0].title())
    if shot:
        page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
    page.click("button[type=submit]")
    page.wait_for_url("**/thanks**")
    anonymous_id = context.cookies()[0]["value"]
    # The email went out as the page navigated away (fetch with keepalive): the page itself may
    # see that request as aborted; whether it arrived is checked in the database.
    context.close()
    return anonymous_id


def stored_identify(integration, anonymous_id: str) -> bool:
    return InboxMessage.objects.filter(integration=integration, anonymous_id=anonymous_id, type="identify").exists()


def test_a_visit_becomes_grow_and_reclaim_at_the_collector(browser, live, shop, collector, settings):
    settings.OUTBOUND_DELAY_MINUTE_SECONDS = 3  # the one-minute delay lasts three seconds
    shop_url, page = shop
    integration = orm(
        lambda: source_integration(
            collector.url, allowed_origins=shop_url, send_delay_minutes=1, filter_landing_url="/products/"
        )
    )
    page.update(script_url=f"{live.url}/capture.js", site_key=integration.settings["site_key"])
    orm(lambda: suppressions_add(emails=["known@example.com"]))

    ada = visit(browser, f"{shop_url}/products/sprinkles?utm_source=ads", "ada@example.com", shot="capture-shop")
    known = visit(browser, f"{shop_url}/products/sprinkles", "known@example.com")
    buyer = visit(browser, f"{shop_url}/products/sprinkles", "buyer@example.com", buy=True)
    blog = visit(browser, f"{shop_url}/blog/recipes", "reader@example.com")
    for anonymous_id in (ada, known, buyer, blog):
        deadline = time.monotonic() + 30
        while not orm(lambda a=anonymous_id: stored_identify(integration, a)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert orm(lambda a=anonymous_id: stored_identify(integration, a)), "the email submitted on navigation was lost"

    orm(drain)
    orm(drain)  # the events that waited for the email
    visitor = orm(lambda: Visitor.objects.get(anonymous_id=ada))
    assert visitor.landing_page_url == f"{shop_url}/products/sprinkles?utm_source=ads"
    assert visitor.page_title == "Shop /products/sprinkles"
    grow = orm(lambda: OutboxItem.objects.get(email="ada@example.com", source=OutboxSource.GROW))
    assert grow.due_at == visitor.identified_at + timedelta(seconds=3)
    dues = orm(lambda: list(OutboxItem.objects.values_list("next_attempt_at", flat=True)))
    with time_machine.travel(min(dues) - timedelta(seconds=1), tick=False):
        assert orm(send)["done"] == 0 and collector.messages == []  # nothing before the delay
    time.sleep(max(0.0, (max(dues) - timezone.now()).total_seconds()) + 0.5)
    orm(send)

    identifies = {m["traits"]["email"]: m for m in collector.received(type="identify")}
    # The suppressed and the filtered visitors are not sent; the buyer is a new contact (Grow).
    assert set(identifies) == {"ada@example.com", "buyer@example.com"}
    identify = identifies["ada@example.com"]
    assert set(identify["traits"]) == GROW_TRAITS
    assert identify["traits"]["email"] == "ada@example.com"
    assert identify["traits"]["first_name"] == "Ada"
    assert identify["traits"]["landing_page_url"] == f"{shop_url}/products/sprinkles?utm_source=ads"
    assert identify["traits"]["landing_page_domain"] == "127.0.0.1"
    # Reclaim only for Ada: the buyer completed checkout, the others are suppressed or filtered.
    tracks = collector.received(type="track")
    assert {m["email"] for m in tracks} == {"ada@example.com"}
    reclaim = {m["event"]: m for m in tracks}
    assert set(reclaim) == {"Viewed Product Reclaim", "Add To Cart Reclaim"}, reclaim
    order = [m["messageId"] for m in collector.messages]
    assert all(order.index(identify["messageId"]) < order.index(m["messageId"]) for m in tracks)
    viewed = reclaim["Viewed Product Reclaim"]["properties"]
    assert viewed["EventSource"] == "Reclaim" and viewed["ProductID"] == 9229193849 and viewed["CurrencyPrice"] == "$47"
    added = reclaim["Add To Cart Reclaim"]["properties"]
    assert added["Quantity"] == 1 and added["Name"] == "Chocolate Sprinkles"

    reasons = orm(
        lambda: {
            (i.email, i.source): i.error
            for i in OutboxItem.objects.filter(status=OutboxStatus.SKIPPED).exclude(email="ada@example.com")
        }
    )
    assert reasons[("known@example.com", OutboxSource.GROW)] == "suppressed"
    assert reasons[("buyer@example.com", OutboxSource.RECLAIM)].startswith("checkout completed")
    assert reasons[("reader@example.com", OutboxSource.GROW)].startswith("filtered: landing page URL")
