"""The admin in a real headless Chromium, as staff use it: the dashboard, the inbox, an
integration (added through the form, its key shown once), a contact and the suppressions.

Screenshots go to test-artifacts/ for a human look. Skipped when Chromium is not installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connections

from contacts.models import Contact, Suppression
from integrations.models import InboxMessage, InboxStatus, Integration
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
# A common laptop screen: every list must fit it without scrolling sideways.
LAPTOP = {"width": 1366, "height": 768}

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
        context = browser.new_context(viewport=LAPTOP)
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        failed = []
        # Every asset the pages load comes from Switchyard itself and loads.
        tab.on("requestfailed", lambda request: failed.append(request.url))
        tab.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
        tab.failed_requests = failed
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
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_selector("#site-name")


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def assert_styled(page) -> None:
    """The theme's stylesheet applied (not a bare HTML page), and nothing failed to load."""
    assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith("Inter")
    assert page.evaluate("[...document.styleSheets].some(s => (s.href || '').includes('unfold/css/styles.css'))")
    local = [url for url in page.failed_requests if "/static/" in url]
    assert local == [], local


def assert_fits(page, selector: str) -> None:
    """Nothing sticks out past the right edge of the window."""
    right = page.evaluate(f"document.querySelector('{selector}').getBoundingClientRect().right")
    assert right <= LAPTOP["width"], f"{selector} ends at {right}px"
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]


def chart_drawn(page, selector: str = "canvas.chart") -> bool:
    return page.evaluate(
        f"[...document.querySelectorAll('{selector}')].every(c => c.width > 100 && Chart.getChart(c) !== undefined)"
    )


def test_dashboard_shows_the_pipe_at_a_glance(page, live_server):
    populate()
    orm(lambda: InboxMessage.objects.filter(message_id="m-track-1").update(status=InboxStatus.FAILED, reason="boom"))
    base = live_server.url
    log_in(page, base)
    assert "Switchyard" in page.title()
    page.wait_for_selector("#sy-dashboard")
    assert_styled(page)
    assert chart_drawn(page)
    health = page.inner_text("#sy-health")
    assert "Website" in health and "ago" in health
    assert page.inner_text("#sy-rejected").strip() == "1"
    assert_fits(page, "#sy-dashboard")
    shot(page, "dashboard")
    # Each figure opens the list behind it: the failed count of Website.
    page.locator("#sy-health tr", has_text="Website").locator("a.sy-failed").click()
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 1
    assert "boom" in page.inner_text("#result_list")


def test_inbox_fits_a_laptop_and_retry_asks_first(page, live_server):
    populate()
    orm(lambda: InboxMessage.objects.filter(message_id="m-track-1").update(status=InboxStatus.FAILED, reason="x" * 300))
    base = live_server.url
    log_in(page, base)
    page.goto(f"{base}/admin/integrations/inboxmessage/")
    assert page.locator("#result_list tbody tr").count() == orm(lambda: InboxMessage.objects.count())
    shot(page, "inbox-changelist")
    assert_styled(page)
    assert_fits(page, "#result_list")
    text = page.inner_text("#result_list")
    assert "FAILED" in text.upper() and "…" in text and "Signed Up" in text

    row = orm(lambda: InboxMessage.objects.get(message_id="m-track-1"))
    page.goto(f"{base}/admin/integrations/inboxmessage/{row.pk}/change/")
    shot(page, "inbox-message")
    page.click("text=Retry")
    page.wait_for_selector("#sy-confirm")
    shot(page, "inbox-retry-confirm")
    assert orm(lambda: InboxMessage.objects.get(pk=row.pk).status) == "failed"
    page.click("button[name=sy-confirm]")
    page.wait_for_selector("text=back to pending")
    assert orm(lambda: InboxMessage.objects.get(pk=row.pk).status) == "pending"


def test_adding_an_integration_shows_its_settings_then_its_key_once(page, live_server):
    populate()
    base = live_server.url
    log_in(page, base)
    page.goto(f"{base}/admin/integrations/integration/add/")
    assert not page.is_visible("#id_setting_promoter__event_filter")
    # An outbound kind takes no inbound requests: no cap, no signature secret.
    page.select_option("#id_kind", "segment_source")
    page.wait_for_selector("#id_daily_cap", state="hidden")
    assert page.is_visible("#id_setting_segment_source__write_key")
    page.select_option("#id_kind", "promoter")
    # The kind's settings appear as soon as it is chosen, with their help.
    page.wait_for_selector("#id_setting_promoter__event_filter", state="visible")
    assert not page.is_visible("#id_setting_loops__unknown_traits")
    assert page.is_visible("#id_daily_cap")
    # Promoter suggests a daily cap: filled in with the kind.
    assert page.input_value("#id_daily_cap") == "50000"
    shot(page, "integration-add")
    page.fill("#id_name", "Promoter NPS")
    page.click("button[name=_save]")
    page.wait_for_selector("#sy-new-key")
    key = page.inner_text("#sy-new-key").strip()
    assert "." in key and key in page.inner_text("#sy-snippet-js") and key in page.inner_text("#sy-snippet-python")
    assert "/v1/destination" in page.inner_text("#sy-snippet-webhooks")
    shot(page, "integration-key")
    page.reload()
    assert key not in page.content() and "already shown" in page.content()


