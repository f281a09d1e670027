"""What happened to affiliates, for the apps above (the outbound Segment source).

Affiliates never import those apps: they listen here. Receivers run inside the sender's
transaction, so what they write commits or rolls back with it.

conversion_approved
    Conversions were approved: by staff (the admin or the API) or by an offer's auto-approval.
    Sent once per approval, inside its transaction, only for conversions that were pending and
    are approved now (a conversion is approved at most once: approved ones cannot be denied,
    only reversed by a refund).
    kwargs: ``conversions``, a list of ``ApprovedConversion`` (below). Meant for the outbound
    "Affiliate Conversion Approved" track; ``event_id`` is the contact timeline event of the
    same approval (None when the affiliate has no contact), so a receiver that also listens to
    contacts.signals.events_recorded can tell the two apart and send once.

The approval is also recorded as an internal event, "Affiliate Conversion Approved", on the
affiliate's contact (contacts.services.contact_event_record), so a loop can start from it
(a thank-you email), with the same properties as ``ApprovedConversion.properties()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.dispatch import Signal

conversion_approved = Signal()

EVENT_NAME = "Affiliate Conversion Approved"


@dataclass(frozen=True, slots=True)
class ApprovedConversion:
    conversion_id: int
    order_id: str
    amount: Decimal
    currency: str
    commission: Decimal
    approved_at: datetime
    affiliate_id: int | None
    referral_code: str
    affiliate_email: str
    affiliate_user_id: str
    contact_id: int | None  # the affiliate's contact
    buyer_contact_id: int | None
    approved_by: str  # "auto-approval", "api:NAME", "admin:NAME"
    event_id: int | None  # the affiliate contact's timeline event for this approval

    def properties(self) -> dict:
        """The Segment track's properties (and the internal event's)."""
        return {
            "conversion_id": self.conversion_id,
            "order_id": self.order_id,
            "affiliate_id": self.affiliate_id,
            "referral_code": self.referral_code,
            "revenue": float(self.amount),
            "currency": self.currency,
            "commission": float(self.commission),
        }
