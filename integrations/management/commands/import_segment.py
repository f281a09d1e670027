import sys

from django.core.management.base import BaseCommand, CommandError

from integrations.drain import drain_inbox
from integrations.replay import BATCH_LINES, ReplayError, integration_for_import, replay_file


class Command(BaseCommand):
    help = (
        "Replay Segment messages from a JSON-lines file (one message a line; '-' for stdin; gzip "
        "accepted) through the inbound pipeline: the same checks, the same inbox, idempotent by "
        "messageId. The django-q2 worker (or process_inbox, or --process) applies them. Ends with "
        "a summary line: accepted, duplicate and rejected counts, with the rejected line numbers."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="A JSON-lines file, optionally gzipped, or '-' for stdin.")
        parser.add_argument(
            "--integration",
            type=int,
            default=None,
            help="The inbound integration to import into. Optional when there is only one.",
        )
        parser.add_argument(
            "--process",
            action="store_true",
            help="Also drain the inbox in the foreground afterwards, instead of leaving it to the worker.",
        )
        parser.add_argument("--batch", type=int, default=BATCH_LINES, help="Lines stored per transaction.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar, even on a terminal.")

    def handle(self, *args, path, integration, process, batch, no_progress, **options):
        if batch < 1:
            raise CommandError("--batch must be at least 1")
        try:
            target = integration_for_import(integration)
        except ReplayError as error:
            raise CommandError(str(error)) from None
        show_progress = not no_progress and sys.stderr.isatty()
        bar = None

        def progress(size):
            nonlocal bar
            from tqdm import tqdm

            if size:
                bar = tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc="import", file=sys.stderr)
            else:
                bar = tqdm(unit=" lines", unit_scale=True, desc="import", file=sys.stderr)

            def tick(position, lines):
                if size:
                    bar.set_postfix_str(f"{lines:,} lines", refresh=False)
                bar.update((position if size else lines) - bar.n)

            return tick

        try:
            result = replay_file(
                path,
                integration=target,
                batch_lines=batch,
                queue_drain=not process,
                progress=progress if show_progress else None,
            )
        except ReplayError as error:
            raise CommandError(str(error)) from None
        finally:
            if bar is not None:
                bar.close()

        for rejection in result.first_rejections:
            self.stderr.write(f"rejected {rejection.code}: {rejection.message}")
        if process:
            counts = {"processed": 0, "skipped": 0, "waiting": 0, "failed": 0}
            while True:
                drained = drain_inbox(max_seconds=3600)
                for name in counts:
                    counts[name] += getattr(drained, name)
                if drained.total == 0:
                    break
            self.stdout.write(", ".join(f"{name} {count}" for name, count in counts.items()))
        self.stdout.write(result.summary())
