from __future__ import annotations

from integrations.kinds.base import EVENT_FILTER, UNKNOWN_TRAITS, Skip
from integrations.kinds.common import ContactKind


class PromoterKind(ContactKind):
    """Promoter: identify needs a userId (no userId, not stored); every trait is an attribute.

    Track acts only for a userId identified before; otherwise nothing is sent and the reason
    is recorded.
    """

    kind = "promoter"
    label = "Promoter"
    description = "Contacts from identify; surveys from track for identified users. 50,000 requests a day."
    settings = (UNKNOWN_TRAITS, EVENT_FILTER)
    requires_user_id = True
    default_daily_cap = 50_000

    def track(self, batch, message):
        self.check_event_filter(message)
        if not message.user_id:
            raise Skip("Promoter surveys only identified contacts; this event has no userId")
        if batch.find(user_id=message.user_id) is None:
            raise Skip(
                f"userId {message.user_id!r} was not identified before; Promoter surveys only identified contacts"
            )
        super().track(batch, message)

    def page(self, batch, message):
        raise Skip("Promoter does not use page or screen calls")
