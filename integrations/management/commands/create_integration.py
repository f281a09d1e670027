import json

from django.core.management.base import BaseCommand, CommandError

from integrations.kinds.base import KINDS
from integrations.services import integration_create


class Command(BaseCommand):
    help = (
        "Create an integration and print it as one JSON object. Inbound kinds get a new API key, "
        "shown only here. Settings: --set key=value (daily_cap, shared_secret, and the kind's own)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--kind", required=True, choices=sorted(KINDS))
        parser.add_argument("--name", required=True)
        # dest must not be "settings": that is Django's own --settings (the settings module).
        # Sharing it made every run fail: None without --set, and with --set Django tried to
        # use the list as DJANGO_SETTINGS_MODULE.
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="set_values")

    def handle(self, *args, kind, name, set_values, **options):
        values = {}
        for item in set_values or []:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise CommandError(f"--set takes key=value, not {item!r}")
            values[key.strip()] = value
        try:
            integration, api_key = integration_create(kind=kind, name=name, settings=values)
        except ValueError as error:
            raise CommandError(str(error)) from None
        out = {"id": integration.pk, "kind": integration.kind, "name": integration.name, "api_key": api_key}
        if integration.settings.get("site_key"):
            out["site_key"] = integration.settings["site_key"]  # the capture script's public key
        self.stdout.write(json.dumps(out))
