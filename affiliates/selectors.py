"""Reads about affiliates for the admin, the API and exports: commission totals, weekly figures,
payouts per affiliate and month, and the quality of the customers an affiliate referred.

Money is summed per currency, never across currencies: orders keep the currency they came in.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMonth, TruncWeek

from affiliates.models import Affiliate, Click, Conversion, ConversionStatus
from contacts.models import Contact

# Conversions that are a referral the affiliate brought (refunded ones included): the base of
# the refund rate and of the customers counted for NPS.
REFERRED = (ConversionStatus.PENDING, ConversionStatus.APPROVED, ConversionStatus.REVERSED, ConversionStatus.DENIED)
NPS_PROPERTY = "nps_score"


def money_string(value) -> str:
    """A decimal with two places, or more only when it has them: '20.00', '12.3456'."""
    value = Decimal(value or 0)
    cents = value.quantize(Decimal("0.01"))
    return str(cents if value == cents else value.normalize())


def money_text(by_currency: dict[str, Decimal]) -> str:
    """'12.50 EUR + 3.00 USD', or '0' when empty."""
    parts = [
        f"{amount.quantize(Decimal('0.01')):,} {currency or '(no currency)'}"
        for currency, amount in sorted(by_currency.items())
        if amount
    ]
    return " + ".join(parts) or "0"


def commission_totals(affiliate_ids) -> dict[int, dict[str, dict[str, Decimal]]]:
    """{affiliate: {"pending": {currency: sum}, "approved": {…}}}: one GROUP BY for a page."""
    totals: dict[int, dict[str, dict[str, Decimal]]] = defaultdict(lambda: {"pending": {}, "approved": {}})
    ids = list(affiliate_ids)
    if not ids:
        return {}
    rows = (
        Conversion.objects.filter(
            affiliate_id__in=ids, status__in=(ConversionStatus.PENDING, ConversionStatus.APPROVED)
        )
        .values("affiliate_id", "status", "currency")
        .annotate(total=Sum("commission"))
        .order_by()
    )
    for row in rows:
        totals[row["affiliate_id"]][row["status"]][row["currency"]] = row["total"] or Decimal(0)
    return dict(totals)


# --- weekly figures ---------------------------------------------------------------------------------------
@dataclass
class Weekly:
    weeks: list[date]
    clicks: list[int]
    conversions: list[int]
    commission: dict[str, list[float]]  # currency → per week


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekly(*, now: datetime, weeks: int = 12, affiliate: Affiliate | None = None) -> Weekly:
    """Clicks, conversions (not unqualified) and their commission per ISO week (Monday, UTC),
    for the last `weeks` weeks: one GROUP BY for clicks and one for conversions."""
    first = _monday(now.date()) - timedelta(weeks=weeks - 1)
    start = datetime.combine(first, datetime.min.time(), tzinfo=now.tzinfo)
    clicks = Click.objects.filter(clicked_at__gte=start)
    conversions = Conversion.objects.filter(created_at__gte=start).exclude(status=ConversionStatus.UNQUALIFIED)
    if affiliate is not None:
        clicks = clicks.filter(affiliate=affiliate)
        conversions = conversions.filter(affiliate=affiliate)
    days = [first + timedelta(weeks=n) for n in range(weeks)]
    click_counts = {
        _day(row["week"]): row["n"]
        for row in clicks.annotate(week=TruncWeek("clicked_at")).values("week").annotate(n=Count("id")).order_by()
    }
    conversion_counts: dict[date, int] = defaultdict(int)
    commission: dict[str, dict[date, Decimal]] = defaultdict(dict)
    for row in (
        conversions.annotate(week=TruncWeek("created_at"))
        .values("week", "currency")
        .annotate(n=Count("id"), total=Sum("commission"))
        .order_by()
    ):
        week = _day(row["week"])
        conversion_counts[week] += row["n"]
        commission[row["currency"]][week] = row["total"] or Decimal(0)
    return Weekly(
        weeks=days,
        clicks=[click_counts.get(d, 0) for d in days],
        conversions=[conversion_counts.get(d, 0) for d in days],
        commission={cur: [float(per.get(d, 0)) for d in days] for cur, per in sorted(commission.items())},
    )


def _day(value) -> date:
    return value.date() if isinstance(value, datetime) else value


# --- payouts ------------------------------------------------------------------------------------------------
@dataclass
class PayoutRow:
    month: date
    affiliate_id: int | None
    affiliate: str
    referral_code: str
    currency: str
    approved: Decimal = Decimal(0)
    approved_count: int = 0
    pending: Decimal = Decimal(0)
    pending_count: int = 0
    reversed: Decimal = Decimal(0)


def payouts(*, since: date, until: date, affiliate_id: int | None = None) -> list[PayoutRow]:
    """Per affiliate, month and currency: commission approved that month (what to pay), still
    pending from orders recorded that month, and taken back by refunds. Months run by UTC."""
    start = datetime.combine(since, time.min, tzinfo=UTC)
    end = datetime.combine(until, time.min, tzinfo=UTC)
    base = Conversion.objects.all()
    if affiliate_id is not None:
        base = base.filter(affiliate_id=affiliate_id)
    rows: dict[tuple, PayoutRow] = {}

    def row(month, pk, currency) -> PayoutRow:
        key = (_day(month).replace(day=1), pk, currency)
        if key not in rows:
            rows[key] = PayoutRow(month=key[0], affiliate_id=pk, affiliate="", referral_code="", currency=currency)
        return rows[key]

    approved = (
        base.filter(approved_at__gte=start, approved_at__lt=end)
        .exclude(status=ConversionStatus.UNQUALIFIED)
        .annotate(month=TruncMonth("approved_at"))
        .values("month", "affiliate_id", "currency")
        .annotate(total=Sum("commission"), n=Count("id"), back=Sum("reversed_commission"))
        .order_by()
    )
    for found in approved:
        payout = row(found["month"], found["affiliate_id"], found["currency"])
        payout.approved += found["total"] or 0
        payout.approved_count += found["n"]
        payout.reversed += found["back"] or 0
    pending = (
        base.filter(status=ConversionStatus.PENDING, created_at__gte=start, created_at__lt=end)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "affiliate_id", "currency")
        .annotate(total=Sum("commission"), n=Count("id"))
        .order_by()
    )
    for found in pending:
        payout = row(found["month"], found["affiliate_id"], found["currency"])
        payout.pending += found["total"] or 0
        payout.pending_count += found["n"]
    names = {
        a.pk: a
        for a in Affiliate.objects.filter(pk__in={k[1] for k in rows if k[1]}).only(
            "pk", "email", "first_name", "last_name", "name", "referral_code", "user_id"
        )
    }
    for payout in rows.values():
        affiliate = names.get(payout.affiliate_id)
        payout.affiliate = str(affiliate.full_name or affiliate) if affiliate else "(removed affiliate)"
        payout.referral_code = affiliate.referral_code if affiliate else ""
    return sorted(rows.values(), key=lambda r: (r.month, r.affiliate.lower(), r.currency), reverse=False)


# --- referral quality ------------------------------------------------------------------------------------------
@dataclass
class Quality:
    customers: int = 0
    responses: int = 0
    nps: int | None = None
    orders: int = 0
    refunded: int = 0
    detail: list[str] = field(default_factory=list)

    @property
    def refund_rate(self) -> float | None:
        return round(100 * self.refunded / self.orders, 1) if self.orders else None


def referral_quality(affiliate: Affiliate) -> Quality:
    """The customers an affiliate referred: their NPS (from the contacts' `nps_score`, which
    surveys keep up to date) and how many of the orders were refunded."""
    conversions = Conversion.objects.filter(affiliate=affiliate, status__in=REFERRED)
    figures = conversions.aggregate(orders=Count("id"), refunded=Count("id", filter=Q(refunded_amount__gt=0)))
    quality = Quality(orders=figures["orders"], refunded=figures["refunded"])
    buyers = conversions.exclude(buyer_contact=None).values("buyer_contact_id")
    scores = []
    for properties in Contact.objects.filter(pk__in=buyers).values_list("properties", flat=True):
        quality.customers += 1
        score = (properties or {}).get(NPS_PROPERTY)
        if isinstance(score, int | float) and not isinstance(score, bool) and 0 <= score <= 10:
            scores.append(score)
    quality.responses = len(scores)
    if scores:
        promoters = sum(1 for s in scores if s >= 9)
        detractors = sum(1 for s in scores if s <= 6)
        quality.nps = round(100 * (promoters - detractors) / len(scores))
    return quality
