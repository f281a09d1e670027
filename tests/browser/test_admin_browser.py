"""The admin in a real headless Chromium: log in, open the main pages, run an action.

Screenshots go to test-artifacts/ for a human look. Skipped when Chromium is not installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connections

from contacts.models import Contact
from tests.test_admin_support import make_superuser, populate

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
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


@pytest.fixture
def page(transactional_db, live_server, monkeypatch):
    playwright_api = pytest.importorskip("playwright.sync_api")
    # The sync API runs an event loop in this thread; Django's ORM calls from the test are still
    # sync. Scoped to the test: a leaked variable would fail `check --deploy` in later tests.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        yield tab
        context.close()
        browser.close()


def orm(query):
    """Run an ORM check once the browser is in use, then release the connection it took.

    Playwright's sync API switches greenlets, and Django keeps connections per context, so a
    query here opens a connection that teardown never sees; PostgreSQL would then refuse to
    drop the test database.
    """
    try:
        return query()
    finally:
        connections.close_all()


def log_in(page, base: str) -> None:
    make_superuser()
    page.goto(f"{base}/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw-for-tests-only")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_staff_walk_through_the_admin(page, live_server):
    world = populate()
    base = live_server.url
    log_in(page, base)
    assert "Switchyard" in page.title()
    shot(page, "admin-index")

    page.goto(f"{base}/admin/integrations/integration/")
    assert page.locator("#result_list tbody tr").count() == 1
    assert "Website" in page.inner_text("#result_list")
    shot(page, "integrations-changelist")

    page.click("text=Website")
    page.wait_for_selector(".sy-chart svg")
    help_texts = page.locator(".field-setting_unknown_traits .help").inner_text()
    assert "What to do with a trait" in help_texts
    shot(page, "integration-change")

    page.goto(f"{base}/admin/integrations/inboxmessage/")
    assert page.locator("#result_list tbody tr").count() == 3
    shot(page, "inbox-changelist")

    page.goto(f"{base}/admin/contacts/contact/")
    assert page.locator("#result_list tbody tr").count() == 2
    shot(page, "contacts-changelist")

    page.goto(f"{base}/admin/contacts/contact/{world['ada'].pk}/change/")
    assert "Signed Up" in page.inner_text(".field-timeline")
    assert "pro" in page.inner_text(".field-properties_table")
    shot(page, "contact-change")

    # Run an action the way staff do: tick a row, pick the action, press Go.
    page.goto(f"{base}/admin/contacts/contact/?q=u2")
    page.check("#result_list tbody input.action-select")
    page.select_option("select[name=action]", "unsubscribe")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")
    assert "Unsubscribed 1 contact(s)" in page.inner_text(".messagelist")
    shot(page, "contacts-unsubscribed")
    assert orm(lambda: Contact.objects.get(user_id="u2").subscribed) is False


def test_erase_asks_for_confirmation_in_the_browser(page, live_server):
    world = populate()
    base = live_server.url
    log_in(page, base)
    page.goto(f"{base}/admin/contacts/contact/?q=u1")
    page.check("#result_list tbody input.action-select")
    page.select_option("select[name=action]", "erase")
    page.click("button[name=index]")
    page.wait_for_selector("text=This cannot be undone")
    shot(page, "contact-erase-confirm")
    assert orm(lambda: Contact.objects.filter(pk=world["ada"].pk).exists())
    page.click("input[value='Yes, erase them']")
    page.wait_for_selector(".messagelist")
    assert "Erased 1 contact(s)" in page.inner_text(".messagelist")
    assert not orm(lambda: Contact.objects.filter(pk=world["ada"].pk).exists())
