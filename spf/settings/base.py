"""Settings shared by every environment, read from the environment.

Nothing set means the embedded default: a SQLite file beside the project and
Celery running tasks eagerly, so a fresh machine runs the demo with no services.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF

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
    "axes",
    "csp",
    "spf",
    "spf.idempotency",
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
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # PostgreSQL away (restarting, unreachable): a clean 503 page or API error instead of a traceback.
    "spf.database_outage.DatabaseOutageMiddleware",
    # An API write sent again with the same Idempotency-Key is answered once (docs/api.md).
    "spf.idempotency.middleware.IdempotencyKeyMiddleware",
    "spf.sessions.SessionExpiryMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
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
# How long a new connection to PostgreSQL may take before the request gives up (libpq's connect_timeout;
# it counts whole seconds, 2 at least). A server that is up answers in milliseconds, one starting up
# refuses at once; only a host that does not answer at all (a network fault, a failover in progress)
# makes a connection wait, and without a limit the kernel retries for about two minutes while the
# person at the desk stares at a blank page and gunicorn kills the worker at 30 s. Three seconds fails
# fast with the "try again in a moment" page (docs/operations.md) and leaves no worker stuck.
DATABASE_CONNECT_TIMEOUT_SECONDS = 3
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    # A kept connection may have died since the last request (PostgreSQL restarted, a failover, a
    # firewall's idle timeout). Django then checks it before the request's first query (a SELECT 1:
    # one round trip per request per reused connection, well under a millisecond on the same network)
    # and reconnects, instead of failing the first request every worker serves after a restart.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", DATABASE_CONNECT_TIMEOUT_SECONDS)
    DATABASES["default"]["TEST"].setdefault("NAME", env("TEST_DATABASE_NAME", default="test_spf"))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "spf.User"

# Passwords (docs/security.md). Length is what makes a password hard to guess, so
# it is the one rule: twelve characters at least, which a passphrase of three
# words meets ("maize cart river") and an eight-character word plus digits does
# not. No rules on character classes: they make people write passwords down at
# a shared counter. The other validators refuse what is guessed first.
PASSWORD_MINIMUM_LENGTH = 12
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": PASSWORD_MINIMUM_LENGTH},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "spf.passwords.WorkplaceWordsValidator"},
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

# A request body other than files (a form, a JSON API request, a DCI message) is held in memory
# whole; the largest real one (a registration with its members, a DCI search) is a few hundred
# kilobytes. Files do not count here: above FILE_UPLOAD_MAX_MEMORY_SIZE they are spooled to a
# temporary file, never held in memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# The largest spreadsheet an upload path reads (household import, beneficiary list, reconciliation
# file; registry/uploads.py). A district's 100,000 households are a 45 MB CSV, a national 200,000-row
# reconciliation file about 15 MB; more than this is more than one file should carry, and is refused
# from the request's Content-Length before it is read (docs/imports.md).
SPREADSHEET_UPLOAD_MAX_BYTES = env.int("SPREADSHEET_UPLOAD_MAX_BYTES", default=64 * 1024 * 1024)
# What an Excel workbook may inflate to when opened: the 100,000-household template is about 420 MB
# of sheet XML. A zip bomb declares gigabytes; it is refused before openpyxl inflates anything.
SPREADSHEET_XLSX_MAX_UNCOMPRESSED_BYTES = env.int("SPREADSHEET_XLSX_MAX_UNCOMPRESSED_BYTES", default=1024 * 1024 * 1024)

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
# When Redis is down or a worker dies (docs/operations.md). A broker on the same network connects and answers
# in milliseconds: a second to connect and a second for a reply mean a Redis that is down, unreachable or hung
# fails a publish in about a second, instead of holding the web request that queued the job (redis-py waits
# forever by default). Jobs are written to the outbox first (spf/outbox.py), so a failed publish loses nothing.
BROKER_SOCKET_TIMEOUT_SECONDS = env.float("BROKER_SOCKET_TIMEOUT_SECONDS", default=1.0)
# A task whose worker was killed before acknowledging it (acks_late) is handed to another worker after this
# long. It must exceed the longest task, or a task still running would be started a second time: the longest
# measured is a full recompute from empty of 1,000,000 households, 5.5 minutes alone and 24 minutes beside two
# other recomputes on a loaded machine; the referral sweep after it 3.5 minutes (docs/benchmarks.md). An hour
# (Redis's own default, made explicit) leaves room. The jobs that matter come back sooner by their own sweeps: an orphaned recompute run, an
# unfinished payroll request, a referral delivery's lease (docs/operations.md).
CELERY_VISIBILITY_TIMEOUT_SECONDS = env.int("CELERY_VISIBILITY_TIMEOUT_SECONDS", default=3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
    "socket_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT_SECONDS,
}
# Publishing: one try, then one more on a fresh connection at once. A pooled connection left from before a
# broker restart fails once and is replaced, so a broker that is back takes the job; a broker that is down
# costs two quick refusals (or two socket timeouts), not Celery's default of four tries with pauses.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0, "interval_max": 0}
CELERY_BEAT_SCHEDULE = {
    # The task outbox: jobs whose publish after commit failed (the broker was down) go out within a minute
    # of its return (and at once, as each worker reconnects to it: spf/celery.py).
    "outbox-flush": {
        "task": "spf.tasks.outbox_flush",
        "schedule": 60.0,
    },
    # Jobs whose worker died: a recompute run marked running that nobody runs, a payroll generation asked
    # for and never done. Every five minutes: the redelivery by Redis takes up to the visibility timeout.
    "recompute-runs-resume": {
        "task": "programmes.tasks.recompute_runs_resume",
        "schedule": 300.0,
    },
    "payroll-requests-resume": {
        "task": "payments.tasks.payroll_requests_resume",
        "schedule": 300.0,
    },
    "import-jobs-resume": {
        "task": "registry.import_jobs_resume",
        "schedule": 300.0,
    },
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
    # API Idempotency-Keys (answers that may name people) are forgotten a day after their request,
    # registration form tokens after a week; hourly keeps each within an hour of that.
    "idempotency-purge": {
        "task": "idempotency.purge",
        "schedule": crontab(minute=40),
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
    # The errors shared by every list and every signed-in operation (spf/api/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "spf.api.schema.document_shared_errors",
    ],
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

# The demo users' password (seed_demo). Shorter than AUTH_PASSWORD_VALIDATORS allow on purpose: the demo
# sets it directly, and it exists only in a database the demo seeded, never in production.
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

# --- Security (docs/security.md) ------------------------------------------------
# Log-in lockout by django-axes, counted in the database (the web processes share
# no cache). Every way in goes through Django's authenticate(), where the axes
# backend refuses a locked account: the log-in page, the admin's, the API token.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Five tries: enough for a typo, caps lock and a half-remembered new password;
# too few for guessing. Fifteen minutes: a guesser gets 20 tries an hour, while
# an officer with a queue at the counter is not kept out for long (or ministry
# staff unlock them at once in the admin).
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_LOCKOUT_MINUTES = env.int("LOGIN_LOCKOUT_MINUTES", default=15)
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
# The account from that computer: a colleague at the next desk (same user name,
# another address) still logs in, and one office behind one address is not
# locked out as a whole by somebody guessing at another person's account.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The lockout lasts the minutes the page promises, not longer for each try made meanwhile.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "spf.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "spf.lockout.client_ip"
AXES_HTTP_RESPONSE_CODE = 429
# Axes' admin pages are registered by spf/lockout_admin.py, with the admin's role rules.
AXES_ENABLE_ADMIN = False
# Its banner on every manage.py command would bury what the command prints (seed_demo's logins).
AXES_VERBOSE = False
# Proxies in front of the app that append the client's address to X-Forwarded-For
# (0: none, the peer's address is the client's). Only addresses proxies we run
# added are believed; a client can write anything to the left of them.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Sessions. The counter PC is shared and left when a household needs walking to
# another office: twenty minutes without a request logs out (long enough to fill
# in a registration with a family at the desk, short enough that a lunch break
# does not leave the registry open). Ten hours after logging in the session ends
# whatever happens: a working day, so each day starts with a log-in. Closing the
# browser ends it too (the cookie has no expiry date).
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_IDLE_TIMEOUT = timedelta(minutes=env.int("SESSION_IDLE_MINUTES", default=20))
SESSION_ABSOLUTE_TIMEOUT = timedelta(hours=env.int("SESSION_ABSOLUTE_HOURS", default=10))
# How stale the "last seen" mark may get before a request writes it again: a
# session row is written at most once a minute, not on every page, at the cost
# of an idle timeout that may end up to a minute early.
SESSION_ACTIVITY_RESOLUTION = timedelta(minutes=1)
# The stored session outlives no working day either (expired rows: `clearsessions`).
SESSION_COOKIE_AGE = int(SESSION_ABSOLUTE_TIMEOUT.total_seconds())

# Headers on every response. Content-Security-Policy: scripts and styles only from
# our own static files, never inline, so injected markup cannot run or restyle
# anything; data: images for the admin's widgets; no framing (with X-Frame-Options
# for old browsers); forms post only here. HSTS and secure cookies: production.py.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}
# A form refused for a missing or stale CSRF token (often: the session ended
# while the page was open) gets our page, or the API's JSON error, not Django's.
CSRF_FAILURE_VIEW = "spf.views.csrf_failure"
