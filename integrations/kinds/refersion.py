"""Refersion (seeds/004): affiliates from identify; delete removes them; Engage traits on them.

- Identify keeps the person as a contact (as every kind does) and creates or updates their
  affiliate. A new affiliate needs, as Refersion's trait table says: `name`, or a first and a
  last name (`firstName`/`lastName` or `first_name`/`last_name`, mixed spellings accepted; a
  single `name` is split into first and last, and kept as sent); `email`; and an `address`
  object with `street`, `city`, `state`, `postalCode` (or `postal_code`) and `country`.
  Without them no affiliate is created and the inbox row is skipped naming each missing or
  malformed trait. An affiliate that exists is updated with whatever a later call sends, so
  Engage syncs that send only what changed apply.
- New affiliates start `pending` or `active` and join an offer, as the integration is set
  (`affiliate_status`, `offer`). The key is publickey.secretkey, as Refersion's.
- Engage audiences (a snake_cased name: true/false) and computed traits are kept on the
  affiliate as properties, with the time each changed value.
- Delete (the seed's payload, `"context": []` included) erases the person as every kind does,
  and removes their affiliate; its conversions stay, anonymised, for accounting.

Orders ("Order Completed", "Order Refunded") and the site's calls that carry a referral link's
`ref` and `click_id` are applied to affiliates by this kind and by the segment kind alike
(`AffiliateOrders`). A chunk without either opens no affiliates batch at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from affiliates.batch import AffiliateBatch, Buyer
from affiliates.codes import code_clean
from affiliates.orders import ORDER_COMPLETED, ORDER_EVENTS, OrderError, order_from, refund_from
from contacts.models import ContactIdentity
from contacts.traits import clean_email, split_name
from integrations.kinds.base import UNKNOWN_TRAITS, Setting, Skip
from integrations.kinds.common import ContactKind
from integrations.kinds.payload import chunk_ids, context_of, identify_traits, properties_of

if TYPE_CHECKING:
    from contacts.batch import ContactBatch
    from integrations.models import InboxMessage

AFFILIATE_STATUS = Setting(
    "affiliate_status",
    str,
    "pending",
    "The status of affiliates this integration creates: 'pending' (staff approve them) or 'active'.",
    choices=("pending", "active"),
)
OFFER = Setting("offer", int, None, "The id of the offer new affiliates join; empty: none until staff choose one.")

ADDRESS_PARTS = (("street",), ("city",), ("state",), ("postalCode", "postal_code"), ("country",))
# Traits that are the affiliate's own fields or ids, never properties.
PROFILE_TRAITS = {
    "name",
    "firstName",
    "first_name",
    "lastName",
    "last_name",
    "email",
    "address",
    "userId",
    "user_id",
    "id",
    "anonymousId",
    "anonymous_id",
    "subscribed",
}
LINK_MARKERS = ("ref=", "click_id=")


# --- the composite batch -------------------------------------------------------------------------------
class WithAffiliates:
    """A contacts batch with an affiliates batch beside it: everything the contact handlers read
    or set goes to the contacts batch, so they work on it unchanged."""

    __slots__ = ("contacts", "affiliates", "buyer_ids", "visits")

    def __init__(
        self,
        contacts: ContactBatch,
        affiliates: AffiliateBatch,
        buyer_ids: dict[int, set[str]],
        visits: dict[int, tuple[str, str]],
    ) -> None:
        object.__setattr__(self, "contacts", contacts)
        object.__setattr__(self, "affiliates", affiliates)
        # Contact pk → the anonymousIds each buyer of the chunk was seen with before.
        object.__setattr__(self, "buyer_ids", buyer_ids)
        # Inbox row pk → (click_id, referral code) its context carries, read once per chunk.
        object.__setattr__(self, "visits", visits)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "contacts"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.contacts, name, value)


def affiliates_of(batch) -> AffiliateBatch | None:
    return batch.affiliates if isinstance(batch, WithAffiliates) else None


# --- reading the site's calls ----------------------------------------------------------------------
def _text(value: Any, limit: int = 2000) -> str:
    return value[:limit] if isinstance(value, str) else ""


def link_params(message: InboxMessage) -> tuple[str, str] | None:
    """(click_id, referral code) a call from the site carries, from the page URL (context.page,
    or a page call's own properties) or context.campaign; None when it carries neither."""
    context = context_of(message)
    campaign = context.get("campaign")
    click_id = code = ""
    if isinstance(campaign, dict):
        click_id = _text(campaign.get("click_id"), 64)
        code = _text(campaign.get("ref") or campaign.get("referral_code"), 64)
    page = context.get("page")
    urls = [page.get("url"), page.get("search")] if isinstance(page, dict) else []
    if message.type in ("page", "screen"):
        properties = properties_of(message)
        urls += [properties.get("url"), properties.get("search")]
    for url in urls:
        if not isinstance(url, str) or not any(marker in url for marker in LINK_MARKERS):
            continue
        query = urlsplit(url).query if "?" in url or "://" in url else url.lstrip("?")
        params = parse_qs(query[:4000])
        click_id = click_id or (params.get("click_id") or [""])[0][:64]
        code = code or (params.get("ref") or [""])[0][:64]
    if not (click_id or code):
        return None
    return click_id.strip(), code_clean(code) or ""


def is_order(message: InboxMessage) -> bool:
    return message.type == "track" and message.event in ORDER_EVENTS


# --- the Refersion traits ----------------------------------------------------------------------------
@dataclass
class Profile:
    """What an identify says about the affiliate, and what it lacks to create one."""

    name: str = ""
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    address: dict | None = None
    problems: list[str] = field(default_factory=list)  # missing or malformed traits, each named


def _present(value: Any) -> bool:
    return value is not None and value != ""


def profile_of(traits: dict, message: InboxMessage) -> Profile:
    profile = Profile()
    first_keys = [k for k in ("firstName", "first_name") if _present(traits.get(k))]
    last_keys = [k for k in ("lastName", "last_name") if _present(traits.get(k))]
    first = traits.get(first_keys[0]) if first_keys else None
    last = traits.get(last_keys[0]) if last_keys else None
    name = traits.get("name")
    for key, value in ((first_keys[0] if first_keys else "", first), (last_keys[0] if last_keys else "", last)):
        if value is not None and not isinstance(value, str):
            profile.problems.append(f"trait {key} must be a string")
    if _present(name) and not isinstance(name, str):
        profile.problems.append("trait name must be a string")
        name = None
    if isinstance(first, str) and isinstance(last, str) and first.strip() and last.strip():
        profile.first_name, profile.last_name = first.strip()[:200], last.strip()[:200]
        profile.name = name.strip()[:400] if isinstance(name, str) else ""
    elif isinstance(name, str) and name.strip():
        profile.name = " ".join(name.split())[:400]
        split_first, split_last = split_name(profile.name)
        profile.first_name = (first.strip() if isinstance(first, str) and first.strip() else split_first)[:200]
        profile.last_name = (last.strip() if isinstance(last, str) and last.strip() else split_last)[:200]
    elif first_keys and not last_keys:
        profile.problems.append(f"missing trait {'last_name' if first_keys[0] == 'first_name' else 'lastName'}")
    elif last_keys and not first_keys:
        profile.problems.append(f"missing trait {'first_name' if last_keys[0] == 'last_name' else 'firstName'}")
    elif not (first_keys or last_keys):
        profile.problems.append("missing trait name (or firstName and lastName)")

    raw_email = traits.get("email") if _present(traits.get("email")) else (message.email or None)
    if raw_email is None:
        profile.problems.append("missing trait email")
    else:
        profile.email = clean_email(raw_email)
        if profile.email is None:
            profile.problems.append(f"trait email: {str(raw_email)[:80]!r} is not a valid email address")

    address = traits.get("address")
    if address is None:
        profile.problems.append("missing trait address")
    elif not isinstance(address, dict):
        profile.problems.append(
            f"trait address must be an object (street, city, state, postalCode, country), not {type(address).__name__}"
        )
    else:
        missing = []
        for spellings in ADDRESS_PARTS:
            value = next((address[k] for k in spellings if _present(address.get(k))), None)
            if value is None or isinstance(value, bool) or not isinstance(value, str | int):
                missing.append(f"address.{spellings[0]}" + (f" (or address.{spellings[1]})" if spellings[1:] else ""))
        if missing:
            profile.problems.append(f"missing trait{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        profile.address = {str(k)[:100]: v for k, v in list(address.items())[:20]}
    return profile


def engage_properties(message: InboxMessage, traits: dict) -> dict[str, Any]:
    """Engage's audiences and computed traits. With context.personas (Engage's own calls) every
    trait beside the profile is one; without it, the audience shape: a snake_case name with
    true or false."""
    if isinstance(context_of(message).get("personas"), dict):
        return {k: v for k, v in traits.items() if isinstance(k, str) and k not in PROFILE_TRAITS}
    return {
        k: v
        for k, v in traits.items()
        if isinstance(v, bool) and isinstance(k, str) and k not in PROFILE_TRAITS and k == k.lower() and "_" in k
    }


# --- orders and visits, for the refersion and segment kinds ---------------------------------------------
class AffiliateOrders:
    """Applies Order Completed and Order Refunded tracks to affiliates (attribution, commission,
    reversal), and ties referral-link clicks to the visitor whose calls carry their `ref` and
    `click_id`. Mixed into a ContactKind: the contact part is applied first, as before."""

    # The refersion kind always needs the affiliates batch (identify, delete); others only for a
    # chunk with orders or referral-link parameters.
    affiliates_always: ClassVar[bool] = False

    def affiliate_batch(self) -> AffiliateBatch:
        return AffiliateBatch(source=f"{self.integration.name} ({self.integration.kind})")

    def open_batch(self, rows: list[InboxMessage]):
        contacts = super().open_batch(rows)
        orders = [row for row in rows if is_order(row)]
        visits = {row.pk: params for row in rows if (params := link_params(row)) is not None}
        if not (orders or visits or self.affiliates_always):
            return contacts  # nothing for affiliates: not a single query more
        affiliates = self.affiliate_batch()
        order_ids, codes, coupons = set(), set(), set()
        visitors = {v for row in rows if row.pk in visits for v in (row.user_id, row.anonymous_id)}
        buyer_contacts = []
        for row in orders:
            properties = properties_of(row)
            value = properties.get("order_id", properties.get("orderId"))
            if isinstance(value, str | int) and not isinstance(value, bool):
                order_ids.add(str(value).strip()[:255])
            if row.event == ORDER_COMPLETED:
                visitors.update((row.user_id, row.anonymous_id))
                contact = contacts.find(user_id=row.user_id, anonymous_id=row.anonymous_id)
                if contact is not None and contact.pk is not None:
                    buyer_contacts.append(contact)
                    visitors.add(contact.user_id or "")
                for key in ("referral_code", "ref"):
                    if isinstance(properties.get(key), str):
                        codes.add(properties[key].strip()[:32])
                if isinstance(properties.get("coupon"), str):
                    coupons.add(properties["coupon"].strip()[:100])
        known_ids: dict[int, set[str]] = {}
        if buyer_contacts:
            # Every anonymousId a buyer was seen with: their click may be tied to an earlier one.
            for contact_id, anonymous_id in ContactIdentity.objects.filter(
                contact_id__in={c.pk for c in buyer_contacts}
            ).values_list("contact_id", "anonymous_id"):
                known_ids.setdefault(contact_id, set()).add(anonymous_id)
                visitors.add(anonymous_id)
        if self.affiliates_always:
            user_ids, emails, _anons = chunk_ids(rows)
        else:
            user_ids, emails = set(), set()
        affiliates.preload(
            user_ids=user_ids,
            emails=emails,
            order_ids=order_ids,
            codes={c for _, c in visits.values() if c} | codes,
            coupons=coupons,
            visitor_ids=visitors - {""},
            click_ids={c for c, _ in visits.values() if c},
        )
        return WithAffiliates(contacts, affiliates, known_ids, visits)

    def close_batch(self, batch, rows: list[InboxMessage]) -> None:
        super().close_batch(batch, rows)  # the contacts first: affiliates point at them
        affiliates = affiliates_of(batch)
        if affiliates is not None:
            affiliates.flush()

    def visit(self, batch: WithAffiliates, message: InboxMessage) -> None:
        params = batch.visits.get(message.pk) if message.pk is not None else link_params(message)
        if params is None:
            return
        context = context_of(message)
        page = context.get("page") if isinstance(context.get("page"), dict) else {}
        warning = batch.affiliates.visit(
            click_id=params[0],
            code=params[1],
            anonymous_id=message.anonymous_id,
            user_id=message.user_id,
            at=message.timestamp,
            referrer=_text(page.get("referrer")),
            user_agent=_text(context.get("userAgent"), 500),
        )
        if warning:
            message.warnings.append(warning)

    def page(self, batch, message: InboxMessage) -> None:
        if isinstance(batch, WithAffiliates):
            self.visit(batch, message)
        super().page(batch, message)

    def track(self, batch, message: InboxMessage) -> None:
        affiliates = affiliates_of(batch)
        if affiliates is not None:
            self.visit(batch, message)
        super().track(batch, message)
        if affiliates is None or not is_order(message):
            return
        try:
            if message.event == ORDER_COMPLETED:
                warning = self.order_completed(batch, message)
            else:
                order_id, lines = refund_from(properties_of(message))
                warning = affiliates.order_refunded(order_id, lines, at=message.timestamp, source_message_id=message.pk)
        except OrderError as error:
            warning = f"{error}; not applied to affiliates"
        if warning:
            message.warnings.append(warning)

    def order_completed(self, batch: WithAffiliates, message: InboxMessage) -> str | None:
        properties = properties_of(message)
        contact = message.contact
        ids = {message.user_id, message.anonymous_id}
        if contact is not None:
            ids.add(contact.user_id or "")
            ids |= batch.buyer_ids.get(contact.pk, set())
        ids.discard("")
        code = properties.get("referral_code", properties.get("ref"))
        coupon = properties.get("coupon")
        order_id = properties.get("order_id", properties.get("orderId"))
        if not batch.affiliates.may_concern(
            order_id=str(order_id).strip()[:255] if isinstance(order_id, str | int) else "",
            visitor_ids=ids,
            code=str(code).strip() if isinstance(code, str | int) else "",
            coupon=coupon.strip() if isinstance(coupon, str) else "",
        ):
            return None  # nobody's order: not worth reading further
        order = order_from(properties)
        buyer = Buyer(
            user_id=message.user_id,
            anonymous_id=message.anonymous_id,
            email=clean_email(message.email) or "",
            contact=contact,
            ids=ids,
        )
        return batch.affiliates.order_completed(order, buyer=buyer, at=message.timestamp, source_message_id=message.pk)


class RefersionKind(AffiliateOrders, ContactKind):
    kind = "refersion"
    label = "Refersion"
    description = (
        "Affiliates from identify (name, email, address); Engage traits on them; delete removes them; "
        "orders attributed to them."
    )
    settings = (UNKNOWN_TRAITS, AFFILIATE_STATUS, OFFER)
    affiliates_always = True

    def affiliate_batch(self) -> AffiliateBatch:
        batch = super().affiliate_batch()
        batch.new_status = self.option("affiliate_status")
        offer_id = self.option("offer")
        batch.new_offer_id = offer_id if batch.offer(offer_id) is not None else None
        return batch

    def identify(self, batch, message: InboxMessage) -> None:
        traits = identify_traits(message)
        profile = profile_of(traits, message)
        super().identify(batch, message)  # the contact, as every kind keeps it
        affiliates = batch.affiliates
        affiliate = affiliates.find(user_id=message.user_id, email=profile.email or "")
        ts = message.timestamp
        if affiliate is None:
            if profile.problems:
                raise Skip(f"no affiliate created: {'; '.join(profile.problems)}")
            affiliate = affiliates.create(ts=ts)
            if self.option("offer") is not None and affiliates.new_offer_id is None:
                message.warnings.append(f"setting offer={self.option('offer')} names no offer; the affiliate has none")
        else:
            message.warnings.extend(p for p in profile.problems if not p.startswith("missing"))
        affiliates.assign_user_id(affiliate, message.user_id)
        for name in ("name", "first_name", "last_name", "email", "address"):
            value = getattr(profile, name)
            if value not in (None, ""):
                affiliates.set_field(affiliate, name, value, ts, message.warnings)
        affiliates.set_properties(affiliate, engage_properties(message, traits), ts)
        affiliates.link_contact(affiliate, message.contact)

    def delete(self, batch, message: InboxMessage) -> None:
        affiliates = batch.affiliates
        email = clean_email(message.email) or ""
        found = {
            a.pk: a
            for a in (affiliates.find(user_id=message.user_id), affiliates.find(email=email) if email else None)
            if a is not None
        }
        # Write what this chunk changed before the erasure reads and redacts it.
        batch.contacts.flush()
        affiliates.flush()
        super().delete(batch, message)
        affiliates.remove(found.values())
