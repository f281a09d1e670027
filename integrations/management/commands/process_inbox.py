from django.core.management.base import BaseCommand

from integrations.drain import drain_inbox


class Command(BaseCommand):
    help = (
        "Drain pending inbox messages in the foreground: every row that is due (new, or failed "
        "and past its backoff) is applied once. Ends with the processed / skipped / waiting / refused / "
        "failed counts; a row that waited and was applied later in the same run counts once, as applied."
    )

    def add_arguments(self, parser):
        parser.add_argument("--max-seconds", type=float, default=3600.0, help="Stop after this long.")
        parser.add_argument("--chunk", type=int, default=None, help="Rows claimed at a time.")

    def handle(self, *args, max_seconds, chunk, **options):
        result = drain_inbox(max_seconds=max_seconds, chunk=chunk)
        self.stdout.write(
            f"processed {result.processed}, skipped {result.skipped}, waiting {result.waiting}, "
            f"refused {result.refused}, failed {result.failed} ({result.chunks} chunks)"
        )
