"""Production: refuses to start without a real secret key and an explicit host list."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .base import SECRET_KEY, env

DEBUG = False

# A key shorter than this, or one of the well-known placeholders, is not a secret.
MINIMUM_SECRET_KEY_LENGTH = 50
PLACEHOLDER_KEYS = {"", "change-me", "changeme", "secret", "dev-only-insecure-key-do-not-use-in-production"}
if (
    SECRET_KEY in PLACEHOLDER_KEYS
    or len(SECRET_KEY) < MINIMUM_SECRET_KEY_LENGTH
    or SECRET_KEY.startswith("django-insecure")
):
    raise ImproperlyConfigured(
        f"SECRET_KEY must be set to a random string of at least {MINIMUM_SECRET_KEY_LENGTH} "
        "characters in production (python -c 'import secrets; print(secrets.token_urlsafe(64))')."
    )
if not env.list("ALLOWED_HOSTS", default=[]):
    raise ImproperlyConfigured("ALLOWED_HOSTS must name the hosts this server answers to in production.")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# The container health check speaks plain HTTP to the process itself.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Preloading HSTS is a decision for whoever owns the domain (a ministry's),
# not something a district install should commit them to.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
