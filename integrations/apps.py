from django.apps import AppConfig
from django.db.models.signals import post_migrate


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        # Import every kind module so the registry is complete before models use it.
        from integrations import kinds  # noqa: F401
        from integrations.schedules import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self)
