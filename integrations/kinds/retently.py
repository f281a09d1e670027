from __future__ import annotations

from integrations.kinds.base import EVENT_FILTER, Refuse, Setting, Skip
from integrations.kinds.common import ContactKind, properties_of

MANAGED_PROPERTIES = Setting(
    "managed_properties",
    str,
    "",
    "Comma-separated property names this integration owns. A track event assigns those it "
    "carries and unassigns those it does not, as Retently does. Empty: every defined property.",
)


class RetentlyKind(ContactKind):
    """Retently: a track's properties create or update the customer; email is required.

    Only properties that match a definition are assigned; defined properties the event does
    not carry are unassigned. Event names outside the filter are dismissed.
    """

    kind = "retently"
    label = "Retently"
    description = "Customers from track properties; transactional survey campaigns mapped to event names."
    settings = (EVENT_FILTER, MANAGED_PROPERTIES)

    def unknown_traits(self) -> str:
        return "ignore"

    def identify(self, batch, message):
        raise Skip("Retently takes customers from track events; identify is not used")

    def page(self, batch, message):
        raise Skip("Retently does not use page or screen calls")

    def track(self, batch, message):
        from contacts.properties import fold_name

        self.check_event_filter(message, "matches no campaign; dismissed")
        properties = properties_of(message)
        email = properties.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise Refuse("properties.email is required by Retently and must be an email address")
        contact = self.resolve(batch, message, create=True, email=email.strip().lower())
        batch.set_traits(contact, properties, message.timestamp, message.warnings, where="properties")
        managed = {n.strip() for n in self.option("managed_properties").split(",") if n.strip()}
        sent = {fold_name(k) for k in properties}
        for name in managed or set(batch.definitions):
            if name not in sent:
                batch.unset_property(contact, name, message.timestamp)
        batch.add_event(contact, message, name=message.event, properties=properties)
