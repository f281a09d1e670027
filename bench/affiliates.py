"""Affiliates benchmark: Order Completed events attributed per second by the drain.

    .venv/bin/python bench/affiliates.py [--orders 10000] [--affiliates 200] [--chunk N]

On PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/switchyard_bench,
created and migrated when missing; its inbox, contacts and affiliates are emptied first).

N orders (default 10,000) from existing buyers through a segment integration: a third come
after a click on an affiliate's link that the buyer's earlier page call tied to them, a third
carry a referral code, a third an affiliate's coupon; each has two products and a total, and
one in ten is outside the cookie window or a self-referral. The drain applies them (the
contact's timeline event and the conversion with its commission) and the rate is printed,
beside the same number of tracks with another event name (no affiliates work at all), so the
cost of attribution shows, in time and in this process's CPU (which other work on the machine
moves less). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Report, machine_line, setup_django, truncate  # noqa: E402

TARGET = 3_000  # orders attributed per second
START = datetime(2025, 3, 1, tzinfo=UTC)


def ts(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def program(affiliates: int, buyers: int) -> tuple[list, list]:
    """Offers, affiliates with coupons, and the buyers' contacts; returns (codes, coupons)."""
    from decimal import Decimal

    from affiliates.models import Affiliate, Coupon, Offer
    from bench.contacts import populate_contacts

    offers = [
        Offer.objects.create(
            name="Percent",
            commission_type="percent",
            commission_value=Decimal(10),
            sku_rates={"SKU-7": 25},
            cookie_days=30,
            landing_url="https://shop.example/",
        ),
        Offer.objects.create(
            name="Per item",
            commission_type="flat_item",
            commission_value=Decimal("1.5"),
            cookie_days=14,
            landing_url="https://shop.example/",
        ),
    ]
    rows = [
        Affiliate(
            email=f"aff-{n}@example.com",
            first_name="Aff",
            last_name=str(n),
            referral_code=f"AFF{n:05d}",
            status="active",
            offer=offers[n % 2],
        )
        for n in range(affiliates)
    ]
    Affiliate.objects.bulk_create(rows)
    Coupon.objects.bulk_create([Coupon(affiliate=a, code=f"SAVE{a.referral_code}") for a in rows])
    populate_contacts(buyers)
    return rows


