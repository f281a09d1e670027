import signal
import sys

from django.core.management.base import BaseCommand, CommandError

from integrations.outbound.collector import Collector


class Command(BaseCommand):
    help = (
        "Run a Segment-compatible collector (POST /v1/batch and the single calls) for local work and "
        "tests, and print each message it receives. It checks the write key, gzip, Segment's size "
        "limits and the payload's shape. --fail-rate F answers that share of calls 500 or 429 "
        "(with Retry-After); --status always answers 500, 429 or 400; --delay waits before answering. "
        "GET /__collector/received returns what it recorded; POST /__collector/mode changes its "
        'behaviour ({"mode": "500"|"429"|"400"|"slow"|"ok", "fail_rate": F, "delay": S}).'
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--fail-rate", type=float, default=0.0, dest="fail_rate")
        parser.add_argument("--status", choices=["500", "429", "400"], default=None)
        parser.add_argument("--delay", type=float, default=0.0, help="Seconds to wait before each answer.")
        parser.add_argument("--retry-after", type=float, default=1.0, dest="retry_after")
        parser.add_argument(
            "--write-key", action="append", default=[], dest="write_keys", help="Accept only these keys (repeat)."
        )
        parser.add_argument("--seed", type=int, default=None, help="Seed the random failures, for repeatable runs.")
        parser.add_argument("--quiet", action="store_true", help="Do not print each message.")

    def handle(self, *args, port, host, fail_rate, status, delay, retry_after, write_keys, seed, quiet, **options):
        if not 0 <= fail_rate <= 1:
            raise CommandError("--fail-rate must be between 0 and 1")
        if delay < 0 or retry_after < 0:
            raise CommandError("--delay and --retry-after must not be negative")

        def echo(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        try:
            collector = Collector(
                host=host,
                port=port,
                write_keys=set(write_keys) or None,
                fail_rate=fail_rate,
                retry_after=retry_after,
                delay=delay,
                seed=seed,
                echo=None if quiet else echo,
            )
        except OSError as error:
            raise CommandError(f"cannot listen on {host}:{port}: {error}") from None
        if status:
            collector.set(mode=status)
        self.stdout.write(f"Segment collector on {collector.url} (POST /v1/batch); Ctrl-C stops it.")
        self.stdout.flush()
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            collector.serve_forever()
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            collector.server.server_close()
            self.stdout.write(f"received {len(collector.messages)} messages in {len(collector.requests)} requests")
