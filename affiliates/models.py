"""Affiliates (Refersion's side): offers, affiliates, their referral codes and coupons, clicks on
their links, and conversions (orders attributed to them) with their commission.

- An Offer says what an affiliate earns (a percent of the order, a flat amount per order or
  per item, optional per-SKU rates), how long a click counts (the cookie window) and where the
  referral link lands; optionally it approves conversions by itself after N days.
- An Affiliate has a status (pending, active, denied, disabled), an offer, a unique referral
  code (its link is SITE_URL/r/CODE), Engage properties with the time each changed, and the
  contact with the same email or userId.
- A Click is one visit through a referral link; the drain later links it to the visitor's
  anonymousId or userId, so their orders find it.
- A Conversion is one order (one per order_id, ever) attributed to an affiliate, by the buyer's
  last click within the window, else a referral code or a coupon. Its amount and currency are
  kept as the order gave them.
"""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from common import clock
from common.fields import JSONField

MONEY = {"max_digits": 18, "decimal_places": 4}


class CommissionType(models.TextChoices):
    PERCENT = "percent", "percent of the order"
    FLAT_ORDER = "flat_order", "flat amount per order"
    FLAT_ITEM = "flat_item", "flat amount per item"


class Offer(models.Model):
    name = models.CharField(max_length=200, unique=True)
    commission_type = models.CharField(max_length=12, choices=CommissionType.choices, default=CommissionType.PERCENT)
    commission_value = models.DecimalField(
        **MONEY,
        default=0,
        validators=[MinValueValidator(0)],
        help_text="The percent (10 = 10%), or the flat amount per order or per item, in the order's currency.",
    )
    sku_rates = JSONField(
        default=dict,
        blank=True,
        help_text='Per-SKU rates that replace the offer\'s own for those products: {"SKU-1": 15}. A percent '
        "of the line for percent offers, an amount per item otherwise.",
    )
    cookie_days = models.PositiveIntegerField(default=30, help_text="How many days a click counts for an order.")
    landing_url = models.URLField(
        max_length=2000,
        blank=True,
        help_text="Where the referral link lands; ?ref=CODE&click_id=… is added.",
    )
    auto_approve_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Approve pending conversions of active affiliates this many days after they were recorded "
        "(refunds reverse them either way). Empty: staff approve them.",
    )
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AffiliateStatus(models.TextChoices):
    PENDING = "pending", "pending"
    ACTIVE = "active", "active"
    DENIED = "denied", "denied"
    DISABLED = "disabled", "disabled"


# Affiliates whose links and codes still earn: a pending affiliate's conversions wait for them.
EARNING = (AffiliateStatus.PENDING, AffiliateStatus.ACTIVE)


class Affiliate(models.Model):
    user_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    # Stored lowercased: matched case-insensitively, like contacts.
    email = models.CharField(max_length=320, null=True, blank=True, unique=True)
    name = models.CharField(max_length=400, blank=True, help_text="The name as sent, when a single name was sent.")
    first_name = models.CharField(max_length=200, blank=True)
    last_name = models.CharField(max_length=200, blank=True)
    address = JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=AffiliateStatus.choices, default=AffiliateStatus.PENDING)
    offer = models.ForeignKey(Offer, null=True, blank=True, on_delete=models.PROTECT, related_name="affiliates")
    referral_code = models.CharField(max_length=32, unique=True)
    properties = JSONField(default=dict, blank=True, help_text="Engage audiences and computed traits.")
    properties_changed_at = JSONField(
        default=dict, blank=True, help_text="When each property last changed value (the message's timestamp)."
    )
    # When each field or property was last written, by message timestamp, so an older identify
    # never overwrites a newer value (same rule and format as contacts.stamps).
    stamps = JSONField(default=dict, blank=True)
    contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="affiliates"
    )
    source = models.CharField(max_length=200, blank=True, help_text="The integration or staff member that added it.")
    status_changed_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True, help_text="Personal data erased (GDPR).")
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="affiliate_created"),
            models.Index(fields=["status", "-created_at"], name="affiliate_status"),
            models.Index(fields=["offer", "status"], name="affiliate_offer_status"),
            models.Index(fields=["last_name", "first_name"], name="affiliate_name"),
            models.Index(fields=["first_name"], name="affiliate_first_name"),
        ]

    def __str__(self) -> str:
        return self.email or self.user_id or self.referral_code or f"affiliate {self.pk}"

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or self.name

    @property
    def referral_link(self) -> str:
        from affiliates.codes import referral_link

        return referral_link(self.referral_code)


class Coupon(models.Model):
    """A coupon code tied to an affiliate: an order that uses it is theirs when no click is."""

    affiliate = models.ForeignKey(Affiliate, on_delete=models.CASCADE, related_name="coupons")
    # Stored uppercased: orders match it whatever the case the shop sends.
    code = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(default=clock.now)

    def __str__(self) -> str:
        return self.code

    def save(self, *args, **kwargs) -> None:
        self.code = self.code.strip().upper()
        super().save(*args, **kwargs)


class ClickSource(models.TextChoices):
    LINK = "link", "referral link"
    LANDING = "landing", "?ref= on the site"


