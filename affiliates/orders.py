"""Orders as Segment's e-commerce spec (v2) sends them, and what an offer pays for one.

"Order Completed": `order_id`, `total` (or `revenue`), `currency`, `products[]` with `sku`,
`price` and `quantity`, `coupon`, and optionally the affiliate's `referral_code` (or `ref`).
"Order Refunded": `order_id`, and `products[]` when only some products were refunded.

Commission, from the offer:
- percent: the percent of the order's total (or revenue); a product with a per-SKU rate earns
  that percent of its line (price × quantity) instead, and its line is taken out of the total
  the offer's own percent applies to;
- flat_order: the amount once per order; products with a per-SKU rate earn that amount per item
  on top (an order made only of such products earns only those);
- flat_item: the amount per item (quantity), or the per-SKU rate for those products; an order
  sent without products counts as one item.
Amounts keep the order's currency: nothing is converted. Commission is rounded to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1e13")
MAX_QUANTITY = 1_000_000
HUNDRED = Decimal(100)
ORDER_COMPLETED = "Order Completed"
ORDER_REFUNDED = "Order Refunded"
ORDER_EVENTS = (ORDER_COMPLETED, ORDER_REFUNDED)


class OrderError(ValueError):
    """The order's properties break the spec; the message names the property."""


@dataclass
class Line:
    sku: str
    price: Decimal
    quantity: int

    @property
    def value(self) -> Decimal:
        return self.price * self.quantity


@dataclass
class Order:
    order_id: str
    amount: Decimal
    currency: str = ""
    lines: list[Line] = field(default_factory=list)
    coupon: str = ""
    referral_code: str = ""
    email: str = ""


def money(value: Any, where: str, *, required: bool = False) -> Decimal | None:
    """A non-negative amount from a number or a numeric string, or OrderError naming `where`."""
    if value is None or value == "":
        if required:
            raise OrderError(f"{where} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise OrderError(f"{where} must be a number, not {type(value).__name__}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise OrderError(f"{where} must be a number, not {str(value)[:40]!r}") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise OrderError(f"{where} must be a number from 0 to {MAX_AMOUNT:,.0f}, not {str(value)[:40]!r}")
    return amount


def order_id_of(properties: dict) -> str:
    value = properties.get("order_id", properties.get("orderId"))
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise OrderError("properties.order_id is required (a string or a number)")
    return str(value).strip()[:255]


def lines_of(properties: dict, *, required_price: bool = True) -> list[Line]:
    products = properties.get("products")
    if products is None:
        return []
    if not isinstance(products, list):
        raise OrderError("properties.products must be a list of products")
    lines = []
    for index, product in enumerate(products):
        where = f"properties.products[{index}]"
        if not isinstance(product, dict):
            raise OrderError(f"{where} must be an object")
        sku = product.get("sku", product.get("product_id"))
        if isinstance(sku, bool) or not isinstance(sku, str | int) or not str(sku).strip():
            raise OrderError(f"{where}.sku is required")
        price = money(product.get("price"), f"{where}.price", required=required_price) or Decimal(0)
        quantity = product.get("quantity", 1)
        if quantity is None:
            quantity = 1
        if isinstance(quantity, float) and quantity.is_integer():
            quantity = int(quantity)
        if isinstance(quantity, str) and quantity.strip().isdigit():
            quantity = int(quantity.strip())
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= MAX_QUANTITY:
            raise OrderError(f"{where}.quantity must be a whole number from 1 to {MAX_QUANTITY:,}")
        lines.append(Line(sku=str(sku).strip()[:255], price=price, quantity=quantity))
    return lines


def order_from(properties: dict) -> Order:
    """An Order Completed's properties as an Order, or OrderError naming the property."""
    order_id = order_id_of(properties)
    lines = lines_of(properties)
    amount = money(properties.get("total"), "properties.total")
    if amount is None:
        amount = money(properties.get("revenue"), "properties.revenue")
    if amount is None:
        amount = sum((line.value for line in lines), Decimal(0))
    currency = properties.get("currency")
    currency = currency.strip()[:16] if isinstance(currency, str) else ""
    code = properties.get("referral_code", properties.get("ref"))
    coupon = properties.get("coupon")
    email = properties.get("email")
    return Order(
        order_id=order_id,
        amount=amount,
        currency=currency,
        lines=lines,
        coupon=coupon.strip()[:100] if isinstance(coupon, str) else "",
        referral_code=str(code).strip()[:32] if isinstance(code, str | int) and not isinstance(code, bool) else "",
        email=email.strip().lower()[:320] if isinstance(email, str) else "",
    )


def refund_from(properties: dict) -> tuple[str, list[Line]]:
    """An Order Refunded's order id and refunded products (empty: the whole order)."""
    return order_id_of(properties), lines_of(properties, required_price=False)


# --- commission ----------------------------------------------------------------------------------
def rates_of(sku_rates: Any) -> dict[str, Decimal]:
    rates = {}
    for sku, rate in (sku_rates or {}).items() if isinstance(sku_rates, dict) else ():
        try:
            rates[str(sku)] = Decimal(str(rate))
        except InvalidOperation:
            continue
    return rates


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def commission_for(*, commission_type: str, value: Decimal, sku_rates: Any, order: Order) -> tuple[Decimal, list]:
    """(commission, lines): the lines as stored on the conversion, each with its commission per
    item (what a refund of one item takes back)."""
    rates = rates_of(sku_rates)
    value = Decimal(value)
    stored = []
    total = Decimal(0)
    rated_value = Decimal(0)
    unrated = []
    for line in order.lines:
        rate = rates.get(line.sku)
        if commission_type == "percent":
            per_item = line.price * (rate if rate is not None else value) / HUNDRED
        elif commission_type == "flat_item" or rate is not None:
            per_item = rate if rate is not None else value
        else:
            per_item = Decimal(0)  # flat_order: the order's amount, below
        if rate is not None:
            total += per_item * line.quantity
            rated_value += line.value
        else:
            unrated.append(line)
            if commission_type == "flat_item":
                total += per_item * line.quantity
        stored.append(
            {
                "sku": line.sku,
                "price": str(line.price),
                "quantity": line.quantity,
                "per_item": str(cents(per_item)),
                "rate": str(rate) if rate is not None else None,
                "refunded": 0,
            }
        )
    if commission_type == "percent":
        total += max(order.amount - rated_value, Decimal(0)) * value / HUNDRED
    elif commission_type == "flat_order" and (unrated or not order.lines):
        total += value
    elif commission_type == "flat_item" and not order.lines:
        total += value
    return cents(total), stored
