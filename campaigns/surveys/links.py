"""Survey links: a signed token per dispatch, one URL per score, and the scale for the email.

The token is `<dispatch id>.<expiry>:<signature>` (django.core.signing with SECRET_KEY and a
salt of its own): unguessable, and it cannot be changed to name another dispatch or a later
expiry. The expiry (base 36 seconds since the epoch) is the dispatch's due time plus
SURVEY_LINK_DAYS. A link is `SITE_URL/s/<token>/?score=N`; opening it shows the survey page
with that score chosen, and only the page commits it (campaigns.surveys.views).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.html import escape

from campaigns.surveys.scales import HIGH, LOW, Scale

SALT = "switchyard.surveys.link"
_signer = signing.Signer(salt=SALT)
_PLACEHOLDER = "TOKEN-PLACEHOLDER"


def link_days() -> int:
    return int(getattr(settings, "SURVEY_LINK_DAYS", 60))


def survey_token(*, dispatch_id: int, due_at: datetime) -> str:
    expires = int((due_at + timedelta(days=link_days())).timestamp())
    return _signer.sign(f"{dispatch_id}.{_base36(expires)}")


@dataclass(frozen=True)
class TokenValue:
    dispatch_id: int
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def read_token(token: str) -> TokenValue | None:
    """What a token names, when its signature holds; None for anything tampered or malformed."""
    try:
        value = _signer.unsign(str(token).strip())
        dispatch, _, expires = value.partition(".")
        return TokenValue(int(dispatch), datetime.fromtimestamp(int(expires, 36), tz=UTC))
    except (signing.BadSignature, ValueError, OverflowError, OSError):
        return None


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if not number:
            return text


@lru_cache(maxsize=1)
def _path_template() -> str:
    return reverse("survey-page", args=[_PLACEHOLDER])


def page_url(token: str) -> str:
    return settings.SITE_URL + _path_template().replace(_PLACEHOLDER, token)


def score_url(token: str, score: int) -> str:
    return f"{page_url(token)}?score={score}"


# --- the scale in the email -------------------------------------------------------------------
CELL = (
    '<td style="padding:2px"><a href="{url}" style="display:block;min-width:30px;padding:8px 0;border-radius:6px;'
    "background:{bg};color:#111827;text-decoration:none;font:600 15px/1 Helvetica,Arial,sans-serif;"
    'text-align:center">{label}</a></td>'
)
BACKGROUND = {HIGH: "#dcfce7", LOW: "#fee2e2"}


def scale_html(scale: Scale, token: str) -> str:
    """One link per score in a table (email clients lay tables out reliably), inline styles,
    with the scale's end labels under it."""
    cells = "".join(
        CELL.format(
            url=escape(score_url(token, score)),
            bg=BACKGROUND.get(scale.level(score), "#f3f4f6"),
            label="★" * score if scale.metric == "five_star" else score,
        )
        for score in scale.scores
    )
    return (
        '<table role="presentation" cellspacing="0" cellpadding="0" style="width:100%;max-width:560px;'
        f'border-collapse:separate"><tr>{cells}</tr></table>'
        '<table role="presentation" style="width:100%;max-width:560px;font:12px Helvetica,Arial,sans-serif;'
        f'color:#6b7280"><tr><td>{escape(scale.low_label)}</td><td style="text-align:right">'
        f"{escape(scale.high_label)}</td></tr></table>"
    )


def survey_context(*, scale: Scale, question: str, campaign_id: int, token: str) -> dict:
    """What a survey or reminder template sees as `event.survey`."""
    return {
        "campaign": campaign_id,
        "metric": scale.metric,
        "question": question,
        "url": page_url(token),
        "links": [{"score": score, "url": score_url(token, score)} for score in scale.scores],
        "scale_html": scale_html(scale, token),
    }
