"""Cross-origin posts from a real headless Chromium: what its CORS checks let through.

The page is served from another origin (another port) than the live server, so every post is
cross-origin and preflighted, as from a customer's website. Skipped when Chromium is missing.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connections

from integrations.models import InboxMessage
from tests.conftest import make_integration

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium"),
]

POST = """async ({url, key, headers, body}) => {
    const response = await fetch(url, {
        method: "POST",
        headers: {"Authorization": "Basic " + btoa(key + ":"), ...headers},
        body: JSON.stringify(body),
    });
    return {
        status: response.status,
        body: await response.json(),
        reset: response.headers.get("X-RateLimit-Reset"),
        retryAfter: response.headers.get("Retry-After"),
    };
}"""


class Blank(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = b"<!doctype html><title>shop</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def shop_page(transactional_db, live_server, monkeypatch):
    """A tab on a page of another origin than the live server."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    site = ThreadingHTTPServer(("127.0.0.1", 0), Blank)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        with playwright_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            tab = browser.new_page()
            tab.goto(f"http://127.0.0.1:{site.server_port}/")
            yield tab
            browser.close()
    finally:
        site.shutdown()
        site.server_close()


def orm(query):
    """An ORM check while Playwright runs, releasing the connection it took (see the admin
    browser tests: otherwise PostgreSQL refuses to drop the test database)."""
    try:
        return query()
    finally:
        connections.close_all()


def test_a_retried_post_with_library_and_site_headers_passes_the_browsers_cors_checks(shop_page, live_server):
    _, key = orm(lambda: make_integration("segment", name="browser"))
    assert live_server.url.split(":")[-1] not in shop_page.url
    result = shop_page.evaluate(
        POST,
        {
            "url": f"{live_server.url}/v1/t",
            "key": key,
            # analytics.js on a retry, plus a header the site configured through its settings.
            "headers": {"Content-Type": "text/plain", "X-Retry-Count": "1", "X-Shop-Tag": "summer"},
            "body": {"type": "track", "event": "Viewed", "userId": "u1", "messageId": "cors-1"},
        },
    )
    assert result["status"] == 200
    assert result["body"] == {"success": True}
    # JSON and gzip, as server-side and RudderStack clients send them.
    result = shop_page.evaluate(
        POST,
        {
            "url": f"{live_server.url}/v1/batch",
            "key": key,
            "headers": {"Content-Type": "application/json", "AnonymousId": "YW5vbg==", "SentAt": "now"},
            "body": {"batch": [{"type": "page", "anonymousId": "anon", "messageId": "cors-2"}]},
        },
    )
    assert result["status"] == 200 and result["body"]["accepted"] == 1
    assert orm(lambda: set(InboxMessage.objects.values_list("message_id", flat=True))) == {"cors-1", "cors-2"}


def test_a_page_reads_when_to_come_back_after_a_429(shop_page, live_server):
    _, key = orm(lambda: make_integration("segment", name="capped", daily_cap=1))
    message = {"url": f"{live_server.url}/v1/t", "key": key, "headers": {"Content-Type": "text/plain"}}
    first = shop_page.evaluate(POST, {**message, "body": {"type": "track", "event": "E", "userId": "u1"}})
    assert first["status"] == 200
    second = shop_page.evaluate(POST, {**message, "body": {"type": "track", "event": "F", "userId": "u1"}})
    assert second["status"] == 429
    assert second["body"]["code"] == "rate_limited"
    assert 1 <= int(second["reset"]) <= 86400
    assert second["retryAfter"] == second["reset"]
