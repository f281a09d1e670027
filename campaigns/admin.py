# Admin classes live in each feature's package; importing them here registers them.
from campaigns.email import admin as email_admin  # noqa: F401
from campaigns.loops import admin as loops_admin  # noqa: F401
