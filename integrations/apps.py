from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate, post_save


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        from common.workqueue import register_runner

        # Import every kind module so the registry is complete before models use it.
        from integrations import erasure, kinds  # noqa: F401 - kinds register, erasure listens
        from integrations.keys import api_key_cache_clear
        from integrations.models import ApiKey, Integration
        from integrations.schedules import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self)
        # The outbound Segment source: its work type, its receivers, and the capture endpoint's CORS.
        from integrations.outbound.setup import ready as outbound_ready

        outbound_ready()
        # The inbox drain is one kind of due work: process_due and common.tasks.run_due run it too.
        register_runner("inbox", drain_due, label="inbox")
        # Keys remembered by this process must not outlive a change to who may send.
        for model in (Integration, ApiKey):
            post_save.connect(api_key_cache_clear, sender=model, dispatch_uid=f"key-cache-save-{model.__name__}")
            post_delete.connect(api_key_cache_clear, sender=model, dispatch_uid=f"key-cache-delete-{model.__name__}")


def drain_due(*, max_seconds: float) -> dict[str, int]:
    """The inbox drain for run_due: drain for at most `max_seconds`, and say what it did."""
    from integrations.drain import drain_inbox

    result = drain_inbox(max_seconds=max_seconds)
    return {
        "processed": result.processed,
        "skipped": result.skipped,
        "waiting": result.waiting,
        "failed": result.failed,
    }
