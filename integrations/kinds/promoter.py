"""Promoter (seeds/003): contacts from identify; surveys from track for identified users.

- Identify needs a userId (without one the contact is not stored); every trait becomes an
  attribute (a property).
- Track acts only for a userId identified before; otherwise nothing happens and the reason is
  recorded, on the inbox row and, for each survey campaign the event would trigger, as a
  dispatch skipped as `not_identified` (one insert per chunk).
- At most 50,000 requests a day by default (the integration's daily cap).
"""

from __future__ import annotations

from integrations.kinds.base import EVENT_FILTER, UNKNOWN_TRAITS, Skip
from integrations.kinds.common import ContactKind
from integrations.kinds.payload import properties_of


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
            self._not_identified(batch, message)
            raise Skip("Promoter surveys only identified contacts; this event has no userId")
        if batch.find(user_id=message.user_id) is None:
            self._not_identified(batch, message)
            raise Skip(
                f"userId {message.user_id!r} was not identified before; Promoter surveys only identified contacts"
            )
        super().track(batch, message)

    def _not_identified(self, batch, message) -> None:
        from campaigns.surveys.triggers import Unidentified

        if not hasattr(batch, "unidentified"):
            batch.unidentified = []
        batch.unidentified.append(
            Unidentified(
                inbox_id=message.pk,
                user_id=message.user_id or "",
                name=message.event or "",
                properties=properties_of(message),
                timestamp=message.timestamp,
            )
        )

    def close_batch(self, batch, rows) -> None:
        super().close_batch(batch, rows)
        unidentified = getattr(batch, "unidentified", None)
        if unidentified:
            from campaigns.surveys.triggers import dispatches_not_identified

            dispatches_not_identified(integration_id=self.integration.pk, triggers=unidentified)
            batch.unidentified = []
