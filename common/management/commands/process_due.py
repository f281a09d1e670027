from django.core.management.base import BaseCommand, CommandError

from common.workqueue import registry
from common.workqueue.run import run_due


class Command(BaseCommand):
    help = (
        "Run, once and in the foreground, all work that is due now: the inbox drain, then every "
        "queue (email sends, survey dispatches and reminders, webhook and notification deliveries, "
        "outbound syncs). A queue item is due when its next attempt time has come by the start of "
        "the run: new, past its retry backoff, or held by a worker that stopped (its lease ran out). "
        "Items other workers hold are passed over, so this runs safely beside the django-q2 cluster "
        "and never does one item twice. Kinds take turns, a batch each, until nothing is due or "
        "--max-seconds is spent. Ends with a count per kind of work."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--type",
            action="append",
            dest="types",
            metavar="KIND",
            help="Run only this kind of work (repeatable). Default: every kind.",
        )
        parser.add_argument("--max-seconds", type=float, default=3600.0, help="Stop starting batches after this long.")

    def handle(self, *args, types, max_seconds, **options):
        known = registry.names()
        unknown = [name for name in types or [] if name not in known]
        if unknown:
            raise CommandError(f"--type: no such kind of work: {', '.join(unknown)} (known: {', '.join(known)})")
        if max_seconds <= 0:
            raise CommandError("--max-seconds must be positive")
        results = run_due(types=types, max_seconds=max_seconds)
        for name, counts in results.items():
            self.stdout.write(f"{registry.label_of(name)}: {format_counts(counts)}")


def format_counts(counts: dict[str, int]) -> str:
    if not counts:
        return "not run (out of time)"
    # In the kind's own order (done, skipped, retrying, failed; the inbox its own); a count of
    # items taken back from stopped workers only when there were some.
    return ", ".join(f"{value} {key}" for key, value in counts.items() if value or key != "recovered")
