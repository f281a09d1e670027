"""The "webhook" work type's handler: one HTTP POST per delivery, signed for webhooks.

Webhooks are signed by the `standardwebhooks` package (Webhook(secret).sign): headers
`webhook-id` (the delivery's fixed message id), `webhook-timestamp` (seconds, at this attempt)
and `webhook-signature` (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`). Slack calls carry
the body alone.

What an answer means (healthchecks' TransportError, one error type with a permanent flag):
- 2xx: delivered;
- 410 Gone: the receiver asks us to stop: failed for good and the subscription disabled;
- 429 or 5xx, a timeout, a refused connection: retried on the Standard Webhooks schedule
  (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, each ±10%), a 429's Retry-After first;
- other 4xx and 3xx (redirects are not followed): retried the same way, since a receiver's
  misconfiguration is usually fixed within the schedule;
- a URL that resolves to a private address (campaigns.webhooks.netguard): failed for good.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import requests
from django.conf import settings
from standardwebhooks import Webhook

from campaigns.webhooks.models import Delivery, DeliveryKind, DeliveryStatus, WebhookSubscription
from campaigns.webhooks.netguard import UnsafeURL, check_url
from common import clock
from common.workqueue import Outcome, WorkError

log = logging.getLogger(__name__)

USER_AGENT = "Switchyard-Webhooks/1.0"


def timeout() -> float:
    return float(getattr(settings, "WEBHOOK_TIMEOUT", 10.0))


def signed_headers(*, secret: str, message_id: str, payload: str, at: datetime) -> dict[str, str]:
    signature = Webhook(secret).sign(msg_id=message_id, timestamp=at, data=payload)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def deliver(item: Delivery) -> Outcome:
    try:
        check_url(item.url)
    except UnsafeURL as error:
        raise WorkError(f"refused: {error}", permanent=True) from None
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    subscription = None
    if item.kind == DeliveryKind.WEBHOOK:
        subscription = WebhookSubscription.objects.filter(pk=item.subscription_id).first()
        if subscription is None:
            raise WorkError("the subscription was deleted", permanent=True)
        headers.update(
            signed_headers(
                secret=subscription.secret,
                message_id=item.message_id,
                payload=item.payload,
                at=clock.now().astimezone(UTC),
            )
        )
    try:
        response = requests.post(
            item.url, data=item.payload.encode(), headers=headers, timeout=timeout(), allow_redirects=False
        )
    except requests.Timeout as error:
        raise WorkError(f"timed out: {error}", ambiguous=True) from None
    except requests.RequestException as error:
        raise WorkError(f"{type(error).__name__}: {error}") from None
    answer = response.text[:4096]
    item.status_code = response.status_code
    if 200 <= response.status_code < 300:
        item.status, item.delivered_at = DeliveryStatus.DELIVERED, clock.now()
        return Outcome.ok(status_code=response.status_code, response=answer)
    if response.status_code == 410:
        if subscription is not None:
            WebhookSubscription.objects.filter(pk=subscription.pk).update(
                enabled=False,
                disabled_reason=f"disabled: the receiver answered 410 Gone at {clock.now():%Y-%m-%d %H:%M} UTC",
                updated_at=clock.now(),
            )
        raise WorkError(
            "410 Gone: the receiver asked us to stop; the subscription is disabled",
            permanent=True,
            status_code=410,
            response=answer,
        )
    retry_after = None
    if response.status_code == 429:
        header = response.headers.get("Retry-After", "")
        retry_after = float(header) if header.isdigit() else None
    raise WorkError(
        f"answered {response.status_code}", status_code=response.status_code, response=answer, retry_after=retry_after
    )
