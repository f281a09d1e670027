"""Promoter (seeds/003): contacts from identify; surveys from track for identified users.

- Identify needs a userId (without one the contact is not stored); every trait becomes an
  attribute (a property).
- Track acts only for a userId identified before; otherwise nothing happens and the reason is
  recorded.
- At most 50,000 requests a day by default (the integration's daily cap).
"""

from __future__ import annotations

from integrations.kinds.base import EVENT_FILTER, UNKNOWN_TRAITS, Skip
from integrations.kinds.common import ContactKind


class PromoterKind(ContactKind):
    kind = "promoter"
    label = "Promoter"
    description = "Contacts from identify; surveys from track for identified users. 50,000 requests a day."
    settings = (UNKNOWN_TRAITS, EVENT_FILTER)
    handles = ("identify", "track", "alias", "delete")
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
