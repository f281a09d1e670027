from django.apps import AppConfig


class WorkqueueTestConfig(AppConfig):
    """A concrete queue for the work-queue tests, the benchmark and the worker processes they start."""

    name = "tests.workqueue_app"
    label = "workqueue_app"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tests.workqueue_app.handlers import register_job_type

        register_job_type()
