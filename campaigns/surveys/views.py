"""The public survey page: `/s/<token>/?score=N` (no login; the signed token is the key).

- GET shows the question with the score chosen and a comment box, and records nothing but the
  open: mail scanners that open every link answer no survey. When every score of a survey was
  opened within a second, the survey is flagged as scanned (its response too, if one comes).
- The page commits the score: its small script POSTs it once the page has been visible for a
  few seconds (Retently waits too), and its button POSTs score and comment without any script.
  A second POST changes the score and comment, never adds a response.
- A token that does not verify (tampered, cut short) gets a clear 404 page, an expired one a
  410 page; a score outside the scale a 400 naming it. Never a 500.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from campaigns.surveys.links import page_url, read_token
from campaigns.surveys.models import DispatchStatus, ResponseVia, SurveyDispatch, SurveyResponse
from campaigns.surveys.responses import ResponseError, response_record
from campaigns.surveys.scales import HIGH, LOW, scale_of
from common import clock

COMMIT_AFTER_SECONDS = 3
SCANNER_WINDOW = timedelta(seconds=1)
MAX_OPENS = 60
ANSWERABLE = (DispatchStatus.SENT, DispatchStatus.RESPONDED)


def _closed(request: HttpRequest, *, status: int, title: str, message: str) -> HttpResponse:
    response = render(request, "surveys/closed.html", {"title": title, "message": message}, status=status)
    return _private(response)


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _score(raw, scale) -> int | None:
    text = str(raw or "").strip()
    if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 3:
        return None
    value = int(text)
    return value if scale.valid(value) else None


@csrf_exempt  # the signed token in the path is the credential; mail apps' browsers carry no cookie
@require_http_methods(["GET", "HEAD", "POST"])
def survey_page(request: HttpRequest, token: str) -> HttpResponse:
    value = read_token(token)
    invalid = {
        "status": 404,
        "title": "This survey link is not valid",
        "message": "The link may have been cut short or changed. Please open it again from the email.",
    }
    if value is None:
        return _closed(request, **invalid)
    dispatch = (
        SurveyDispatch.objects.select_related("campaign", "campaign__template").filter(pk=value.dispatch_id).first()
    )
    if dispatch is None or dispatch.status not in ANSWERABLE:
        return _closed(request, **invalid)
    if value.expired(clock.now()):
        return _closed(
            request,
            status=410,
            title="This survey has closed",
            message="Thank you for your interest: answers to this survey are no longer taken.",
        )
    scale = scale_of(dispatch.campaign.metric)
    if request.method == "POST":
        return _answer(request, dispatch, token, scale)
    score = _score(request.GET.get("score"), scale)
    if score is not None and request.method == "GET":
        opens_record(dispatch_id=dispatch.pk, score=score, now=clock.now())
    existing = SurveyResponse.objects.filter(dispatch_id=dispatch.pk).first()
    if score is None and existing is not None:
        score = existing.score
    return _page(request, dispatch, token, scale, score=score, response=existing)


def _answer(request: HttpRequest, dispatch: SurveyDispatch, token: str, scale) -> HttpResponse:
    auto = request.POST.get("mode") == "auto"
    score = _score(request.POST.get("score"), scale)
    comment = None if auto else request.POST.get("comment", "")
    if score is None:
        message = f"Choose a score from {scale.low} to {scale.high}."
        if auto:
            return _private(JsonResponse({"saved": False, "field": "score", "message": message}, status=400))
        page = _page(request, dispatch, token, scale, score=None, response=None, error=message, comment=comment)
        page.status_code = 400
        return page
    try:
        recorded = response_record(
            dispatch_id=dispatch.pk,
            score=score,
            comment=comment,
            via=ResponseVia.SCRIPT if auto else ResponseVia.FORM,
        )
    except ResponseError as error:
        if auto:
            return _private(JsonResponse({"saved": False, "field": error.field, "message": str(error)}, status=400))
        page = _page(request, dispatch, token, scale, score=None, response=None, error=str(error), comment=comment)
        page.status_code = 400
        return page
    if auto:
        return _private(JsonResponse({"saved": True, "score": recorded.response.score}))
    return _page(
        request, dispatch, token, scale, score=recorded.response.score, response=recorded.response, thanks=True
    )


def _page(
    request: HttpRequest,
    dispatch: SurveyDispatch,
    token: str,
    scale,
    *,
    score: int | None,
    response: SurveyResponse | None,
    thanks: bool = False,
    error: str = "",
    comment: str | None = None,
) -> HttpResponse:
    campaign = dispatch.campaign
    choices = [
        {
            "score": n,
            "label": "★" * n if scale.metric == "five_star" else str(n),
            "tone": {HIGH: "high", LOW: "low"}.get(scale.level(n), "mid"),
        }
        for n in scale.scores
    ]
    context = {
        "action": page_url(token),
        "logo_url": campaign.template.logo_url,
        "question": campaign.question or "How likely are you to recommend us to a friend or colleague?",
        "choices": choices,
        "score": score,
        "scale": scale,
        "five_star": scale.metric == "five_star",
        "comment": comment if comment is not None else (response.comment if response else ""),
        "answered": response is not None,
        "thanks": thanks,
        "error": error,
        "commit_after_ms": COMMIT_AFTER_SECONDS * 1000,
    }
    return _private(render(request, "surveys/page.html", context))


def _all_within(opens: list, scores: list[int]) -> bool:
    """Whether every score was opened inside one SCANNER_WINDOW."""
    stamps = sorted((datetime.fromisoformat(at), score) for score, at in opens if isinstance(score, int))
    needed = set(scores)
    start = 0
    for end in range(len(stamps)):
        while stamps[end][0] - stamps[start][0] > SCANNER_WINDOW:
            start += 1
        if needed <= {score for _at, score in stamps[start : end + 1]}:
            return True
    return False


@transaction.atomic
def opens_record(*, dispatch_id: int, score: int, now: datetime) -> bool:
    """Note that a score link was opened; flag the survey when its links look scanned.
    Returns whether the survey is flagged."""
    dispatch = (
        SurveyDispatch.objects.select_for_update(of=("self",))
        .select_related("campaign")
        .only("id", "opens", "scanner", "campaign__metric")
        .get(pk=dispatch_id)
    )
    opens = [*(dispatch.opens or [])[-(MAX_OPENS - 1) :], [score, now.isoformat()]]
    flagged = dispatch.scanner or _all_within(opens, scale_of(dispatch.campaign.metric).scores)
    SurveyDispatch.objects.filter(pk=dispatch_id).update(opens=opens, scanner=flagged)
    if flagged and not dispatch.scanner:
        SurveyResponse.objects.filter(dispatch_id=dispatch_id).update(scanner=True)
    return flagged
