import time
from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError

from common import clock
from common.workqueue import run_due
from integrations.models import Integration
from integrations.outbound.backfill import backfill_queue
from integrations.outbound.models import OutboxItem, OutboxStatus
from integrations.outbound.sending import WORK_TYPE

# Keep sending while a queued message comes due within this many seconds (retries with backoff);
# a message that waits longer (a long Retry-After, an outage) is left to the workers.
HORIZON_SECONDS = 120


class Command(BaseCommand):
    help = (
        "Queue a segment_source integration's captured contacts (Grow) and their Reclaim events now, "
        "without the delay, then send every due outbound message in the foreground until none is due "
        f"within {HORIZON_SECONDS} s. Selection: contacts this integration captured (a visitor who gave "
        "an email), identified on or after --since when given; the same rules as any send apply "
        "(switches, suppression, filters, identified elsewhere, checkout completed). Idempotent: what "
        "is already queued or sent keeps its row. Ends with the counts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--integration", type=int, required=True)
        parser.add_argument("--since", type=date.fromisoformat, default=None, help="YYYY-MM-DD")
        parser.add_argument("--no-send", action="store_true", help="Only queue; the workers send.")

    def handle(self, *args, integration, since, no_send, **options):
        found = Integration.objects.filter(pk=integration).first()
        if found is None:
            raise CommandError(f"there is no integration {integration}")
        if found.kind != "segment_source":
            raise CommandError(f"integration {integration} is {found.kind}; sync_segment sends segment_source ones")
        if not found.enabled:
            raise CommandError(f"integration {integration} is disabled or removed; enable it first")
        queued = backfill_queue(integration=found, since=since)
        self.stdout.write(
            f"queued {queued.new} new messages ({queued.offered - queued.new} were already queued or sent)"
        )
        totals = {"done": 0, "skipped": 0, "retrying": 0, "failed": 0}
        if not no_send:
            while True:
                counts = run_due(types=[WORK_TYPE], max_seconds=50).get(WORK_TYPE, {})
                for key in totals:
                    totals[key] += counts.get(key, 0)
                pending = OutboxItem.objects.filter(integration=found, status=OutboxStatus.QUEUED)
                soon = pending.filter(next_attempt_at__lte=clock.now() + timedelta(seconds=HORIZON_SECONDS))
                nxt = soon.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
                if nxt is None:
                    break
                time.sleep(min(max((nxt - clock.now()).total_seconds(), 0.05), 5.0))
        statuses = dict.fromkeys(OutboxStatus.values, 0)
        for status in statuses:
            statuses[status] = OutboxItem.objects.filter(integration=found, status=status).count()
        self.stdout.write(
            f"this run: {totals['done']} sent, {totals['skipped']} skipped, {totals['failed']} failed, "
            f"{totals['retrying']} retried"
        )
        self.stdout.write(
            "integration {pk}: {sent} sent, {skipped} skipped, {failed} failed, {queued} queued, {cancelled} cancelled".format(
                pk=found.pk, **statuses
            )
        )
