from django.apps import AppConfig


class EngineOnlyConfig(AppConfig):
    """For the email engine's end-to-end test: the cluster runs the engine alone, without the
    due-time checks loops and surveys register (their own end-to-end tests cover those)."""

    name = "tests.campaigns.engine_only"
    label = "email_engine_only"

    def ready(self) -> None:
        from campaigns.email import rules

        rules._checks.clear()
