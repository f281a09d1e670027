"""Unsubscribing from an email (RFC 8058 one-click and RFC 2369 List-Unsubscribe).

Every email that is not transactional carries
    List-Unsubscribe: <https://SITE/email/unsubscribe/TOKEN/>, <mailto:ADDRESS?subject=unsubscribe%20TOKEN>
    List-Unsubscribe-Post: List-Unsubscribe=One-Click
and a visible link to the same URL. A POST to it unsubscribes at once, without a login, and
answers 200 (mail providers send `List-Unsubscribe=One-Click` as the form body; a person's
click on the confirmation page posts the same). A GET only shows the confirmation page, so a
link scanner that follows every URL unsubscribes nobody.

The token is `<contact id>.<send id>:<signature>`, signed with SECRET_KEY and a salt of its
own (django.core.signing): unguessable, and it names the send whose link was used. A token
that does not verify answers 404 and changes nothing.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from common import clock
from contacts.models import Contact
from contacts.services import contact_unsubscribe

log = logging.getLogger(__name__)

SALT = "switchyard.email.unsubscribe"
_signer = signing.Signer(salt=SALT)


def unsubscribe_token(*, contact_id: int, send_id: int) -> str:
    return _signer.sign(f"{contact_id}.{send_id}")


def read_token(token: str) -> tuple[int, int] | None:
    """(contact id, send id) from a token that verifies, else None."""
    try:
        value = _signer.unsign(token.strip())
        contact_id, send_id = (int(part) for part in value.split("."))
    except (signing.BadSignature, ValueError):
        return None
    return contact_id, send_id


def unsubscribe_url(token: str) -> str:
    return settings.SITE_URL + _path_template().replace(_PLACEHOLDER, token)


_PLACEHOLDER = "TOKEN-PLACEHOLDER"


@lru_cache(maxsize=1)
def _path_template() -> str:
    # One reverse() per process rather than two per email.
    return reverse("email-unsubscribe", args=[_PLACEHOLDER])


def unsubscribe_mailto(token: str) -> str:
    return f"mailto:{settings.EMAIL_UNSUBSCRIBE_MAILTO}?subject={quote('unsubscribe ' + token)}"


def list_unsubscribe_headers(token: str) -> dict[str, str]:
    return {
        "List-Unsubscribe": f"<{unsubscribe_url(token)}>, <{unsubscribe_mailto(token)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


@transaction.atomic
def email_unsubscribe(*, token: str, via: str) -> Contact | None:
    """Unsubscribe the person a token names; the contact, or None when the token is bad or the
    person is gone (erased). Idempotent: a second use changes nothing more."""
    from campaigns.email.models import EmailSend

    ids = read_token(token)
    if ids is None:
        return None
    contact_id, send_id = ids
    contact = Contact.objects.filter(pk=contact_id).first()
    if contact is None:
        return None
    reason = f"unsubscribed by email ({via}, send {send_id})" if send_id else f"unsubscribed by email ({via})"
    contact_unsubscribe(contacts=[contact], reason=reason)
    if send_id:
        EmailSend.objects.filter(pk=send_id, contact_id=contact_id, unsubscribed_at__isnull=True).update(
            unsubscribed_at=clock.now()
        )
    return contact


@csrf_exempt  # mail providers post one-click unsubscribes with no cookie and no CSRF token
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe_view(request: HttpRequest, token: str) -> HttpResponse:
    if read_token(token) is None:
        raise Http404("This unsubscribe link is not valid.")
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        contact = email_unsubscribe(token=token, via="one-click" if one_click else "link")
        response = render(request, "email/unsubscribed.html", {"email": contact.email if contact else ""})
    else:
        response = render(request, "email/unsubscribe.html", {"token": token})
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


def mailto_unsubscribe(*, subject: str) -> Contact | None:
    """An emailed unsubscribe (the List-Unsubscribe mailto): the token is in the subject."""
    for word in subject.split():
        if read_token(word) is not None:
            return email_unsubscribe(token=word, via="mailto")
    return None
