"""Retently (seeds/002): customers from track properties; survey campaigns mapped to event names.

- A track's properties create or update the customer; `email` is the one required property
  (without a valid one the event is refused, not retried).
- Properties that match a defined customer property are assigned; others are ignored.
  Retently's own naming rule holds for them: no spaces, no capitals (`Signup Date` is
  `signup_date`).
- A managed property the event does not carry is unassigned. Managed means the names in
  `managed_properties`, or, when that is empty, the properties this integration assigned on
  the contact: never another partner's data.
- Events outside the event filter (the campaigns' event names) are dismissed with the reason.
"""

from __future__ import annotations

from contacts.properties import snake_name
from contacts.traits import clean_email
from integrations.kinds.base import EVENT_FILTER, Refuse, Setting
from integrations.kinds.common import ContactKind
from integrations.kinds.payload import properties_of

MANAGED_PROPERTIES = Setting(
    "managed_properties",
    str,
    "",
    "Comma-separated property names this integration owns. A track event assigns those it "
    "carries and unassigns those it does not, as Retently does. Empty: the properties this "
    "integration itself assigned on the contact (never those other integrations set).",
)


class RetentlyKind(ContactKind):
    kind = "retently"
    label = "Retently"
    description = "Customers from track properties; transactional survey campaigns mapped to event names."
    settings = (EVENT_FILTER, MANAGED_PROPERTIES)
    handles = ("track", "alias", "delete")

    def unknown_traits(self) -> str:
        return "ignore"

    def track(self, batch, message):
        self.check_event_filter(message, "matches no campaign; dismissed")
        properties = properties_of(message)
        email = clean_email(properties.get("email"))
        if email is None:
            raise Refuse("properties.email is required by Retently and must be a valid email address")
        contact = self.resolve(batch, message, create=True, email=email)
        carried = batch.set_traits(
            contact, properties, message.timestamp, message.warnings, where="properties", name_rule=snake_name
        )
        managed = {n.strip() for n in self.option("managed_properties").split(",") if n.strip()}
        for name in (managed or batch.assigned_by_me(contact)) - carried:
            batch.unset_property(contact, name, message.timestamp)
        self.add_event(batch, contact, message, properties)
