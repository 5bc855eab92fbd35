"""Settings shared by every environment, read from the environment.

Nothing set means the embedded default: a SQLite file beside the project and
Celery running tasks eagerly, so a fresh machine runs the demo with no services.
"""

from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "spf",
    "registry",
    "programmes",
    "referrals",
    "payments",
    "grievances",
    "dashboard",
    "interop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "spf.urls"
WSGI_APPLICATION = "spf.wsgi.application"

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
                "spf.context_processors.country",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("TEST", {})
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["TEST"].setdefault("NAME", env("TEST_DATABASE_NAME", default="test_spf"))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "spf.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "frontdesk:search"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env("TIME_ZONE", default="Africa/Lusaka")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
MEDIA_URL = "media/"

# Imports keep their uploaded file until the job has run; a large Excel file
# must fit through the front door.
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default="")
# No broker means the embedded default: tasks run in the caller's process.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    # Ages change with the calendar, so outcomes do too; at night the servers are idle.
    "recompute-eligibility-nightly": {
        "task": "programmes.tasks.recompute_everything_nightly",
        "schedule": crontab(hour=1, minute=30),
    },
    # The outbox: referral messages to agencies' systems that are due (new ones
    # whose after-commit send was lost, retries past their backoff, expired
    # leases). Every minute, because the shortest backoff is under a minute.
    "referral-deliveries-sweep": {
        "task": "referrals.tasks.deliveries_sweep",
        "schedule": 60.0,
    },
    # Eligibility changes become referrals (or suggestions) within minutes of a
    # recompute, without a desk waiting on it.
    "referral-auto-referrals-sweep": {
        "task": "referrals.tasks.auto_referrals_sweep",
        "schedule": 120.0,
    },
    # Follow-up: long-dead referrals expire before the morning's overdue run,
    # so its digests list only referrals someone can still act on.
    "referrals-expire": {
        "task": "referrals.tasks.referrals_expire",
        "schedule": crontab(hour=5, minute=30),
    },
    # Enrolments whose household lost eligibility are flagged for an officer's
    # review (also after every recompute, by signal); nightly catches the rest.
    "enrolments-flag-review": {
        "task": "payments.tasks.enrolments_flag_review",
        "schedule": crontab(hour=4, minute=0),
    },
    # Grievances past their resolution deadline, flagged before the offices open.
    "grievances-mark-overdue": {
        "task": "grievances.tasks.grievances_mark_overdue",
        "schedule": crontab(hour=5, minute=45),
    },
    # The district dashboard's summaries: every district recounted (a million households take about a
    # minute and a half of the database); the page says how fresh its figures are.
    "dashboard-summaries-refresh": {
        "task": "dashboard.tasks.summaries_refresh",
        "schedule": 1800.0,
    },
    # Overdue referrals and their digests, before the offices open.
    "referrals-mark-overdue": {
        "task": "referrals.tasks.referrals_mark_overdue",
        "schedule": crontab(hour=6, minute=0),
    },
    # DCI: answers to partners' asynchronous requests due for another try, and
    # requests whose processing was lost; every minute, as the first retry is.
    "dci-callbacks-sweep": {
        "task": "interop.tasks.callbacks_sweep",
        "schedule": 60.0,
    },
    # DCI: what old messages asked, and answers never delivered, are forgotten.
    "dci-transactions-purge": {
        "task": "interop.tasks.transactions_purge",
        "schedule": crontab(hour=3, minute=15),
    },
}
# Pushing a referral to an agency's system: a small JSON POST answers in well
# under a second; ten seconds covers a slow district link and a busy server,
# and bounds how long a worker is held by a receiver that hangs (it is retried).
REFERRAL_WEBHOOK_TIMEOUT_SECONDS = env.float("REFERRAL_WEBHOOK_TIMEOUT_SECONDS", default=10.0)

# --- DCI interoperability (docs/interoperability.md) ---------------------------
# This registry's sender_id, and the Ed25519 key that signs its answers (the
# base64 of 32 random bytes; derived from SECRET_KEY when unset).
DCI_SENDER_ID = env("DCI_SENDER_ID", default="spf-single-window")
DCI_SIGNING_KEY = env("DCI_SIGNING_KEY", default="")
# The household attribute a partner's poverty_score reads.
DCI_POVERTY_SCORE_ATTRIBUTE = env("DCI_POVERTY_SCORE_ATTRIBUTE", default="pmt_score")
# Posting an answer to a partner: as for referral webhooks, ten seconds.
DCI_CALLBACK_TIMEOUT_SECONDS = env.float("DCI_CALLBACK_TIMEOUT_SECONDS", default=10.0)
# Days a message's question, or an undelivered answer, is kept (both may name people).
DCI_PAYLOAD_RETENTION_DAYS = env.int("DCI_PAYLOAD_RETENTION_DAYS", default=30)

# --- REST API -----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "spf.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "spf.api.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Single-window social protection API",
    "DESCRIPTION": "Household registry, programmes, referrals, enrolments and payments, grievances, the district dashboard.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name per choice set, where field names alone would collide (every
    # "status") or split one set into many (the six disability domains).
    "ENUM_NAME_OVERRIDES": {
        "HouseholdStatusEnum": "registry.models.HouseholdStatus",
        "MemberStatusEnum": "registry.models.MemberStatus",
        "DifficultyEnum": "registry.models.Difficulty",
    },
}

# --- The country -------------------------------------------------------------
# A country is configuration: registry/countries/<code>/country.json names its
# national ID format, currency, phone prefix and locations file.
# Bulk eligibility steps run at once (threads, one database connection each): one
# per core of the database server is what a recompute can use; more only queue.
RECOMPUTE_PARALLEL_STEPS = env.int("RECOMPUTE_PARALLEL_STEPS", default=2)

SPF_COUNTRY = env("SPF_COUNTRY", default="ZM")

DEMO_PASSWORD = env("DEMO_PASSWORD", default="demo-2026")

# --- E-mail (overdue referral digests) ---------------------------------------
# EMAIL_URL like smtp+tls://user:password@mail.example.org:587; the embedded
# default prints mail to the console, so nothing leaves a demo machine.
globals().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="single-window@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
