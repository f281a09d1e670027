"""analytics.js (@segment/analytics-next, the real browser bundle) in headless Chromium.

A shop page on its own origin loads the library, which posts cross-origin to a live
Switchyard, preflights included. Screenshots go to test-artifacts/ for a human look.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import segment.analytics as segment_python
from django.utils.dateparse import parse_datetime

from contacts.models import Contact
from integrations.drain import drain_inbox
from integrations.models import InboxMessage
from tests.clients.conftest import ARTIFACTS, orm, wait_for
from tests.conftest import make_integration

pytestmark = [pytest.mark.browser, pytest.mark.live]

TWO_HOURS = timedelta(hours=2)
FAST_CLOCK = """(() => {
  const RealDate = Date, skew = SKEW_MS
  class SkewedDate extends RealDate {
    constructor(...args) { if (args.length === 0) super(RealDate.now() + skew); else super(...args) }
    static now() { return RealDate.now() + skew }
  }
  window.Date = SkewedDate
})()"""


def open_shop(browser, page_origin: str, switchyard, key: str, *, api_host: str | None = None, skew_ms: int = 0):
    """A fresh browser profile on the shop page. Records every request and its answer."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    if skew_ms:
        # The visitor's clock runs ahead: Date is replaced before analytics.js loads.
        context.add_init_script(FAST_CLOCK.replace("SKEW_MS", str(skew_ms)))
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.requests, page.answers, page.failures = [], [], []
    page.on("request", lambda request: page.requests.append(request.url))
    page.on(
        "response",
        lambda response: page.answers.append(
            (response.url, response.status, response.request.headers.get("x-retry-count"))
        ),
    )
    page.on("requestfailed", lambda request: page.failures.append((request.url, request.failure)))
    api_host = api_host or f"127.0.0.1:{switchyard.port}/v1"
    page.goto(f"{page_origin}/?writeKey={key}&apiHost={api_host}")
    page.wait_for_function("window.analytics && typeof window.sendEvery === 'function'")
    return context, page


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def show_stored(page, count: int) -> None:
    """Say on the page, for the screenshot, how many calls Switchyard's inbox holds."""
    page.evaluate("n => { document.getElementById('status').textContent += `; ${n} stored by Switchyard` }", count)


def stored(integration):
    return list(InboxMessage.objects.filter(integration=integration).order_by("id"))


def only_local(page, *origins: str) -> list[str]:
    """Requests the page made anywhere but the shop and Switchyard: there must be none."""
    return [url for url in page.requests if not url.startswith(origins)]


@pytest.fixture
def restartable(switchyard):
    """The live server, as a process this test may stop and start again."""
    if not switchyard.restartable:
        pytest.skip("the outage needs Switchyard in a process of its own: run on PostgreSQL (DATABASE_URL)")
    return switchyard


def test_every_call_arrives_once_through_a_server_outage(restartable, browser, page_origin):
    """Calls keep coming while Switchyard is down for 5 seconds; analytics.js retries them
    (with X-Retry-Count, which the CORS preflight must allow) and each is stored once."""
    integration, key = orm(lambda: make_integration("segment", name="shop"))
    context, page = open_shop(browser, page_origin, restartable, key)
    total = 60
    page.evaluate(f"window.sendEvery(0, {total}, 150)")
    time.sleep(2.5)  # about a third of the calls are made while the server is up
    restartable.stop()
    outage_started = len(page.evaluate("window.sent"))
    time.sleep(5)
    restartable.start()  # the same port, a new process
    outage_ended = len(page.evaluate("window.sent"))
    page.wait_for_function(f"!window.sending && window.sent.length === {total}")
    sent = page.evaluate("window.sent")
    sent_ids = {call["messageId"] for call in sent}
    assert len(sent_ids) == total
    assert outage_ended - outage_started >= 10, "the outage must fall in the middle of sending"

    wait_for(lambda: len(orm(lambda: stored(integration))) >= total, seconds=45)
    rows = orm(lambda: stored(integration))
    show_stored(page, len(rows))
    shot(page, "analytics-js-outage")
    by_id = {row.message_id: row for row in rows}
    assert set(by_id) == sent_ids, (
        f"{len(sent_ids - set(by_id))} of {total} calls missing; extra {len(set(by_id) - sent_ids)}; "
        f"failed requests: {page.failures[-3:]}; answers: {[a for a in page.answers if a[1] >= 400][:3]}"
    )
    assert len(rows) == total  # once each, retries included
    kinds = {call["messageId"]: call["kind"] for call in sent}
    assert {row.type for row in rows} == {"track", "page", "identify", "group", "alias"}
    for row in rows:
        assert row.type == kinds[row.message_id]
        assert row.payload["context"]["library"]["name"] == "analytics.js"
    track = next(row for row in rows if row.type == "track")
    assert track.event == "Product Viewed" and track.payload["properties"]["sku"].startswith("sku-")

    # Calls made during the outage were retried, carrying X-Retry-Count, and those retries
    # were answered: the preflight allowed the header.
    assert page.failures, "the browser never saw the outage"
    retried = [answer for answer in page.answers if answer[2] is not None and "/v1/" in answer[0]]
    assert retried, "no retry carried X-Retry-Count"
    assert any(status == 200 for _, status, _ in retried), retried[:5]
    refused = [answer for answer in page.answers if "/v1/" in answer[0] and answer[1] not in (200, 204)]
    assert refused == []
    assert only_local(page, page_origin, restartable.url) == []
    context.close()


