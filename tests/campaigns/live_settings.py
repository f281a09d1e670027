"""The production settings, with the email engine alone (no callers' checks): for the cluster
that test_email_live.py starts."""

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.campaigns.engine_only"]  # noqa: F405
