"""The referral link: GET /r/CODE records a click and sends the visitor on to the offer's landing
page with ?ref=CODE&click_id=… added (CONTRACT.md "Affiliates"), so the site's later Segment
calls carry them and the drain ties the click to that visitor.

A code that is no affiliate's answers 404 with a page a visitor understands, never an error. A
denied or disabled affiliate's link still takes the visitor to the shop, without a click or a
code: nobody earns from it. HEAD requests (link checkers, previews) are redirected without
counting a click.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from affiliates.codes import code_clean, landing_url_with
from affiliates.models import EARNING, Affiliate
from affiliates.services import click_record

log = logging.getLogger(__name__)


def not_found(request: HttpRequest, message: str) -> HttpResponse:
    response = TemplateResponse(request, "affiliates/not_found.html", {"message": message}, status=404)
    response["Cache-Control"] = "no-store"
    return response


@require_safe
@never_cache
def click_redirect(request: HttpRequest, code: str) -> HttpResponse:
    clean = code_clean(code)
    affiliate = Affiliate.objects.select_related("offer").filter(referral_code=clean).first() if clean else None
    if affiliate is None:
        return not_found(
            request, "This referral link is not valid. Check the link you were given, or go to the shop directly."
        )
    offer = affiliate.offer
    if offer is None or not offer.landing_url:
        return not_found(request, "This referral link does not lead anywhere yet. Please go to the shop directly.")
    if affiliate.status not in EARNING:
        return HttpResponseRedirect(offer.landing_url)
    params = {"ref": affiliate.referral_code}
    if request.method == "GET":
        try:
            click = click_record(
                affiliate=affiliate,
                referrer=request.META.get("HTTP_REFERER", ""),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
            )
            params["click_id"] = click.click_id
        except DatabaseError:
            # The visitor still reaches the shop, with the code: an order can be attributed by it.
            log.exception("could not record a click for referral code %s", affiliate.referral_code)
    return HttpResponseRedirect(landing_url_with(offer.landing_url, **params))
