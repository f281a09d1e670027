"""Apply a drained chunk to affiliates, clicks and conversions with a handful of queries.

`AffiliateBatch` loads what the chunk names up front (affiliates by userId, email, referral
code or coupon; the visitors' clicks; the orders' conversions), changes them in memory, and
writes everything back in bulk in `flush()`. The kinds (integrations) read the payloads and
call it with plain values: it knows Segment's e-commerce spec (affiliates.orders), not the
inbox.

Attribution of an order, in this order:
1. the buyer's last click (by any of their ids) at or before the order: it wins when it falls
   within the cookie window of its affiliate's offer;
2. else a referral code in the order's properties;
3. else a coupon tied to an affiliate;
4. else, when the last click was older than the window: an unqualified conversion ("outside the
   window") for that click's affiliate, so staff see it.
A buyer who is the affiliate (same email, userId or contact) makes it unqualified
("self-referral"). Only pending and active affiliates earn.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Model, Q

from affiliates.codes import click_id_new, code_new
from affiliates.models import (
    EARNING,
    Affiliate,
    AffiliateStatus,
    AttributedBy,
    Click,
    ClickSource,
    Conversion,
    ConversionStatus,
    Coupon,
    Offer,
    Unqualified,
)
from affiliates.orders import Line, Order, cents, commission_for
from common import clock
from common.bulk import bulk_insert, bulk_update
from contacts.stamps import is_newer, stamp

AFFILIATE_FIELDS = (
    "user_id",
    "email",
    "name",
    "first_name",
    "last_name",
    "address",
    "properties",
    "properties_changed_at",
    "stamps",
    "contact",
    "updated_at",
)
CLICK_FIELDS = ("anonymous_id", "user_id", "linked_at")
# What attribution reads of a click (not the referrer and browser, which it never needs).
CLICK_LOADED = ("id", "affiliate_id", "click_id", "clicked_at", *CLICK_FIELDS)
CONVERSION_FIELDS = (
    "commission",
    "reversed_commission",
    "refunded_amount",
    "status",
    "reason",
    "lines",
    "refunds",
    "duplicates",
    "reversed_at",
)
# A visit seen with ?ref=CODE but no click id of ours counts as a new click once per visitor
# and affiliate within this time (a visitor browsing the site is one visit, not ten).
VISIT_GAP = timedelta(minutes=30)
DEFAULT_COOKIE_DAYS = 30


# A conversion's columns in the model's order, with their defaults: a drained chunk makes
# hundreds, and Model.__init__ with keywords cost five times the positional path.
_CONVERSION_FIELDS = [f for f in Conversion._meta.concrete_fields]
_CONVERSION_INDEX = {f.attname: n for n, f in enumerate(_CONVERSION_FIELDS)}


# Defaults worked out once; those made per row (a new list, the time) are called each time.
_CONVERSION_MADE = [(n, f.default) for n, f in enumerate(_CONVERSION_FIELDS) if f.has_default() and callable(f.default)]
_CONVERSION_DEFAULTS = [
    None if (n, f.default) in _CONVERSION_MADE else f.get_default() for n, f in enumerate(_CONVERSION_FIELDS)
]


def new_conversion(**values: Any) -> Conversion:
    row = list(_CONVERSION_DEFAULTS)
    for n, make in _CONVERSION_MADE:
        if _CONVERSION_FIELDS[n].attname not in values:
            row[n] = make()
    for name, value in values.items():
        row[_CONVERSION_INDEX[name]] = value
    return Conversion(*row)


@dataclass
class Buyer:
    """Who placed an order: the message's ids, the email it carried, and the contact (if any)
    with every id known for it."""

    user_id: str = ""
    anonymous_id: str = ""
    email: str = ""
    contact: Any = None
    ids: set[str] = field(default_factory=set)


def _link(obj: Model, name: str) -> None:
    """Set `<name>_id` from the related object assigned earlier, saved since."""
    related = obj._meta.get_field(name).get_cached_value(obj, default=None)
    if related is not None:
        setattr(obj, f"{name}_id", related.pk)


class AffiliateBatch:
    def __init__(self, *, source: str, new_status: str = AffiliateStatus.PENDING, new_offer_id: int | None = None):
        self.source = source[:200]
        self.new_status = new_status
        self.new_offer_id = new_offer_id
        self.by_pk: dict[int, Affiliate] = {}
        self.by_user_id: dict[str, Affiliate] = {}
        self.by_email: dict[str, Affiliate] = {}
        self.by_code: dict[str, Affiliate] = {}
        self.coupons: dict[str, int] = {}
        self.conversions: dict[str, Conversion] = {}
        self.clicks_by_id: dict[str, Click] = {}
        self.clicks_by_visitor: dict[str, list[Click]] = {}
        self._offers: dict[int, Offer] | None = None
        self.loaded: dict[str, set[str]] = {
            k: set() for k in ("user_ids", "emails", "codes", "coupons", "orders", "visitors", "click_ids")
        }
        self.preloaded: dict[str, set[str]] = {}
        self._reset_pending()

    def _reset_pending(self) -> None:
        self.new_affiliates: list[Affiliate] = []
        self.dirty_affiliates: dict[int, Affiliate] = {}
        self.new_clicks: list[Click] = []
        self.dirty_clicks: dict[int, Click] = {}
        self.new_conversions: list[Conversion] = []
        self.dirty_conversions: dict[int, Conversion] = {}

    # --- loading --------------------------------------------------------------------------------
    def preload(
        self,
        *,
        user_ids: Iterable[str] = (),
        emails: Iterable[str] = (),
        codes: Iterable[str] = (),
        coupons: Iterable[str] = (),
        order_ids: Iterable[str] = (),
        visitor_ids: Iterable[str] = (),
        click_ids: Iterable[str] = (),
    ) -> None:
        """Load what the chunk names in a few queries; remember what was asked, so a miss later
        is a real miss (no query per message)."""
        wanted = {
            "user_ids": {u for u in user_ids if u},
            "emails": {e.lower() for e in emails if e},
            "codes": {c.upper() for c in codes if c},
            "coupons": {c.upper() for c in coupons if c},
            "orders": {o for o in order_ids if o},
            "visitors": {v for v in visitor_ids if v},
            "click_ids": {c for c in click_ids if c},
        }
        for key, values in wanted.items():
            self.preloaded.setdefault(key, set()).update(values)
        self._load(**wanted)

    def _load(self, **wanted: set[str]) -> None:
        new = {key: set(wanted.get(key, ())) - self.loaded[key] for key in self.loaded}
        locking = transaction.get_connection().in_atomic_block
        if new["visitors"] or new["click_ids"]:
            query = Q(pk__in=[])
            if new["visitors"]:
                query |= Q(anonymous_id__any=new["visitors"]) | Q(user_id__any=new["visitors"])
            if new["click_ids"]:
                query |= Q(click_id__any=new["click_ids"])
            for click in Click.objects.filter(query).only(*CLICK_LOADED):
                self._remember_click(click)
        if new["coupons"]:
            for code, affiliate_id in Coupon.objects.filter(code__any=new["coupons"]).values_list(
                "code", "affiliate_id"
            ):
                self.coupons[code] = affiliate_id
        if new["orders"]:
            conversions = Conversion.objects.filter(order_id__any=new["orders"]).order_by("pk")
            if locking:
                # Locked until the chunk commits: staff approving or the auto-approval runner
                # wait for a refund being applied, instead of writing over each other.
                conversions = conversions.select_for_update()
            for conversion in conversions:
                self.conversions[conversion.order_id] = conversion
        # Affiliates: those named, and those the clicks and coupons point at.
        query = Q()
        if new["user_ids"]:
            query |= Q(user_id__any=new["user_ids"])
        if new["emails"]:
            query |= Q(email__any=new["emails"])
        if new["codes"]:
            query |= Q(referral_code__any=new["codes"])
        pks = {self.coupons[c] for c in new["coupons"] if c in self.coupons}
        if new["visitors"] or new["click_ids"]:
            pks.update(c.affiliate_id for c in self.clicks_by_id.values())
        pks -= set(self.by_pk)
        if pks:
            query |= Q(pk__any=pks)
        if query:
            affiliates = Affiliate.objects.filter(query).order_by("pk")
            if locking and (new["user_ids"] or new["emails"]):
                affiliates = affiliates.select_for_update()
            for affiliate in affiliates:
                if affiliate.pk not in self.by_pk:
                    self._remember(affiliate)
        for key, values in new.items():
            self.loaded[key] |= values

    def _remember(self, affiliate: Affiliate) -> None:
        if affiliate.pk is not None:
            self.by_pk[affiliate.pk] = affiliate
        if affiliate.user_id:
            self.by_user_id[affiliate.user_id] = affiliate
        if affiliate.email:
            self.by_email[affiliate.email] = affiliate
        self.by_code[affiliate.referral_code] = affiliate

    def _remember_click(self, click: Click) -> None:
        self.clicks_by_id[click.click_id] = click
        for visitor in {click.anonymous_id, click.user_id} - {""}:
            known = self.clicks_by_visitor.setdefault(visitor, [])
            if click not in known:
                known.append(click)

    def forget(self) -> None:
        """Drop everything cached after a direct database change (a removal, an erasure)."""
        self.__init__(source=self.source, new_status=self.new_status, new_offer_id=self.new_offer_id)

    def offer(self, offer_id: int | None) -> Offer | None:
        if offer_id is None:
            return None
        if self._offers is None:
            self._offers = {o.pk: o for o in Offer.objects.all()}
        return self._offers.get(offer_id)

    def _affiliate(self, pk: int | None) -> Affiliate | None:
        if pk is None:
            return None
        if pk not in self.by_pk:
            found = Affiliate.objects.filter(pk=pk).first()
            if found is not None:
                self._remember(found)
        return self.by_pk.get(pk)

    # --- affiliates -----------------------------------------------------------------------------
    def find(self, *, user_id: str = "", email: str = "") -> Affiliate | None:
        """Match on userId, then email."""
        email = email.lower() if email else ""
        self._load(user_ids={user_id} if user_id else set(), emails={email} if email else set())
        if user_id and user_id in self.by_user_id:
            return self.by_user_id[user_id]
        if email and email in self.by_email:
            return self.by_email[email]
        return None

    def by_referral_code(self, code: str) -> Affiliate | None:
        code = code.upper()
        if code not in self.loaded["codes"]:
            self._load(codes={code})
        return self.by_code.get(code)

    def by_coupon(self, coupon: str) -> Affiliate | None:
        coupon = coupon.upper()
        if coupon not in self.loaded["coupons"]:
            self._load(coupons={coupon})
        return self._affiliate(self.coupons.get(coupon))

    def _code(self) -> str:
        code = code_new()
        while code in self.by_code:
            code = code_new()
        return code

    def create(self, *, ts: datetime) -> Affiliate:
        now = clock.now()
        affiliate = Affiliate(
            status=self.new_status,
            offer_id=self.new_offer_id,
            referral_code=self._code(),
            source=self.source,
            status_changed_at=now,
            created_at=now,
            updated_at=now,
        )
        self.new_affiliates.append(affiliate)
        self._remember(affiliate)
        return affiliate

    def _touch(self, affiliate: Affiliate) -> None:
        affiliate.updated_at = clock.now()
        if affiliate.pk is not None:
            self.dirty_affiliates[affiliate.pk] = affiliate

    def set_field(self, affiliate: Affiliate, name: str, value: Any, ts: datetime, warnings: list[str]) -> None:
        """Write one field unless a newer message wrote it already."""
        if not is_newer(affiliate.stamps, name, ts):
            return
        if name == "email":
            email = value.lower()
            other = self.find(email=email)
            if other is not None and other is not affiliate:
                warnings.append(f"traits.email: {email} belongs to another affiliate; not changed")
                return
            if affiliate.email and affiliate.email != email:
                self.by_email.pop(affiliate.email, None)
            self.by_email[email] = affiliate
            value = email
        setattr(affiliate, name, value)
        affiliate.stamps[name] = stamp(ts)
        self._touch(affiliate)

    def assign_user_id(self, affiliate: Affiliate, user_id: str) -> None:
        if not user_id or affiliate.user_id or self.find(user_id=user_id) is not None:
            return
        affiliate.user_id = user_id
        self.by_user_id[user_id] = affiliate
        self._touch(affiliate)

    def link_contact(self, affiliate: Affiliate, contact) -> None:
        """The contact with the affiliate's email or userId (saved by the contacts batch, which
        flushes first)."""
        if contact is None:
            return
        current = Affiliate._meta.get_field("contact").get_cached_value(affiliate, default=None)
        if current is contact or (contact.pk is not None and affiliate.contact_id == contact.pk):
            return
        affiliate.contact = contact
        self._touch(affiliate)

    def set_properties(self, affiliate: Affiliate, properties: dict[str, Any], ts: datetime) -> None:
        """Engage audiences and computed traits, each with the time its value last changed. A
        sync that sends only what changed leaves the others as they are; null removes one."""
        for name, value in properties.items():
            key = f"p:{name}"
            if not is_newer(affiliate.stamps, key, ts):
                continue
            old = affiliate.properties.get(name)
            if value is None:
                affiliate.properties.pop(name, None)
            else:
                affiliate.properties[name] = value
            if old != value:
                affiliate.properties_changed_at[name] = stamp(ts)
            affiliate.stamps[key] = stamp(ts)
            self._touch(affiliate)

    def remove(self, affiliates: Iterable[Affiliate]) -> int:
        """Delete affiliates now (Refersion's delete): their clicks and coupons go with them;
        their conversions stay, for accounting, without them."""
        pks = [a.pk for a in affiliates if a.pk is not None]
        self.flush()
        removed = 0
        if pks:
            removed, _ = Affiliate.objects.filter(pk__in=pks).delete()
        self.forget()
        return removed

    # --- clicks ---------------------------------------------------------------------------------
    def visit(
        self,
        *,
        click_id: str,
        code: str,
        anonymous_id: str,
        user_id: str,
        at: datetime,
        referrer: str = "",
        user_agent: str = "",
    ) -> str | None:
        """A Segment call from the site carried our click id or a referral code: tie the click to
        that visitor. Returns a warning when neither names anything of ours."""
        if not (anonymous_id or user_id):
            return None
        click = self.clicks_by_id.get(click_id) if click_id else None
        if click_id and click is None and click_id not in self.loaded["click_ids"]:
            self._load(click_ids={click_id})
            click = self.clicks_by_id.get(click_id)
        if click is not None:
            changed = False
            if anonymous_id and not click.anonymous_id:
                click.anonymous_id, changed = anonymous_id[:255], True
            if user_id and not click.user_id:
                click.user_id, changed = user_id[:255], True
            if changed:
                click.linked_at = click.linked_at or clock.now()
                self._remember_click(click)
                if click.pk is not None:
                    self.dirty_clicks[click.pk] = click
            return None
        affiliate = self.by_referral_code(code) if code else None
        if affiliate is None:
            return f"referral code {code!r} is not an affiliate's" if code else f"click_id {click_id!r} is unknown"
        if affiliate.status not in EARNING:
            return None
        visitors = {anonymous_id, user_id} - {""}
        for visitor in visitors:
            for known in self.clicks_by_visitor.get(visitor, []):
                if known.affiliate_id == affiliate.pk and abs(at - known.clicked_at) < VISIT_GAP:
                    return None
        click = Click(
            affiliate=affiliate,
            click_id=click_id_new(),
            clicked_at=at,
            source=ClickSource.LANDING,
            referrer=referrer[:2000],
            user_agent=user_agent[:500],
            anonymous_id=anonymous_id[:255],
            user_id=user_id[:255],
            linked_at=clock.now(),
        )
        click.affiliate_id = affiliate.pk
        self.new_clicks.append(click)
        self._remember_click(click)
        return None

    def may_concern(self, *, order_id: str, visitor_ids: Iterable[str], code: str, coupon: str) -> bool:
        """Whether an order can be an affiliate's at all: one of the buyer's ids has a click, or
        its code or coupon is an affiliate's, or its order is a conversion already. Most orders
        are nobody's: they are passed over without reading the rest of the order."""
        if order_id in self.conversions or order_id not in self.loaded["orders"]:
            return True
        if any(visitor in self.clicks_by_visitor for visitor in visitor_ids):
            return True
        if code and (code.upper() not in self.loaded["codes"] or code.upper() in self.by_code):
            return True
        return bool(coupon) and (coupon.upper() not in self.loaded["coupons"] or coupon.upper() in self.coupons)

    def last_click(self, buyer: Buyer, at: datetime) -> Click | None:
        seen: dict[str, Click] = {}
        for visitor in buyer.ids:
            for click in self.clicks_by_visitor.get(visitor, []):
                if click.clicked_at <= at:
                    seen[click.click_id] = click
        if not seen:
            return None
        return max(seen.values(), key=lambda c: (c.clicked_at, c.pk or 0))

    # --- orders ---------------------------------------------------------------------------------
    def order_completed(self, order: Order, *, buyer: Buyer, at: datetime, source_message_id: int | None) -> str | None:
        """Attribute an order to an affiliate and record its conversion. Returns a warning for
        the message (a duplicate order), or None."""
        existing = self.conversions.get(order.order_id)
        if existing is None and order.order_id not in self.loaded["orders"]:
            self._load(orders={order.order_id})
            existing = self.conversions.get(order.order_id)
        if existing is not None:
            if source_message_id is not None and existing.source_message_id == source_message_id:
                return None  # the same message applied again (a retried chunk)
            existing.duplicates += 1
            if existing.pk is not None:
                self.dirty_conversions[existing.pk] = existing
            return (
                f"{Unqualified.DUPLICATE_ORDER}: order_id {order.order_id!r} already has a conversion"
                f"{f' (#{existing.pk})' if existing.pk else ''}; one order never yields two"
            )
        affiliate, click, by, reason = self._attribute(order, buyer, at)
        if affiliate is None:
            return None
        if not reason and self._is_self_referral(affiliate, buyer, order):
            reason = Unqualified.SELF_REFERRAL
        offer = self.offer(affiliate.offer_id)
        if offer is not None:
            commission, lines = commission_for(
                commission_type=offer.commission_type,
                value=offer.commission_value,
                sku_rates=offer.sku_rates,
                order=order,
            )
        else:
            commission, lines = (
                Decimal(0),
                commission_for(commission_type="flat_order", value=Decimal(0), sku_rates={}, order=order)[1],
            )
        conversion = new_conversion(
            order_id=order.order_id,
            amount=order.amount,
            currency=order.currency,
            commission=Decimal(0) if reason else commission,
            status=ConversionStatus.UNQUALIFIED if reason else ConversionStatus.PENDING,
            reason=reason or ("" if offer is not None else "the affiliate has no offer: no commission"),
            attributed_by=by,
            lines=lines,
            buyer_user_id=buyer.user_id[:255],
            buyer_anonymous_id=buyer.anonymous_id[:255],
            buyer_email=(buyer.email or order.email)[:320],
            source=self.source,
            source_message_id=source_message_id,
            order_at=at,
            created_at=clock.now(),
        )
        # Ids where the rows exist, objects where they are new in this chunk: flush() takes
        # their ids once they are saved.
        for name, related in (
            ("affiliate", affiliate),
            ("offer", offer),
            ("click", click),
            ("buyer_contact", buyer.contact),
        ):
            if related is not None:
                if related.pk is not None:
                    setattr(conversion, f"{name}_id", related.pk)
                else:
                    setattr(conversion, name, related)
        self.new_conversions.append(conversion)
        self.conversions[order.order_id] = conversion
        return None

    def _attribute(self, order: Order, buyer: Buyer, at: datetime):
        """(affiliate, click, attributed_by, unqualified reason) or (None, …) for no affiliate."""
        click = self.last_click(buyer, at)
        clicked = self._affiliate(click.affiliate_id) if click is not None else None
        if clicked is not None and clicked.status in EARNING:
            offer = self.offer(clicked.offer_id)
            days = offer.cookie_days if offer is not None else DEFAULT_COOKIE_DAYS
            if at - click.clicked_at <= timedelta(days=days):
                return clicked, click, AttributedBy.CLICK, ""
        if order.referral_code:
            affiliate = self.by_referral_code(order.referral_code)
            if affiliate is not None and affiliate.status in EARNING:
                return affiliate, None, AttributedBy.CODE, ""
        if order.coupon:
            affiliate = self.by_coupon(order.coupon)
            if affiliate is not None and affiliate.status in EARNING:
                return affiliate, None, AttributedBy.COUPON, ""
        if clicked is not None and clicked.status in EARNING:
            return clicked, click, AttributedBy.CLICK, Unqualified.OUTSIDE_WINDOW
        return None, None, "", ""

    @staticmethod
    def _is_self_referral(affiliate: Affiliate, buyer: Buyer, order: Order) -> bool:
        emails = {e for e in (buyer.email, order.email) if e}
        if buyer.contact is not None and getattr(buyer.contact, "email", None):
            emails.add(buyer.contact.email)
        if affiliate.email and affiliate.email in emails:
            return True
        if affiliate.user_id and affiliate.user_id in {buyer.user_id, getattr(buyer.contact, "user_id", None)}:
            return True
        contact_pk = getattr(buyer.contact, "pk", None)
        return contact_pk is not None and affiliate.contact_id == contact_pk

    def order_refunded(
        self, order_id: str, lines: list[Line], *, at: datetime, source_message_id: int | None
    ) -> str | None:
        """Reverse a conversion, whole or for the refunded products. Returns a warning or None."""
        conversion = self.conversions.get(order_id)
        if conversion is None and order_id not in self.loaded["orders"]:
            self._load(orders={order_id})
            conversion = self.conversions.get(order_id)
        if conversion is None:
            return None  # not an affiliate's order
        if source_message_id is not None and any(r.get("message") == source_message_id for r in conversion.refunds):
            return None  # the same refund applied again (a retried chunk)
        earning = conversion.status in (ConversionStatus.PENDING, ConversionStatus.APPROVED)
        warnings = []
        if not lines:
            taken, refunded = conversion.commission, conversion.amount - conversion.refunded_amount
            for line in conversion.lines:
                line["refunded"] = line["quantity"]
            whole = True
        else:
            taken, refunded = Decimal(0), Decimal(0)
            for line in lines:
                stored = next(
                    (s for s in conversion.lines if s["sku"] == line.sku and s["refunded"] < s["quantity"]), None
                )
                if stored is None:
                    warnings.append(f"product {line.sku!r} is not in order {order_id!r}, or was refunded already")
                    continue
                quantity = min(line.quantity, stored["quantity"] - stored["refunded"])
                stored["refunded"] += quantity
                taken += Decimal(stored["per_item"]) * quantity
                refunded += (line.price if line.price else Decimal(stored["price"])) * quantity
            whole = all(s["refunded"] >= s["quantity"] for s in conversion.lines)
            if whole:
                taken = conversion.commission
        taken = min(cents(taken), conversion.commission) if earning else Decimal(0)
        refunded = min(refunded, conversion.amount - conversion.refunded_amount)
        conversion.refunded_amount += refunded
        conversion.refunds = [
            *conversion.refunds,
            {
                "at": stamp(at),
                "message": source_message_id,
                "amount": str(refunded),
                "commission": str(taken),
                "products": [{"sku": line.sku, "quantity": line.quantity} for line in lines],
            },
        ]
        if earning:
            conversion.commission -= taken
            conversion.reversed_commission += taken
            if whole:
                conversion.status = ConversionStatus.REVERSED
                conversion.reason = "order refunded"
                conversion.reversed_at = at
        if conversion.pk is not None:
            self.dirty_conversions[conversion.pk] = conversion
        return "; ".join(warnings) or None

    # --- writing --------------------------------------------------------------------------------
    @transaction.atomic
    def flush(self) -> None:
        if self.new_affiliates:
            for affiliate in self.new_affiliates:
                _link(affiliate, "contact")
            bulk_insert(Affiliate, self.new_affiliates)
            for affiliate in self.new_affiliates:
                self.by_pk[affiliate.pk] = affiliate
        if self.dirty_affiliates:
            rows = [self.dirty_affiliates[pk] for pk in sorted(self.dirty_affiliates)]
            for affiliate in rows:
                _link(affiliate, "contact")
            bulk_update(Affiliate, rows, AFFILIATE_FIELDS)
        if self.new_clicks:
            for click in self.new_clicks:
                _link(click, "affiliate")
            bulk_insert(Click, self.new_clicks)
        if self.dirty_clicks:
            bulk_update(Click, list(self.dirty_clicks.values()), CLICK_FIELDS)
        if self.new_conversions:
            for conversion in self.new_conversions:
                for name in ("affiliate", "click", "buyer_contact"):
                    _link(conversion, name)
            bulk_insert(Conversion, self.new_conversions)
        if self.dirty_conversions:
            rows = [self.dirty_conversions[pk] for pk in sorted(self.dirty_conversions)]
            bulk_update(Conversion, rows, CONVERSION_FIELDS)
        self._reset_pending()
