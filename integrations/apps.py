from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate, post_save


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        # Import every kind module so the registry is complete before models use it.
        from integrations import kinds  # noqa: F401
        from integrations.keys import api_key_cache_clear
        from integrations.models import ApiKey, Integration
        from integrations.schedules import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self)
        # Keys remembered by this process must not outlive a change to who may send.
        for model in (Integration, ApiKey):
            post_save.connect(api_key_cache_clear, sender=model, dispatch_uid=f"key-cache-save-{model.__name__}")
            post_delete.connect(api_key_cache_clear, sender=model, dispatch_uid=f"key-cache-delete-{model.__name__}")
