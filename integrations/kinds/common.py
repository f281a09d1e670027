"""Contact behaviour shared by the inbound kinds. Each partner kind overrides the policies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from contacts.batch import ContactBatch
from contacts.traits import clean_email
from integrations.kinds.base import UNKNOWN_TRAITS, Kind, Refuse, Skip, Wait
from integrations.kinds.payload import (
    chunk_ids,
    context_of,
    context_traits_of,
    identify_traits,
    page_properties,
    payload_of,
    properties_of,
)

if TYPE_CHECKING:
    from contacts.models import Contact
    from integrations.models import InboxMessage

AUDIENCE_EVENTS = {"Audience Entered": True, "Audience Exited": False}


def mailing_lists(value: Any) -> dict[str, bool]:
    """Loops' mailingLists: [{listId, subscribed}] or {listId: bool}."""
    if isinstance(value, dict):
        return {str(k): bool(v) for k, v in value.items() if isinstance(v, bool)}
    if isinstance(value, list):
        result = {}
        for item in value:
            if isinstance(item, dict) and item.get("listId") not in (None, ""):
                result[str(item["listId"])] = item.get("subscribed", True) is not False
        return result
    return {}


def engage_audiences(message: InboxMessage, traits: dict) -> set[str]:
    """Trait keys that are Engage audience flags (true/false with context.personas).

    Engage names the audience in context.personas.computation_key; computed traits
    (computation_class "trait") are ordinary properties. Without a key, every true/false
    trait of a personas message is taken as an audience, as the Refersion doc describes.
    """
    personas = context_of(message).get("personas")
    if not isinstance(personas, dict):
        return set()
    key = personas.get("computation_key")
    if isinstance(key, str) and key:
        if personas.get("computation_class", "audience") != "audience":
            return set()
        return {key} if isinstance(traits.get(key), bool) else set()
    return {k for k, v in traits.items() if isinstance(v, bool) and k != "subscribed"}


