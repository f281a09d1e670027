"""Test settings: the real settings module, with fast hashing and mail kept in memory."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
# Never a developer's .env: the tests see only what they set themselves.
os.environ["ENV_FILE"] = ""

from config.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ALLOWED_HOSTS = ["*"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Live-server request threads open their own connections; kept open (CONN_MAX_AGE) one of them
# outlived the run and PostgreSQL refused to drop the test database.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
# A concrete queue (Job) for the work-queue tests: common's WorkItem is abstract.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.workqueue_app"]  # noqa: F405
