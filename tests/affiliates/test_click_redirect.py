"""GET /r/CODE (CONTRACT.md "Affiliates"): a click recorded and a 302 to the landing page with
?ref=CODE&click_id=… added; a bad code is a friendly 404, never a 500."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from affiliates.models import Click
from tests.affiliates.conftest import make_affiliate, make_offer


@pytest.fixture
def peter(db):
    return make_affiliate("PETER", offer=make_offer(landing_url="https://shop.example/welcome?utm_source=aff&ref=old"))


def test_the_link_records_a_click_and_redirects_with_ref_and_click_id(client, peter):
    response = client.get("/r/PETER", HTTP_REFERER="https://blog.example/post", HTTP_USER_AGENT="Mozilla/5.0 test")
    assert response.status_code == 302
    assert response["Cache-Control"].startswith("max-age=0")
    url = urlsplit(response["Location"])
    assert (url.scheme, url.netloc, url.path) == ("https", "shop.example", "/welcome")
    query = parse_qs(url.query)
    click = Click.objects.get()
    assert query == {"utm_source": ["aff"], "ref": ["PETER"], "click_id": [click.click_id]}
    assert (click.affiliate, click.source) == (peter, "link")
    assert (click.referrer, click.user_agent) == ("https://blog.example/post", "Mozilla/5.0 test")
    assert click.clicked_at is not None


def test_codes_match_whatever_their_case_and_a_trailing_slash(client, peter):
    assert client.get("/r/peter/").status_code == 302
    assert Click.objects.count() == 1


def test_a_head_request_redirects_without_counting_a_click(client, peter):
    response = client.head("/r/PETER")
    assert response.status_code == 302
    assert "ref=PETER" in response["Location"] and "click_id" not in response["Location"]
    assert not Click.objects.exists()


@pytest.mark.parametrize("code", ["NOBODY", "x", "a" * 300, "%00", "<script>", "PE TER"])
def test_a_bad_code_is_a_friendly_404(client, peter, code):
    response = client.get(f"/r/{code}")
    assert response.status_code == 404
    assert b"We could not find this link" in response.content
    assert not Click.objects.exists()


def test_a_post_is_refused_not_an_error(client, peter):
    assert client.post("/r/PETER").status_code == 405


def test_a_disabled_affiliates_link_goes_to_the_shop_without_a_click(client, peter):
    peter.status = "disabled"
    peter.save()
    response = client.get("/r/PETER")
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example/welcome?utm_source=aff&ref=old"
    assert not Click.objects.exists()


def test_an_offer_without_a_landing_page_is_a_404(client, db):
    make_affiliate("LOST", offer=make_offer(landing_url=""))
    make_affiliate("NOOFFER", email="n@example.com")
    for code in ("LOST", "NOOFFER"):
        response = client.get(f"/r/{code}")
        assert response.status_code == 404
        assert b"does not lead anywhere yet" in response.content