class ContactKind(Kind):
    """Identify/track/page/screen/alias/delete onto contacts, with overridable partner rules."""

    settings = (UNKNOWN_TRAITS,)
    handles = ("identify", "track", "page", "screen", "alias", "delete")
    # Policies a partner kind changes.
    create_requires: ClassVar[tuple[str, ...]] = ()  # of "user_id", "email"
    requires_user_id: ClassVar[bool] = False
    track_creates_contact: ClassVar[bool] = True

    def creation_requires(self, message: InboxMessage) -> tuple[str, ...]:
        return self.create_requires

    def unknown_traits(self) -> str:
        return self.option("unknown_traits") if self.setting("unknown_traits") else "infer"

    # --- the batch ------------------------------------------------------------------------
    def open_batch(self, rows: list[InboxMessage]) -> ContactBatch:
        batch = ContactBatch(integration=self.integration, unknown_traits=self.unknown_traits())
        user_ids, emails, anons = chunk_ids(rows)
        batch.preload(user_ids=user_ids, emails=emails, anons=anons)
        return batch

    def close_batch(self, batch: ContactBatch, rows: list[InboxMessage]) -> None:
        batch.flush()
        for row in rows:
            # Rows that named a contact erased or merged away later in the chunk.
            row.contact = batch.current(row.contact)

    def apply(self, batch: ContactBatch, message: InboxMessage) -> None:
        batch.source_id = message.pk  # the contact's history links each change to its message
        super().apply(batch, message)

    # --- identity -------------------------------------------------------------------------
    def resolve(self, batch: ContactBatch, message: InboxMessage, *, create: bool, email: str = "") -> Contact:
        if self.requires_user_id and not message.user_id:
            raise Skip(f"{self.label} stores contacts only with a userId; this call has none")
        email = email or clean_email(message.email) or ""
        contact = batch.find(user_id=message.user_id, email=email, anonymous_id=message.anonymous_id)
        if contact is None:
            if not create:
                raise Refuse("no contact matches this userId, email or anonymousId")
            missing = [f for f in self.creation_requires(message) if not (message.user_id if f == "user_id" else email)]
            if missing:
                raise Refuse(self.missing_reason(message, missing))
            if not (message.user_id or email):
                raise Wait("anonymous visitor with no known contact; waits in the inbox until identified")
            contact = batch.create(
                user_id=message.user_id, email=email, anonymous_id=message.anonymous_id, ts=message.timestamp
            )
        else:
            batch.assign_user_id(contact, message.user_id, message.timestamp)
            if email and not contact.email:
                # An email sent beside the traits (top level, as Loops' test event does, or in
                # a track's properties) fills in a contact that has none; traits still win.
                batch.set_field(contact, "email", email, message.timestamp, message.warnings)
            batch.add_anonymous_id(contact, message.anonymous_id)
        message.contact = contact
        return contact

    def missing_reason(self, message: InboxMessage, missing: list[str]) -> str:
        names = " and ".join("userId" if f == "user_id" else "email" for f in missing)
        reason = f"{self.label} creates a contact only with userId and email; missing {names}"
        if "email" in missing and message.email:
            reason += f" ({message.email[:80]!r} is not a valid email address)"
        return reason

    def add_event(self, batch: ContactBatch, contact: Contact, message: InboxMessage, properties: dict) -> None:
        batch.add_event(
            contact,
            type=message.type,
            name=message.event,
            properties=properties,
            timestamp=message.timestamp,
            source_id=message.pk,
        )

    # --- handlers -------------------------------------------------------------------------
    def identify(self, batch: ContactBatch, message: InboxMessage) -> None:
        contact = self.resolve(batch, message, create=True)
        self.apply_traits(batch, contact, message, identify_traits(message))

    def apply_traits(self, batch: ContactBatch, contact: Contact, message: InboxMessage, traits: dict) -> None:
        ts = message.timestamp
        audience_keys = engage_audiences(message, traits)
        for key in audience_keys:
            batch.set_audience(contact, key, traits[key], ts)
        if audience_keys:
            traits = {k: v for k, v in traits.items() if k not in audience_keys}
        batch.set_traits(contact, traits, ts, message.warnings)
        self.apply_subscription(batch, contact, message, traits)
        raw_lists = traits.get("mailingLists", traits.get("mailing_lists"))
        lists = mailing_lists(raw_lists)
        if raw_lists is not None and not lists and raw_lists not in ([], {}):
            message.warnings.append(
                "traits.mailingLists must be [{listId, subscribed}] or {listId: true/false}; ignored"
            )
        fixed = self.option("fixed_mailing_list") if self.setting("fixed_mailing_list") else ""
        if fixed:
            lists.setdefault(fixed, True)
        for list_id, subscribed in lists.items():
            batch.set_list(contact, list_id, subscribed, ts)

    def apply_subscription(self, batch: ContactBatch, contact: Contact, message: InboxMessage, traits: dict) -> None:
        """Three-state: absent leaves it (new contacts start subscribed); true/false set it."""
        value = traits.get("subscribed")
        if isinstance(value, bool):
            batch.set_subscribed(
                contact, value, message.timestamp, f"{message.type} from {self.integration.name}", message.warnings
            )
        elif value is not None:
            message.warnings.append("traits.subscribed must be true or false; ignored")

    def check_event_filter(self, message: InboxMessage, reason: str = "is not in this integration's event filter"):
        names = self.event_names()
        if names and message.event not in names:
            raise Skip(f"event {message.event!r} {reason}")

    def track(self, batch: ContactBatch, message: InboxMessage) -> None:
        self.check_event_filter(message)
        contact = self.resolve(batch, message, create=self.track_creates_contact)
        context_traits = context_traits_of(message)
        if context_traits:
            self.apply_traits(batch, contact, message, context_traits)
        properties = properties_of(message)
        if message.event in AUDIENCE_EVENTS:
            key = properties.get("audience_key") or (context_of(message).get("personas") or {}).get("computation_key")
            if isinstance(key, str) and key:
                batch.set_audience(contact, key, AUDIENCE_EVENTS[message.event], message.timestamp)
            else:
                message.warnings.append(f"{message.event} without properties.audience_key; no audience changed")
        self.add_event(batch, contact, message, properties)

    def page(self, batch: ContactBatch, message: InboxMessage) -> None:
        contact = self.resolve(batch, message, create=self.track_creates_contact)
        self.add_event(batch, contact, message, page_properties(message))

    def screen(self, batch: ContactBatch, message: InboxMessage) -> None:
        self.page(batch, message)

    def alias(self, batch: ContactBatch, message: InboxMessage) -> None:
        previous = str(payload_of(message).get("previousId") or "")
        if not previous or not message.user_id:
            raise Skip("alias needs previousId and userId")
        message.contact = batch.alias(user_id=message.user_id, previous_id=previous)

    def delete(self, batch: ContactBatch, message: InboxMessage) -> None:
        if not message.user_id:
            raise Skip("already erased: this delete request was redacted")
        batch.erase(
            user_id=message.user_id,
            email=message.email,
            requested_by="segment delete",
            message_id=message.message_id,
        )
        message.contact = None
