# Admin classes live in each feature's package; importing them here registers them.
from campaigns.email import admin as email_admin  # noqa: F401
from campaigns.loops import admin as loops_admin  # noqa: F401
from campaigns.notifications import admin as notifications_admin  # noqa: F401
from campaigns.surveys import admin as surveys_admin  # noqa: F401
from campaigns.webhooks import admin as webhooks_admin  # noqa: F401
