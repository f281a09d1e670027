from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        from campaigns.email.setup import ready as email_ready
        from campaigns.loops.setup import ready as loops_ready
        from campaigns.surveys.setup import ready as surveys_ready

        email_ready()
        loops_ready()
        surveys_ready()
