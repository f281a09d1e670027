from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations.retention import PRUNED_STATUSES, inbox_prune


class Command(BaseCommand):
    help = (
        "Delete inbox rows that are settled (" + ", ".join(PRUNED_STATUSES) + ") and refused requests, "
        "received more than --days days ago (default INBOX_RETENTION_DAYS). Failed and pending rows "
        "are kept. Ends with the counts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None, help="Keep this many days (default: the setting).")

    def handle(self, *args, days, **options):
        days = settings.INBOX_RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError("--days must be at least 1 (INBOX_RETENTION_DAYS=0 keeps everything)")
        bar = None
        if self.stdout.isatty():
            from tqdm import tqdm

            bar = tqdm(unit=" rows", desc="pruning", file=self.stderr)
        result = inbox_prune(days=days, progress=bar.update if bar is not None else None)
        if bar is not None:
            bar.close()
        self.stdout.write(
            f"deleted {result.inbox} inbox rows and {result.rejected} refused requests older than {days} days"
        )