def clicks_for(rows, buyers: int, rng: random.Random) -> dict[int, object]:
    """A click on some affiliate's link for the first third of the buyers (by userId, as the
    drain ties them); returns buyer → the affiliate clicked."""
    from affiliates.models import Click
    from common.bulk import bulk_insert

    clicks = []
    owner = {}
    for n in range(1, buyers // 3 + 1):
        affiliate = rows[rng.randrange(len(rows))]
        # One in ten clicked too long ago: their order is unqualified (outside the window).
        age = timedelta(days=60) if n % 10 == 0 else timedelta(days=rng.randrange(1, 10))
        clicks.append(
            Click(
                affiliate=affiliate,
                click_id=f"c-{n}",
                clicked_at=START - age,
                user_id=f"bench-{n}",
                linked_at=START - age,
            )
        )
        owner[n] = affiliate
    bulk_insert(Click, clicks)
    return owner


def orders(tag: str, count: int, *, buyers: int, rows, owner: dict, event: str, rng: random.Random):
    clicked = buyers // 3
    for n in range(count):
        way = n % 3
        if way == 0:
            buyer = rng.randrange(1, clicked + 1)
            affiliate = owner[buyer]
        else:
            buyer = rng.randrange(clicked + 1, buyers + 1)
            affiliate = rows[rng.randrange(len(rows))]
        properties = {
            "order_id": f"{tag}-{n}",
            "total": round(20 + rng.random() * 300, 2),
            "currency": rng.choice(["USD", "EUR", "GBP"]),
            "products": [
                {"sku": f"SKU-{rng.randrange(1, 10)}", "price": 12.5, "quantity": rng.randrange(1, 4)},
                {"sku": f"SKU-{rng.randrange(1, 10)}", "price": 40, "quantity": 1},
            ],
        }
        if way == 1:
            properties["referral_code"] = affiliate.referral_code
        elif way == 2:
            properties["coupon"] = f"save{affiliate.referral_code}".lower()
        if n % 20 == 7:
            properties["email"] = affiliate.email  # a self-referral
        yield {
            "type": "track",
            "event": event,
            "messageId": f"{tag}-{n}",
            "userId": f"bench-{buyer}",
            "timestamp": ts(START + timedelta(milliseconds=n)),
            "properties": properties,
            "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
        }


def drain(integration, messages) -> tuple[float, float, object]:
    """(seconds, this process's CPU seconds, the drain's result)."""
    from bench._common import drain as run_drain
    from bench.contacts import inbox_fill

    inbox_fill(integration, messages)
    started, cpu = time.perf_counter(), time.process_time()
    result = run_drain(max_seconds=3600)
    return time.perf_counter() - started, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=10_000, help="Order Completed events (default 10000)")
    parser.add_argument("--affiliates", type=int, default=200, help="affiliates in the program (default 200)")
    parser.add_argument("--buyers", type=int, default=20_000, help="existing buyer contacts (default 20000)")
    parser.add_argument("--chunk", type=int, default=None, help="drain chunk size (default: INBOX_DRAIN_CHUNK)")
    args = parser.parse_args()

    setup_django()
    from django.apps import apps
    from django.conf import settings

    from affiliates.models import Conversion
    from integrations.models import DailyUsage, InboxMessage, Integration, RejectedMessage
    from integrations.services import integration_create

    if args.chunk:
        settings.INBOX_DRAIN_CHUNK = args.chunk
    truncate(
        InboxMessage,
        RejectedMessage,
        DailyUsage,
        *apps.get_app_config("affiliates").get_models(),
        *apps.get_app_config("contacts").get_models(),
    )
    Integration.objects.filter(name__startswith="bench affiliates").delete()
    machine = machine_line()
    print(machine, flush=True)
    report = Report("bench/affiliates.py")
    rng = random.Random(7)
    print(f"program: {args.affiliates} affiliates, {args.buyers:,} buyers, a click for each…", flush=True)
    rows = program(args.affiliates, args.buyers)
    owner = clicks_for(rows, args.buyers, rng)
    integration, _ = integration_create(kind="segment", name="bench affiliates")

    tag = f"b{int(time.time())}"
    seconds, cpu, result = drain(
        integration,
        orders(tag + "x", args.orders, buyers=args.buyers, rows=rows, owner=owner, event="Product Reviewed", rng=rng),
    )
    baseline, baseline_cpu = result.total / seconds, cpu / result.total
    report.add(
        "the same tracks, another event name (no affiliates work)",
        f"{baseline:,.0f}/s, {baseline_cpu * 1e6:.0f} µs of this process's CPU each "
        f"({result.processed:,} processed, {result.failed:,} failed; {seconds:.1f} s)",
    )

    seconds, cpu, result = drain(
        integration,
        orders(tag, args.orders, buyers=args.buyers, rows=rows, owner=owner, event="Order Completed", rng=rng),
    )
    rate, order_cpu = result.total / seconds, cpu / result.total
    made = Conversion.objects.filter(order_id__startswith=f"{tag}-")
    by_status = {s: made.filter(status=s).count() for s in ("pending", "unqualified")}
    report.add(
        "Order Completed attributed/s (drain)",
        f"{rate:,.0f}, {order_cpu * 1e6:.0f} µs of this process's CPU each ({result.processed:,} processed, "
        f"{result.failed:,} failed of {args.orders:,}; {made.count():,} conversions: {by_status['pending']:,} "
        f"pending, {by_status['unqualified']:,} unqualified; {seconds:.1f} s)",
        f"≥ {TARGET:,}",
        rate >= TARGET and result.failed == 0,
    )
    report.add(
        "attribution's cost over the same tracks without it",
        f"{max(0.0, baseline / rate - 1) * 100:.0f}% more time, {max(0.0, order_cpu / baseline_cpu - 1) * 100:.0f}% "
        "more CPU in this process (other work on the machine moves the time more than the CPU)",
    )
    report.print(machine)


if __name__ == "__main__":
    main()
