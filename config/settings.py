"""Switchyard settings, read from the environment (django-environ) and an optional .env file.

Defaults run locally (SQLite under var/, the ORM broker). Production is any run with DEBUG off:
it refuses to start without SECRET_KEY. `make run` writes a local .env (DEBUG on, a generated
SECRET_KEY) on its first run, so manage.py works in a plain shell afterwards.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# The environment wins over the file. ENV_FILE names another file, or none at all when empty
# (the test settings read none, so a developer's .env never changes what the tests check).
ENV_FILE = os.environ.get("ENV_FILE", str(BASE_DIR / ".env"))
if ENV_FILE:
    env.read_env(ENV_FILE, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (production).")
    SECRET_KEY = "insecure-dev-key-only-for-local-debug-runs-0123456789"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[SITE_URL])

INSTALLED_APPS = [
    # The admin's theme (django-unfold): its templates must win over django.contrib.admin's.
    "unfold",
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "anymail",
    "common",
    "integrations",
    "contacts",
    "campaigns",
    "affiliates",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "common.middleware.CollapseInboundSlashesMiddleware",
    "common.middleware.OriginCorsMiddleware",  # django-cors-headers, for requests with an Origin
    "common.middleware.RejectNulQueryMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'switchyard.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the worker writes; the busy timeout makes writers
    # wait for each other instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# var/ holds the default SQLite database and collected static files; make sure it exists.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Serve app static files straight from the apps, so no collectstatic step is needed to run.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Email (campaigns/email) ----------------------------------------------------------------
# EMAIL_URL picks Django's email backend: smtp://user:password@host:587 (smtp+tls://, smtps://;
# the default is the local mail server, smtp://localhost:25), consolemail:// (the default with
# DEBUG on, for development), or an ESP through django-anymail: anymail://postmark,
# anymail://sendgrid, … with the ESP's settings as ANYMAIL_<NAME> variables
# (ANYMAIL_POSTMARK_SERVER_TOKEN, ANYMAIL_SENDGRID_API_KEY, ANYMAIL_WEBHOOK_SECRET=user:password
# for the tracking webhooks at /anymail/<esp>/tracking/).
EMAIL_URL = env.str("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25")
if EMAIL_URL.startswith("anymail://"):
    ESP_NAME = EMAIL_URL.removeprefix("anymail://").strip("/").lower()
    if not ESP_NAME.replace("_", "").isalnum():
        raise ImproperlyConfigured(f"EMAIL_URL anymail://<esp> names an ESP (postmark, sendgrid, …), not {ESP_NAME!r}.")
    EMAIL_BACKEND = f"anymail.backends.{ESP_NAME}.EmailBackend"
else:
    EMAIL_CONFIG = env.email_url_config(EMAIL_URL)
    vars().update(EMAIL_CONFIG)
ANYMAIL = {name.removeprefix("ANYMAIL_"): value for name, value in os.environ.items() if name.startswith("ANYMAIL_")}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Switchyard <switchyard@localhost>")
# Seconds an SMTP or ESP call may wait for an answer. Without one a stalled server holds a worker
# for ever; with one, a timeout after the message went out is recorded as ambiguous, not resent.
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=30.0)
# The List-Unsubscribe mailto address (the unsubscribe token goes in the subject).
EMAIL_UNSUBSCRIBE_MAILTO = env.str(
    "EMAIL_UNSUBSCRIBE_MAILTO",
    default="unsubscribe@" + (DEFAULT_FROM_EMAIL.rpartition("@")[2].rstrip(">").strip() or "localhost"),
)
# Sends a window may give out across all workers, e.g. "300/minute" for an SMTP quota; empty = no limit.
EMAIL_RATE_LIMIT = env.str("EMAIL_RATE_LIMIT", default="")
if EMAIL_RATE_LIMIT and not re.match(
    r"^\s*[1-9]\d*\s*/\s*\d*\s*(second|minute|hour|day)s?\s*$", EMAIL_RATE_LIMIT.lower()
):
    raise ImproperlyConfigured(f"EMAIL_RATE_LIMIT must look like 300/minute or 10000/hour, not {EMAIL_RATE_LIMIT!r}.")
# At most this many marketing emails to one contact in 24 hours, across loops, reminders and
# surveys (transactional mail and tests do not count); 0 = no cap.
EMAIL_DAILY_CAP_PER_CONTACT = env.int("EMAIL_DAILY_CAP_PER_CONTACT", default=0)
# Soft bounces that suppress an address: this many within this many days (a hard bounce or a
# complaint suppresses at once).
EMAIL_SOFT_BOUNCE_LIMIT = env.int("EMAIL_SOFT_BOUNCE_LIMIT", default=3)
EMAIL_SOFT_BOUNCE_DAYS = env.int("EMAIL_SOFT_BOUNCE_DAYS", default=30)
if min(EMAIL_DAILY_CAP_PER_CONTACT, EMAIL_SOFT_BOUNCE_LIMIT, EMAIL_SOFT_BOUNCE_DAYS, EMAIL_TIMEOUT) < 0:
    raise ImproperlyConfigured("EMAIL_DAILY_CAP_PER_CONTACT, EMAIL_SOFT_BOUNCE_* and EMAIL_TIMEOUT cannot be negative.")

# --- Surveys (campaigns/surveys, campaigns/webhooks, campaigns/notifications) ----------------
# Days a survey's score links stay open after the survey was due; later they show "closed".
SURVEY_LINK_DAYS = env.int("SURVEY_LINK_DAYS", default=60)
# At most one survey per contact in this many hours, across all campaigns (Promoter's rule); 0 = off.
SURVEY_CONTACT_LIMIT_HOURS = env.float("SURVEY_CONTACT_LIMIT_HOURS", default=24.0)
# Seconds a webhook or Slack call may take before it is retried.
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=10.0)
# Webhook and Slack URLs that resolve to private or loopback addresses are refused unless this is
# on (it is with DEBUG, for local work: a receiver on 127.0.0.1).
WEBHOOKS_ALLOW_PRIVATE_URLS = env.bool("WEBHOOKS_ALLOW_PRIVATE_URLS", default=DEBUG)
if SURVEY_LINK_DAYS < 1 or SURVEY_CONTACT_LIMIT_HOURS < 0 or WEBHOOK_TIMEOUT <= 0:
    raise ImproperlyConfigured(
        "SURVEY_LINK_DAYS must be at least 1, SURVEY_CONTACT_LIMIT_HOURS not negative, WEBHOOK_TIMEOUT positive."
    )

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Task queue (django-q2) -------------------------------------------------------------
# A task can be delivered twice (retry must exceed timeout), so every task is idempotent and
# retry policy lives in our own rows (attempts, next_attempt_at), not in the queue.
Q_BROKER = env.str("Q_BROKER", default="orm")
Q_CLUSTER = {
    "name": "switchyard",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": 120,
    "retry": 180,
    "max_attempts": 1,
    "queue_limit": 50,
    "bulk": 10,
    "save_limit": 1000,
    # Kept per task function, so a flood of one kind (email runs) never prunes the last drain
    # record that /healthz reads.
    "save_limit_per": "func",
    "ack_failures": True,
    "catch_up": False,
    "label": "Task queue",
}
if Q_BROKER == "orm":
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.5
elif Q_BROKER.startswith(("redis://", "rediss://", "unix://")):
    Q_CLUSTER["redis"] = Q_BROKER
else:
    raise ImproperlyConfigured(f"Q_BROKER must be 'orm' or a redis:// URL, not {Q_BROKER!r}.")
# Tests and `process_inbox` run work in the foreground.
Q_SYNC = env.bool("Q_SYNC", default=False)
if Q_SYNC:
    Q_CLUSTER["sync"] = True

# --- REST framework -----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_PAGINATION_CLASS": "common.pagination.Pagination",  # ?limit= up to 1,000
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": [],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Switchyard API",
    "DESCRIPTION": "Segment-compatible inbound endpoints and the staff REST API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Served from our own static files: the docs page works without internet access.
    # Several models have a `reason` with choices of their own: name each enum in the schema.
    "ENUM_NAME_OVERRIDES": {
        "SuppressionReasonEnum": "contacts.models.SuppressionReason",
        "DispatchReasonEnum": "campaigns.surveys.models.Reason",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "segmentBasic": {"type": "http", "scheme": "basic", "description": "API key as username, empty password"},
            "segmentBearer": {"type": "http", "scheme": "bearer"},
        }
    },
}

# --- Inbound limits (Segment's own) -------------------------------------------------------
SEGMENT_MAX_MESSAGE_BYTES = 32 * 1024
SEGMENT_MAX_BATCH_BYTES = 500 * 1024
SEGMENT_MAX_BATCH_MESSAGES = 2500
# A /v1/destination array: Webhooks (Actions) sends up to 1,000 events a request by default,
# often well over 500 KB. Decoded size (a gzip body is inflated up to this and no further).
SEGMENT_MAX_DESTINATION_BYTES = 4 * 1024 * 1024
# Django refuses a body over this before any view reads it: the largest inbound body must fit.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(SEGMENT_MAX_DESTINATION_BYTES, 2_621_440)
INBOX_DRAIN_CHUNK = env.int("INBOX_DRAIN_CHUNK", default=500)
INBOX_MAX_ATTEMPTS = env.int("INBOX_MAX_ATTEMPTS", default=5)
# Processed, skipped and still-waiting inbox rows (and refused requests) older than this are
# deleted hourly; failed and pending rows stay. 0 keeps everything.
INBOX_RETENTION_DAYS = env.int("INBOX_RETENTION_DAYS", default=30)
# How long a web process trusts a key it looked up: a revoked key, a disabled integration or a
# changed setting reaches every other process within this many seconds (0: look up each call).
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=5.0)

# --- Work queue (common/workqueue) ---------------------------------------------------------
# How long a claim holds a queued item. Workers renew it every third of that while they work,
# so the items of a worker that was killed are due again within this many seconds.
WORKQUEUE_LEASE_SECONDS = env.float("WORKQUEUE_LEASE_SECONDS", default=30.0)
if WORKQUEUE_LEASE_SECONDS < 3:
    raise ImproperlyConfigured("WORKQUEUE_LEASE_SECONDS must be at least 3 (heartbeats renew it every third).")

# --- Outbound to Segment and visitor capture (integrations/outbound, integrations/capture) ---
# Items a worker claims at once: a few /v1/batch requests (each under 500 KB and 2,500 messages).
OUTBOUND_BATCH_SIZE = env.int("OUTBOUND_BATCH_SIZE", default=2000)
# Seconds to connect and to wait for an answer, per request; a timeout is retried.
OUTBOUND_CONNECT_TIMEOUT = env.float("OUTBOUND_CONNECT_TIMEOUT", default=5.0)
OUTBOUND_TIMEOUT = env.float("OUTBOUND_TIMEOUT", default=15.0)
# Seconds one integration may take of a worker's batch; the rest of its messages wait for the
# next run, so a slow endpoint never holds another integration's messages for long.
OUTBOUND_INTEGRATION_BUDGET = env.float("OUTBOUND_INTEGRATION_BUDGET", default=30.0)
# A message still failing this many hours after it came due is dead-lettered (staff replay it).
OUTBOUND_RETRY_WINDOW_HOURS = env.float("OUTBOUND_RETRY_WINDOW_HOURS", default=12.0)
# Seconds in one minute of an integration's send_delay_minutes (tests shorten the delay).
OUTBOUND_DELAY_MINUTE_SECONDS = env.float("OUTBOUND_DELAY_MINUTE_SECONDS", default=60.0)
# Run the queue again when a retry comes due, rather than at the next scheduled minute.
OUTBOUND_KICK_RETRIES = env.bool("OUTBOUND_KICK_RETRIES", default=True)
if min(OUTBOUND_BATCH_SIZE, OUTBOUND_TIMEOUT, OUTBOUND_CONNECT_TIMEOUT, OUTBOUND_RETRY_WINDOW_HOURS) <= 0:
    raise ImproperlyConfigured(
        "OUTBOUND_BATCH_SIZE, OUTBOUND_*TIMEOUT and OUTBOUND_RETRY_WINDOW_HOURS must be positive."
    )

# --- CORS: websites post to the inbound API from the browser (django-cors-headers) ----------
# Only the public inbound paths answer cross-origin, to any site: the write key is public by
# design (it sits in every page that loads analytics.js) and no cookie is ever used. A later
# endpoint that allows only some origins stays out of CORS_URLS_REGEX and enables CORS per
# request with a `corsheaders.signals.check_request_enabled` receiver instead.
CORS_URLS_REGEX = r"^/v1/"
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_METHODS = ("POST", "OPTIONS")
# What the client libraries send: analytics.js adds Authorization (Basic, from the writeKey)
# and, on retries, X-Retry-Count; RudderStack's browser SDK adds AnonymousId, SentAt and its
# Rsa-* retry headers. "*" admits any other header a site configures (browsers never let the
# wildcard stand for Authorization, hence the explicit list).
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "content-encoding",
    "x-signature",
    "x-retry-count",
    "x-requested-with",
    "anonymousid",
    "sentat",
    "rsa-recovered",
    "rsa-retry-attempt",
    "rsa-retry-reason",
    "rsa-since-first-attempt",
    "rsa-since-last-attempt",
    "*",
)
# analytics.js waits for X-RateLimit-Reset after a 429; other clients read Retry-After.
CORS_EXPOSE_HEADERS = ("Retry-After", "X-RateLimit-Reset")
CORS_PREFLIGHT_MAX_AGE = 86400

# --- Health ----------------------------------------------------------------------------
# /healthz answers 503 when a due inbox message has waited this long and no drain has finished
# in as long: messages are arriving but no worker is applying them.
HEALTH_QUEUE_STALL_SECONDS = env.int("HEALTH_QUEUE_STALL_SECONDS", default=300)

# --- The admin (django-unfold) --------------------------------------------------------------
# Its CSS, JS and fonts ship in the package: the admin needs no internet access.
UNFOLD = {
    "SITE_TITLE": "Switchyard admin",
    "SITE_HEADER": "Switchyard",
    "SITE_SUBHEADER": "Segment partner operations",
    "SITE_SYMBOL": "hub",
    "SITE_URL": "/admin/",
    "SHOW_VIEW_ON_SITE": False,
    "DASHBOARD_CALLBACK": "config.dashboard.dashboard_callback",
    "SIDEBAR": {"show_search": True, "show_all_applications": True, "navigation": "config.dashboard.navigation"},
}

# --- Security for production --------------------------------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    # Health checks come over plain HTTP from the load balancer.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django_q": {"level": "WARNING"}},
}