def test_integration_page_chart_health_and_rotation(page, live_server):
    world = populate()
    base = live_server.url
    log_in(page, base)
    page.goto(f"{base}/admin/integrations/integration/")
    assert_fits(page, "#result_list")
    shot(page, "integrations-changelist")
    page.click("text=Website")
    page.wait_for_selector("canvas.chart")
    assert chart_drawn(page)
    assert page.is_visible("#id_daily_cap") and page.is_visible("#id_shared_secret")
    assert page.is_visible("#id_setting_event_filter")
    help_texts = page.inner_text(".field-setting_unknown_traits")
    assert "What to do with a trait" in help_texts
    assert "ago" in page.inner_text(".sy-health")
    shot(page, "integration-change")
    page.click("text=Rotate key")
    page.wait_for_selector("#sy-confirm")
    shot(page, "integration-rotate-confirm")
    page.click("button[name=sy-confirm]")
    page.wait_for_selector("#sy-new-key")
    integration = orm(lambda: Integration.objects.get(pk=world["integration"].pk))
    assert orm(lambda: integration.api_keys.filter(revoked_at__isnull=True).count()) == 1


def test_contact_page_timeline_properties_and_buttons(page, live_server):
    world = populate()
    base = live_server.url
    log_in(page, base)
    page.goto(f"{base}/admin/contacts/contact/")
    assert page.locator("#result_list tbody tr").count() == orm(lambda: Contact.objects.count())
    assert_fits(page, "#result_list")
    shot(page, "contacts-changelist")

    page.goto(f"{base}/admin/contacts/contact/{world['ada'].pk}/change/")
    assert_styled(page)
    shot(page, "contact-change")
    # The timeline is the first tab: open on arrival.
    page.wait_for_selector("#sy-timeline", state="visible")
    timeline = page.inner_text("#sy-timeline")
    assert "Signed Up" in timeline and "Analytical Engines" in timeline and "inbox #" in timeline
    shot(page, "contact-timeline")

    page.locator("#content").get_by_text("Properties", exact=True).click()
    page.fill("#id_prop__plan", "team")
    page.click("button[name=_continue]")
    page.wait_for_selector(".messagelist, #main")
    assert orm(lambda: Contact.objects.get(pk=world["ada"].pk).properties["plan"]) == "team"

    page.click("text=Unsubscribe")
    page.wait_for_selector("#sy-confirm")
    page.click("button[name=sy-confirm]")
    page.wait_for_selector("text=Resubscribe")
    assert orm(lambda: Contact.objects.get(pk=world["ada"].pk).subscribed) is False
    shot(page, "contact-unsubscribed")


def test_erase_asks_for_confirmation_in_the_browser(page, live_server):
    world = populate()
    base = live_server.url
    log_in(page, base)
    page.goto(f"{base}/admin/contacts/contact/{world['ada'].pk}/change/")
    page.click("text=Erase")
    page.wait_for_selector("text=This cannot be undone")
    shot(page, "contact-erase-confirm")
    assert orm(lambda: Contact.objects.filter(pk=world["ada"].pk).exists())
    page.click("button[name=sy-confirm]")
    page.wait_for_selector("text=Erased ada@example.com")
    assert not orm(lambda: Contact.objects.filter(pk=world["ada"].pk).exists())


def test_suppressions_show_contacts_and_lift_asks_first(page, live_server):
    world = populate()
    from contacts.services import contact_unsubscribe

    orm(lambda: contact_unsubscribe(contacts=[world["ada"]], reason="test"))
    base = live_server.url
    log_in(page, base)
    page.goto(f"{base}/admin/contacts/suppression/")
    listing = page.inner_text("#result_list")
    assert "ada@example.com" in listing  # the contact behind the MD5, not the hash
    assert_fits(page, "#result_list")
    shot(page, "suppressions-changelist")
    rows = orm(lambda: Suppression.objects.count())
    page.check("#result_list tbody input.action-select >> nth=0")
    page.select_option("select[name=action]", "lift")
    page.click("button[name=index]")
    page.wait_for_selector("#sy-confirm")
    shot(page, "suppressions-lift-confirm")
    assert orm(lambda: Suppression.objects.count()) == rows
    page.click("button[name=sy-confirm]")
    page.wait_for_selector("text=Lifted 1 suppression(s).")
    assert orm(lambda: Suppression.objects.count()) == rows - 1