def test_an_api_host_ending_in_a_slash_still_arrives(browser, page_origin, switchyard):
    """A site configured with apiHost "host/v1/" makes analytics.js post to /v1//t."""
    integration, key = orm(lambda: make_integration("segment", name="slash"))
    context, page = open_shop(browser, page_origin, switchyard, key, api_host=f"127.0.0.1:{switchyard.port}/v1/")
    page.evaluate("window.sendEvery(0, 5, 20)")
    page.wait_for_function("!window.sending && window.sent.length === 5")
    sent_ids = {call["messageId"] for call in page.evaluate("window.sent")}
    wait_for(lambda: len(orm(lambda: stored(integration))) >= 5, seconds=20)
    rows = orm(lambda: stored(integration))
    show_stored(page, len(rows))
    shot(page, "analytics-js-trailing-slash")
    assert any("/v1//" in url for url in page.requests), page.requests
    assert {row.message_id for row in rows} == sent_ids, page.answers
    context.close()


def test_a_visitor_whose_clock_is_two_hours_fast(browser, page_origin, switchyard):
    """Segment's rule: timestamp = receivedAt - (sentAt - timestamp). The visitor's identify is
    stored at the true time, so a later identify from the customer's server still wins."""
    integration, key = orm(lambda: make_integration("segment", name="skewed"))
    context, page = open_shop(browser, page_origin, switchyard, key, skew_ms=int(TWO_HOURS.total_seconds() * 1000))
    before = datetime.now(UTC)
    page.evaluate("window.identifyAndTrack('skewed-1', {email: 'skew@example.com', plan: 'browser'}, 'Clicked')")
    wait_for(lambda: len(orm(lambda: stored(integration))) >= 2, seconds=20)
    after = datetime.now(UTC)
    rows = orm(lambda: stored(integration))
    show_stored(page, len(rows))
    shot(page, "analytics-js-fast-clock")
    context.close()
    assert len(rows) == 2, page.answers
    for row in rows:
        # The browser really was two hours ahead...
        sent_at = parse_datetime(row.payload["sentAt"])
        assert sent_at - after > TWO_HOURS - timedelta(minutes=1), row.payload["sentAt"]
        # ...and the event is stored when it happened.
        assert before - timedelta(seconds=5) <= row.timestamp <= after + timedelta(seconds=5), (
            row.type,
            row.timestamp,
            before,
        )
    orm(drain_inbox)

    # The customer's server identifies the same person a moment later, with a true clock.
    time.sleep(0.05)
    server_side = segment_python.Client(write_key=key, host=switchyard.url, sync_mode=True, max_retries=0)
    server_side.identify("skewed-1", {"plan": "server"})
    orm(drain_inbox)
    contact = orm(lambda: Contact.objects.get(user_id="skewed-1"))
    assert contact.email == "skew@example.com"
    assert contact.properties["plan"] == "server"