class Click(models.Model):
    # click_affiliate_time leads with the affiliate and serves the foreign key.
    affiliate = models.ForeignKey(Affiliate, on_delete=models.CASCADE, related_name="clicks", db_index=False)
    click_id = models.CharField(max_length=32, unique=True)
    clicked_at = models.DateTimeField(default=clock.now)
    source = models.CharField(max_length=8, choices=ClickSource.choices, default=ClickSource.LINK)
    referrer = models.CharField(max_length=2000, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    # Who the click turned out to be: set by the drain from the site's later Segment calls.
    anonymous_id = models.CharField(max_length=255, blank=True)
    user_id = models.CharField(max_length=255, blank=True)
    linked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["affiliate", "-clicked_at"], name="click_affiliate_time"),
            models.Index(fields=["-clicked_at"], name="click_time"),
            # Whole (not partial) indexes: a chunk looks up hundreds of visitors at once, more than
            # PostgreSQL checks against a partial index's condition, and would scan the table.
            models.Index(fields=["anonymous_id"], name="click_anonymous_id"),
            models.Index(fields=["user_id"], name="click_user_id"),
        ]

    def __str__(self) -> str:
        return self.click_id


class ConversionStatus(models.TextChoices):
    PENDING = "pending", "pending"
    APPROVED = "approved", "approved"
    DENIED = "denied", "denied"
    UNQUALIFIED = "unqualified", "unqualified"
    REVERSED = "reversed", "reversed"


class Unqualified:
    """The reasons a conversion earns nothing."""

    OUTSIDE_WINDOW = "outside the window"
    SELF_REFERRAL = "self-referral"
    DUPLICATE_ORDER = "duplicate order"


class AttributedBy(models.TextChoices):
    CLICK = "click", "last click"
    CODE = "code", "referral code"
    COUPON = "coupon", "coupon"


class Conversion(models.Model):
    # Null once the affiliate is removed (a Refersion delete): the amounts stay for accounting.
    affiliate = models.ForeignKey(
        Affiliate, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversions", db_index=False
    )
    # Indexed by conversion_offer_due and conversion_click (only the rows that have one): every
    # index is paid for by each order the drain records.
    offer = models.ForeignKey(
        Offer, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversions", db_index=False
    )
    click = models.ForeignKey(
        Click, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversions", db_index=False
    )
    # One order never yields two conversions.
    order_id = models.CharField(max_length=255, unique=True)
    amount = models.DecimalField(**MONEY, default=0)
    currency = models.CharField(max_length=16, blank=True, help_text="As the order gave it.")
    commission = models.DecimalField(**MONEY, default=0, help_text="What the affiliate earns now (after refunds).")
    reversed_commission = models.DecimalField(**MONEY, default=0, help_text="Taken back by refunds.")
    refunded_amount = models.DecimalField(**MONEY, default=0)
    status = models.CharField(max_length=12, choices=ConversionStatus.choices, default=ConversionStatus.PENDING)
    reason = models.CharField(max_length=300, blank=True)
    attributed_by = models.CharField(max_length=8, choices=AttributedBy.choices, blank=True)
    # The order's products with each line's commission and refunded quantity.
    lines = JSONField(default=list, blank=True)
    refunds = JSONField(default=list, blank=True, help_text="Each refund applied: when, what, how much.")
    duplicates = models.PositiveIntegerField(default=0, help_text="Later Order Completed calls for the same order.")
    # The buyer, for attribution checks (self-referral) and referral quality; erased with them.
    buyer_user_id = models.CharField(max_length=255, blank=True)
    buyer_anonymous_id = models.CharField(max_length=255, blank=True)
    buyer_email = models.CharField(max_length=320, blank=True)
    buyer_contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="affiliate_orders"
    )
    source = models.CharField(max_length=200, blank=True)
    # The message that recorded it (an inbox row id): a re-applied message is not a duplicate.
    source_message_id = models.BigIntegerField(null=True, blank=True)
    order_at = models.DateTimeField(help_text="When the order was placed (the event's timestamp).")
    created_at = models.DateTimeField(default=clock.now)
    approved_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=100, blank=True)
    reversed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["affiliate", "-created_at"], name="conversion_affiliate"),
            models.Index(fields=["status", "-created_at"], name="conversion_status"),
            models.Index(fields=["-created_at", "-id"], name="conversion_created"),
            models.Index(fields=["offer", "status", "created_at"], name="conversion_offer_due"),
            models.Index(fields=["approved_at"], condition=Q(approved_at__isnull=False), name="conversion_approved_at"),
            models.Index(fields=["click"], condition=Q(click__isnull=False), name="conversion_click"),
            # An erasure finds the buyer's orders by contact, userId or email (the anonymousId is
            # cleared with them, not searched: every order has the buyer's contact).
            models.Index(fields=["buyer_user_id"], condition=~Q(buyer_user_id=""), name="conversion_buyer_user"),
            models.Index(fields=["buyer_email"], condition=~Q(buyer_email=""), name="conversion_buyer_email"),
        ]

    def __str__(self) -> str:
        return f"order {self.order_id}"
