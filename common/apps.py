from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "Work queue"

    def ready(self) -> None:
        from common import lookups  # noqa: F401 - registers field__any
        from common.schedules import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self)
        checks.register(check_work_items, checks.Tags.models)


def check_work_items(app_configs=None, **kwargs) -> list:
    """Every queue table keeps the due index: without it each claim scans the whole table."""
    from django.apps import apps

    from common.workqueue.models import WorkItem

    errors = []
    for model in apps.get_models():
        if not issubclass(model, WorkItem):
            continue
        if not any(index.fields[:1] == ["next_attempt_at"] and index.condition for index in model._meta.indexes):
            errors.append(
                checks.Warning(
                    f"{model._meta.label} has no partial index on next_attempt_at: every claim will scan the table.",
                    hint="Declare its Meta as `class Meta(WorkItem.Meta)`, or add common.workqueue.models.due_index().",
                    obj=model,
                    id="common.W001",
                )
            )
    return errors
