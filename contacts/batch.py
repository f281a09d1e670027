"""Apply a drained chunk of messages to contacts with a handful of queries.

`ContactBatch` loads every contact the chunk names (by userId, email and anonymousId) up front,
applies changes in memory, and writes everything back with bulk statements in `flush()`.
Changes that must touch the database at once (alias, erase) flush first and forget after, so
the in-memory view never goes stale.

It knows contacts, not messages: the kinds (integrations) read payloads and call it with ids,
values and timestamps.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from common.bulk import bulk_insert, bulk_update
from common.outcomes import Skip
from contacts.history import changes_insert, events_insert
from contacts.models import (
    AudienceMembership,
    ChangeKind,
    Contact,
    ContactIdentity,
    ListMembership,
    MailingList,
    PropertyDefinition,
    Suppression,
    SuppressionReason,
)
from contacts.properties import PropertyError, coerce, infer_type, property_name
from contacts.services import contact_alias, contact_erase, email_md5, events_announce
from contacts.signals import RecordedEvent
from contacts.stamps import is_newer, stamp, writer_key
from contacts.traits import NAME_KEYS, clean_email, field_for, is_special, split_name


def field_length(field: str) -> int | None:
    return getattr(Contact._meta.get_field(field), "max_length", None)


class ContactBatch:
    def __init__(self, *, integration, unknown_traits: str = "infer") -> None:
        self.integration = integration
        self.unknown_traits = unknown_traits
        self.by_user_id: dict[str, Contact] = {}
        self.by_email: dict[str, Contact] = {}
        self.by_anon: dict[str, Contact] = {}
        self.by_pk: dict[int, Contact] = {}
        self.definitions: dict[str, PropertyDefinition] = {}
        self.new_definitions: dict[str, PropertyDefinition] = {}
        self.lists: dict[str, MailingList] = {}
        self.suppressed_md5: set[str] = set()
        self.suppressed_users: set[str] = set()
        self.loaded_user_ids: set[str] = set()
        self.loaded_emails: set[str] = set()
        self.loaded_anons: set[str] = set()
        # Email MD5 → why it must not be mailed (unsubscribed, bounced, complained).
        self.unmailable: dict[str, str] = {}
        # Addresses whose owner opted in again: their "unsubscribed" suppression goes on flush.
        self.lifted_md5: set[str] = set()
        self.preloaded: tuple[set, set, set] = (set(), set(), set())
        # Contacts erased or merged away during this chunk: pk → the contact that replaces
        # it (None when erased). Inbox rows still pointing at them are repointed on save.
        self.gone: dict[int, Contact | None] = {}
        # Set by a delete: inbox rows of this chunk may belong to the person it erased.
        self.erased = False
        # Ids this chunk made known (anonymousIds tied to a contact, userIds of new or newly
        # identified contacts): rows waiting for one of them can now apply.
        self.newly_known_ids: set[str] = set()
        # The inbox row being applied (the kinds set it): what it changes is recorded against it.
        self.source_id: int | None = None
        # One chunk, one transaction: every contact it touches gets the chunk's time (a clock
        # read per trait was a measurable share of the drain).
        self.now = timezone.now()
        # What a property's writer stamp holds: the integration that last assigned it.
        self.writer = integration.pk if integration is not None else None
        self._reset_pending()

    def _reset_pending(self) -> None:
        self.new: list[Contact] = []
        self.dirty: dict[int, Contact] = {}
        self.dirty_fields: set[str] = set()
        self.identities: list[ContactIdentity] = []
        # (contact, type, name, properties, timestamp, inbox row): plain tuples, written in flush.
        self.events: list[tuple] = []
        self.memberships: dict[tuple[int, str], dict] = {}
        self.audiences: dict[tuple[int, str], list[dict]] = {}
        # (contact, inbox row, kind, name, old, new, when): plain tuples, written in flush.
        self.changes: list[tuple] = []

    # --- loading --------------------------------------------------------------------------
    def preload(self, *, user_ids: Iterable[str] = (), emails: Iterable[str] = (), anons: Iterable[str] = ()) -> None:
        """Load every contact, identity and suppression the chunk can name, in a few queries.

        What was looked up is remembered, so `find` knows a miss is a real miss and does not
        query again per message (new contacts are the common case on a busy day).
        """
        self.preloaded = (set(user_ids), {e.lower() for e in emails}, set(anons))
        self.load(user_ids=self.preloaded[0], emails=self.preloaded[1], anons=self.preloaded[2])
        if not self.definitions:
            self.definitions = {d.name: d for d in PropertyDefinition.objects.all()}

    def load(self, *, user_ids: set[str] = frozenset(), emails: set[str] = frozenset(), anons: set[str] = frozenset()):
        user_ids = set(user_ids) - self.loaded_user_ids
        emails = {e.lower() for e in emails} - self.loaded_emails
        anons = set(anons) - self.loaded_anons
        # Merged-away userIds live on as identities of the contact they were merged into.
        identity_keys = anons | user_ids
        query = Q()
        if user_ids:
            query |= Q(user_id__any=user_ids)
        if emails:
            query |= Q(email__any=emails)
        if identity_keys:
            query |= Q(pk__in=ContactIdentity.objects.filter(anonymous_id__any=identity_keys).values("contact_id"))
        if query:
            # Locked until the chunk commits (PostgreSQL): a second worker draining messages
            # for the same contacts waits and then reads our writes, instead of overwriting
            # them with its own stale copy of the properties. In pk order, so two workers
            # lock the rows they share in the same order.
            contacts = Contact.objects.filter(query).order_by("pk")
            if transaction.get_connection().in_atomic_block:
                contacts = contacts.select_for_update()
            for contact in contacts:
                if contact.pk not in self.by_pk:
                    self._remember(contact)
                if contact.email and contact.email not in self.loaded_emails:
                    # Its suppressions come with it, so a later opt-in needs no lookup of its own.
                    emails.add(contact.email)
        if identity_keys:
            for identity in ContactIdentity.objects.filter(anonymous_id__any=identity_keys).only(
                "contact_id", "anonymous_id"
            ):
                contact = self.by_pk.get(identity.contact_id)
                if contact is not None:
                    self.by_anon[identity.anonymous_id] = contact
        md5s = {email_md5(e) for e in emails}
        if md5s or user_ids:
            for row in Suppression.objects.filter(Q(email_md5__any=md5s) | Q(user_id__any=user_ids)).values(
                "email_md5", "user_id", "reason"
            ):
                if row["reason"] == SuppressionReason.ERASED:
                    # Erased people stay out until staff delete the suppression.
                    if row["email_md5"]:
                        self.suppressed_md5.add(row["email_md5"])
                    if row["user_id"]:
                        self.suppressed_users.add(row["user_id"])
                elif row["reason"] != SuppressionReason.UPLOADED and row["email_md5"]:
                    # Unsubscribed, bounced or complained: they may be contacts, never mailed.
                    self.unmailable[row["email_md5"]] = row["reason"]
        self.loaded_user_ids |= user_ids
        self.loaded_emails |= emails
        self.loaded_anons |= anons

    def _remember(self, contact: Contact) -> None:
        if contact.pk is not None:
            self.by_pk[contact.pk] = contact
        if contact.user_id:
            self.by_user_id[contact.user_id] = contact
        if contact.email:
            self.by_email[contact.email] = contact

    def forget(self) -> None:
        """Drop everything cached after a direct database change (merge, erase)."""
        self.by_user_id.clear()
        self.by_email.clear()
        self.by_anon.clear()
        self.by_pk.clear()
        self.loaded_user_ids.clear()
        self.loaded_emails.clear()
        self.loaded_anons.clear()
        # Reload what the chunk names in one go, not one query per later message.
        user_ids, emails, anons = self.preloaded
        self.load(user_ids=user_ids, emails=emails, anons=anons)

    # --- identity -------------------------------------------------------------------------
    def find(self, *, user_id: str = "", email: str = "", anonymous_id: str = "") -> Contact | None:
        """Match on userId, then email, then anonymousId (the order PRODUCT.md sets).

        A userId merged into another contact by alias is matched as that contact. An
        anonymousId is not trusted for a message whose userId names somebody else: a shared
        device must not fold one person's traits into another's.
        """
        email = email.lower() if email else ""
        # Ids the preload did not see (a handler asked for another one): one lookup.
        self.load(
            user_ids={user_id} if user_id else set(),
            emails={email} if email else set(),
            anons={anonymous_id} if anonymous_id else set(),
        )
        if user_id:
            if user_id in self.by_user_id:
                return self.by_user_id[user_id]
            if user_id in self.by_anon:
                return self.by_anon[user_id]
        if email and email in self.by_email:
            return self.by_email[email]
        if anonymous_id and anonymous_id in self.by_anon:
            contact = self.by_anon[anonymous_id]
            if not (user_id and contact.user_id and contact.user_id != user_id):
                return contact
        return None

    def is_suppressed(self, *, user_id: str = "", email: str = "") -> bool:
        return bool(
            (user_id and user_id in self.suppressed_users) or (email and email_md5(email) in self.suppressed_md5)
        )

    def create(self, *, user_id: str = "", email: str = "", anonymous_id: str = "", ts: datetime) -> Contact:
        if self.is_suppressed(user_id=user_id, email=email):
            raise Skip("this person is on the suppression list; staff must lift it before they can be re-created")
        now = self.now
        contact = Contact(
            user_id=user_id or None,
            email=email.lower() or None,
            source=self.integration,
            created_at=now,
            updated_at=now,
            last_seen_at=ts,
            subscription_changed_at=now,
            subscription_reason="created",
        )
        if email:
            contact.stamps["email"] = stamp(ts)
            if email_md5(email) in self.unmailable:
                contact.subscribed = False
                contact.subscription_reason = "on the suppression list when created"
        self.new.append(contact)
        self._remember(contact)
        if user_id:
            self.newly_known_ids.add(user_id)
        if anonymous_id:
            self.add_anonymous_id(contact, anonymous_id)
        return contact

    def assign_user_id(self, contact: Contact, user_id: str, ts: datetime) -> None:
        """Give a contact known only by email or anonymousId the userId a message names."""
        if not user_id or contact.user_id or user_id in self.by_user_id or self.is_suppressed(user_id=user_id):
            return
        self.changed(contact, ChangeKind.FIELD, "user_id", contact.user_id, user_id, ts)
        contact.user_id = user_id
        contact.stamps["user_id"] = stamp(ts)
        self.by_user_id[user_id] = contact
        self.newly_known_ids.add(user_id)
        self.touch(contact, ts, "user_id", "stamps")

    def add_anonymous_id(self, contact: Contact, anonymous_id: str) -> None:
        if not anonymous_id or self.by_anon.get(anonymous_id) is contact:
            return
        if anonymous_id in self.by_anon:
            return  # it already points at someone else; alias is how two people become one
        self.by_anon[anonymous_id] = contact
        self.identities.append(ContactIdentity(contact=contact, anonymous_id=anonymous_id))
        self.newly_known_ids.add(anonymous_id)

    def touch(self, contact: Contact, ts: datetime | None = None, *fields: str) -> None:
        contact.updated_at = self.now
        if ts and (contact.last_seen_at is None or ts > contact.last_seen_at):
            contact.last_seen_at = ts
        if contact.pk is not None:
            self.dirty[contact.pk] = contact
            self.dirty_fields.update(fields)

    def changed(
        self, contact: Contact, kind: str, name: str, old: Any, new: Any, ts: datetime, source: int | None = -1
    ) -> None:
        """Record old → new for the contact's history; written with the chunk, in one insert.
        `source` is the inbox row (by default the one being applied). A contact this chunk
        creates has no history yet: its first values are where it began, not changes."""
        if old != new and contact.pk is not None:
            source = self.source_id if source == -1 else source
            self.changes.append((contact, source, kind, name, old, new, ts))

    # --- traits ---------------------------------------------------------------------------
    def _newer(self, contact: Contact, key: str, ts: datetime) -> bool:
        return is_newer(contact.stamps, key, ts)

    def set_field(self, contact: Contact, field: str, value: Any, ts: datetime, warnings: list[str]) -> None:
        if not self._newer(contact, field, ts):
            return
        if field == "email":
            if value is None:
                return  # the email is how the contact is matched; null does not unset it
            email = clean_email(value)
            if email is None:
                warnings.append(f"traits.email: {str(value)[:80]!r} is not a valid email address; not stored")
                return
            value = email
            self.load(emails={value})
            other = self.by_email.get(value)
            if other is not None and other is not contact:
                warnings.append(f"traits.email: {value} belongs to another contact; not changed")
                return
            if contact.email and contact.email != value:
                self.by_email.pop(contact.email, None)
            self.by_email[value] = contact
        elif field == "address":
            if value is not None and not isinstance(value, dict):
                warnings.append("traits.address must be an object; not stored")
                return
            value = value or {}
        else:
            # Cut to the column, so one long value cannot fail the whole chunk's write.
            value = "" if value is None else str(value)[: field_length(field)]
        self.changed(contact, ChangeKind.FIELD, field, getattr(contact, field), value, ts)
        setattr(contact, field, value)
        contact.stamps[field] = stamp(ts)
        self.touch(contact, ts, field, "stamps")

    def set_traits(
        self,
        contact: Contact,
        traits: dict,
        ts: datetime,
        warnings: list[str],
        *,
        where: str = "traits",
        name_rule=property_name,
    ) -> set[str]:
        """Standard fields to columns; every other trait to a typed property (or raw, per policy).

        Property names are as sent (`name_rule` changes that for partners with their own rule).
        Returns the property names the traits carried.
        """
        name = traits.get("name")
        if isinstance(name, str) and not any(k in traits for k in NAME_KEYS):
            first, last = split_name(name)
            self.set_field(contact, "first_name", first, ts, warnings)
            self.set_field(contact, "last_name", last, ts, warnings)
        carried: set[str] = set()
        written: set[str] = set()  # the columns the properties went to: one touch for them all
        for key, value in traits.items():
            if not isinstance(key, str):
                continue
            field = field_for(key)
            if field is not None:
                self.set_field(contact, field, value, ts, warnings)
            elif not is_special(key):
                prop = name_rule(key)
                if prop is not None:
                    carried.add(prop)
                column = self.set_property(contact, key, prop, value, ts, warnings, where=where)
                if column is not None:
                    written.add(column)
        if written:
            self.touch(contact, ts, *written, "stamps")
        return carried

    def set_property(
        self, contact: Contact, key: str, name: str | None, value: Any, ts: datetime, warnings: list[str], *, where: str
    ) -> str | None:
        """Write one trait as a property (or a raw trait); the column written, for the caller's
        touch, or None when nothing was."""
        if name is None:
            if self.unknown_traits != "ignore":
                return self._set_raw(contact, str(key)[:100], value, ts)
            return None
        definition = self.definitions.get(name) or self.new_definitions.get(name)
        if definition is None:
            if value is None or self.unknown_traits == "ignore":
                return None
            if self.unknown_traits == "raw":
                return self._set_raw(contact, name, value, ts)
            type_ = "text" if self.unknown_traits == "text" else infer_type(value)
            if type_ is None:
                return self._set_raw(contact, name, value, ts)
            definition = PropertyDefinition(name=name, type=type_, source=f"inferred by {self.integration.name}"[:100])
            self.new_definitions[name] = definition
        stamps = contact.stamps
        when = stamp(ts)
        previous = stamps.get(name)
        if previous is not None and previous > when:
            return None  # a newer message wrote it (contacts.stamps.is_newer)
        properties = contact.properties
        old = properties.get(name)
        if value is None:
            properties.pop(name, None)
        else:
            try:
                properties[name] = coerce(value, definition.type)
            except PropertyError as error:
                warnings.append(f"{where}.{key}: {error}; not stored (property {name} is {definition.type})")
                return None
        self.changed(contact, ChangeKind.PROPERTY, name, old, properties.get(name), ts)
        stamps[name] = when
        stamps[writer_key(name)] = self.writer
        return "properties"

    def assigned_by_me(self, contact: Contact) -> set[str]:
        """Properties this integration was the last to assign on the contact."""
        return {n for n in contact.properties if contact.stamps.get(writer_key(n)) == self.writer}

    def unset_property(self, contact: Contact, name: str, ts: datetime) -> None:
        if name in contact.properties and self._newer(contact, name, ts):
            self.changed(contact, ChangeKind.PROPERTY, name, contact.properties.pop(name), None, ts)
            contact.stamps[name] = stamp(ts)
            contact.stamps.pop(writer_key(name), None)
            self.touch(contact, ts, "properties", "stamps")

    def _set_raw(self, contact: Contact, key: str, value: Any, ts: datetime) -> str | None:
        stamp_key = f"~{key}"
        if not self._newer(contact, stamp_key, ts):
            return None
        if value is None:
            contact.raw_traits.pop(key, None)
        else:
            contact.raw_traits[key] = value
        contact.stamps[stamp_key] = stamp(ts)
        return "raw_traits"

    # --- subscription, lists, audiences, events -----------------------------------------------
    def set_subscribed(
        self, contact: Contact, subscribed: bool, ts: datetime, reason: str, warnings: list[str] | None = None
    ) -> None:
        if not self._newer(contact, "subscribed", ts):
            return  # an older message must not undo a newer (un)subscribe
        if subscribed and contact.email:
            # Opting in again lifts an unsubscribe; a bounce or complaint is not the person's
            # to lift: the address stays unsubscribed until staff delete that suppression.
            self.load(emails={contact.email})
            md5 = email_md5(contact.email)
            blocked = self.unmailable.get(md5)
            if blocked in (SuppressionReason.BOUNCED, SuppressionReason.COMPLAINED):
                if warnings is not None:
                    warnings.append(f"subscribed: true not applied; this address is suppressed ({blocked})")
                return
            if blocked == SuppressionReason.UNSUBSCRIBED:
                del self.unmailable[md5]
                self.lifted_md5.add(md5)
        contact.stamps["subscribed"] = stamp(ts)
        if contact.subscribed != subscribed:
            self.changed(contact, ChangeKind.SUBSCRIPTION, "subscribed", contact.subscribed, subscribed, ts)
            contact.subscribed = subscribed
            contact.subscription_changed_at = ts
            contact.subscription_reason = reason[:200]
        self.touch(contact, ts, "subscribed", "subscription_changed_at", "subscription_reason", "stamps")

    def set_list(self, contact: Contact, list_id: str, subscribed: bool, ts: datetime) -> None:
        """Queue a list membership; lists are looked up (or created) once per chunk in flush."""
        list_id = str(list_id).strip()[:100]
        if not list_id:
            return
        key = (id(contact), list_id)
        current = self.memberships.get(key)
        if current is None or current["ts"] <= ts:
            self.memberships[key] = {
                "contact": contact,
                "list_id": list_id,
                "subscribed": subscribed,
                "ts": ts,
                "source": self.source_id,
                "existed": contact.pk is not None,
            }

    def set_audience(self, contact: Contact, key: str, member: bool, ts: datetime) -> None:
        # Every transition is kept, so "entered then exited" in one chunk records both times.
        self.audiences.setdefault((id(contact), key[:255]), []).append(
            {
                "contact": contact,
                "key": key[:255],
                "member": member,
                "ts": ts,
                "source": self.source_id,
                "existed": contact.pk is not None,
            }
        )

    def add_event(
        self, contact: Contact, *, type: str, name: str, properties: dict, timestamp: datetime, source_id: int | None
    ) -> None:
        """A timeline event; `source_id` (the inbox row) makes a re-run chunk add it once."""
        self.events.append((contact, type, name or f"({type})", properties, timestamp, source_id))
        self.touch(contact, timestamp, "last_seen_at")

    # --- changes made in the database at once -------------------------------------------------
    def alias(self, *, user_id: str, previous_id: str) -> Contact:
        """Join previousId to userId (merging two contacts if both exist); the contact now.

        Raises Wait when neither id is known yet: the alias waits, as an anonymous visitor
        does, and is applied once an identify names either id.
        """
        if self.is_suppressed(user_id=user_id) or self.is_suppressed(user_id=previous_id):
            raise Skip("this person is on the suppression list (erased); alias not applied")
        self.flush()
        outcome = contact_alias(user_id=user_id, previous_id=previous_id)
        if outcome.merged_pk is not None:
            self.gone[outcome.merged_pk] = outcome.contact
        if outcome.linked_anonymous_id:
            self.newly_known_ids.add(outcome.linked_anonymous_id)
        self.forget()
        return outcome.contact

    def erase(self, *, user_id: str, email: str, requested_by: str, message_id: str) -> None:
        """GDPR delete through contacts.services.contact_erase, keeping the chunk's view true."""
        self.flush()
        before = set(self.by_pk)
        self.erased = True
        record = contact_erase(
            user_id=user_id,
            email=email,
            requested_by=requested_by,
            integration=self.integration,
            message_id=message_id,
        )
        # Contacts of this chunk that the erase removed: rows pointing at them point nowhere.
        remaining = set(Contact.objects.filter(pk__in=before).values_list("pk", flat=True))
        for pk in before - remaining:
            self.gone[pk] = None
        if record.contact_pk is not None:
            self.gone[record.contact_pk] = None
        self.forget()
        # Later messages in this chunk must see the new suppression too.
        self.suppressed_users.add(user_id)
        if email:
            self.suppressed_md5.add(email_md5(email))

    def current(self, contact: Contact | None) -> Contact | None:
        """The contact that stands for `contact` now (after merges and erasures in this chunk)."""
        while contact is not None and contact.pk in self.gone:
            contact = self.gone[contact.pk]
        return contact

    # --- writing --------------------------------------------------------------------------
    @transaction.atomic
    def flush(self) -> None:
        if self.new_definitions:
            PropertyDefinition.objects.bulk_create(self.new_definitions.values(), ignore_conflicts=True)
            self.definitions.update(self.new_definitions)
            self.new_definitions = {}
        if self.new:
            bulk_insert(Contact, self.new)
            for contact in self.new:
                self.by_pk[contact.pk] = contact
        if self.dirty:
            fields = sorted(self.dirty_fields | {"updated_at", "last_seen_at"})
            # In pk order, so two workers updating the same contacts lock them in one order.
            rows = [self.dirty[pk] for pk in sorted(self.dirty)]
            bulk_update(Contact, rows, fields)
        if self.identities:
            bulk_insert(
                ContactIdentity,
                [ContactIdentity(contact_id=i.contact.pk, anonymous_id=i.anonymous_id) for i in self.identities],
                ignore_conflicts=True,
            )
        if self.memberships:
            self._flush_memberships()
        if self.audiences:
            self._flush_audiences()
        if self.lifted_md5:
            Suppression.objects.filter(email_md5__in=self.lifted_md5, reason=SuppressionReason.UNSUBSCRIBED).delete()
            self.lifted_md5 = set()
        if self.events:
            integration_id = self.writer
            ids = events_insert(
                [
                    (contact.pk, integration_id, source, type_, name, properties, timestamp)
                    for contact, type_, name, properties, timestamp, source in self.events
                ]
            )
            # One signal for the chunk's tracks (loops start from them), not one per event.
            events_announce(
                [
                    RecordedEvent(
                        contact_id=stored[1],
                        event_id=stored[0],
                        name=name,
                        properties=properties,
                        timestamp=timestamp,
                        integration_id=integration_id,
                        source="segment",
                    )
                    for (_, type_, name, properties, timestamp, _), stored in zip(self.events, ids, strict=True)
                    if type_ == "track" and stored is not None
                ]
            )
        if self.changes:
            changes_insert(
                [(c.pk, src, kind, name, old, new, ts, "") for c, src, kind, name, old, new, ts in self.changes]
            )
        self._reset_pending()

    def _flush_memberships(self) -> None:
        wanted = list(self.memberships.values())
        list_ids = {m["list_id"] for m in wanted}
        missing = list_ids - set(self.lists)
        if missing:
            MailingList.objects.bulk_create(
                [MailingList(list_id=i, name=f"List {i}", description="Created by a message.") for i in missing],
                ignore_conflicts=True,
            )
            for mailing_list in MailingList.objects.filter(list_id__in=missing):
                self.lists[mailing_list.list_id] = mailing_list
        # Out of order across chunks: a membership written by a newer message stays.
        contact_ids = {m["contact"].pk for m in wanted}
        newer = {
            (row["contact_id"], row["mailing_list_id"]): (row["updated_at"], row["subscribed"])
            for row in ListMembership.objects.filter(
                contact_id__in=contact_ids, mailing_list_id__in=[self.lists[i].pk for i in list_ids]
            ).values("contact_id", "mailing_list_id", "updated_at", "subscribed")
        }
        rows = []
        for m in wanted:
            list_pk = self.lists[m["list_id"]].pk
            current, was = newer.get((m["contact"].pk, list_pk), (None, None))
            if current is not None and current > m["ts"]:
                continue
            if m["existed"]:
                self.changed(m["contact"], ChangeKind.LIST, m["list_id"], was, m["subscribed"], m["ts"], m["source"])
            rows.append(
                ListMembership(
                    contact_id=m["contact"].pk, mailing_list_id=list_pk, subscribed=m["subscribed"], updated_at=m["ts"]
                )
            )
        if rows:
            ListMembership.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["contact", "mailing_list"],
                update_fields=["subscribed", "updated_at"],
            )

    def _flush_audiences(self) -> None:
        transitions = [t for ts in self.audiences.values() for t in ts]
        existing = {
            (a.contact_id, a.key): a
            for a in AudienceMembership.objects.filter(
                contact_id__in={t["contact"].pk for t in transitions}, key__in={t["key"] for t in transitions}
            )
        }
        changed: dict[tuple[int, str], AudienceMembership] = {}
        for t in sorted(transitions, key=lambda t: t["ts"]):
            pair = (t["contact"].pk, t["key"])
            row = changed.get(pair) or existing.get(pair)
            if row is None:
                row = AudienceMembership(contact_id=pair[0], key=pair[1], member=not t["member"])
            elif row.updated_at > t["ts"]:
                continue  # a newer sync already said where this contact stands
            if t["existed"] and (row.pk is None or row.member != t["member"]):
                was = None if row.pk is None and pair not in changed else row.member
                self.changed(t["contact"], ChangeKind.AUDIENCE, t["key"], was, t["member"], t["ts"], t["source"])
            if t["member"] and (not row.member or row.entered_at is None):
                row.entered_at = t["ts"]
                row.exited_at = None
            if not t["member"] and (row.member or row.exited_at is None):
                row.exited_at = t["ts"]
            row.member = t["member"]
            row.updated_at = t["ts"]
            changed[pair] = row
        fields = ["member", "entered_at", "exited_at", "updated_at"]
        AudienceMembership.objects.bulk_create([r for r in changed.values() if r.pk is None])
        AudienceMembership.objects.bulk_update([r for r in changed.values() if r.pk is not None], fields)
