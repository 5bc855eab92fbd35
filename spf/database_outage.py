"""PostgreSQL away: a clean "try again in a moment" answer instead of a traceback.

When PostgreSQL restarts, every open connection dies and for some seconds new
ones are refused. A request that needs the database then fails with
`OperationalError` (cannot connect, the server closed the connection) or
`InterfaceError` (the connection was already closed). Such a request answers
503 with a `Retry-After` header: the front-desk page says to try again in a
moment, an API client gets the one JSON error shape. One warning line is logged
per request, not a stack trace: during an outage every request fails the same
way, and a page of traceback each would bury the one line that matters.

Nothing is half-written: a transaction whose connection dies is rolled back by
PostgreSQL, so a household is registered with all its members or not at all.
Once PostgreSQL is back the next request connects again (CONN_HEALTH_CHECKS
drops a dead kept connection first); the app needs no restart. See
docs/operations.md, "When PostgreSQL restarts".

The middleware catches what a view raises; `server_error` (the 500 handler)
asks `outage_response_for_current_exception` for what middleware raises
before or after the view (loading the session, for one).
"""

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

logger = logging.getLogger("spf.database")

# What a client is told to wait before trying again. PostgreSQL restarting
# (an upgrade, a crash, a failover) is back in seconds to a minute; ten seconds
# is long enough not to hammer a server that is starting and short enough that
# an officer retrying by hand is not kept waiting.
RETRY_AFTER_SECONDS = 10

# Errors that mean "the database is not there for this request", not "this
# request is wrong". OperationalError also covers a deadlock or a cancelled
# statement, which a retry resolves as well.
OUTAGE_ERRORS = (OperationalError, InterfaceError)

API_PREFIXES = ("/api/", "/dci/")
HEALTH_PATH = "/healthz"
API_MESSAGE = "The database is not available at the moment. Nothing was saved; try again in a moment."


def is_database_outage(exception: BaseException | None) -> bool:
    return isinstance(exception, OUTAGE_ERRORS)


def database_outage_response(request: HttpRequest, exception: BaseException) -> HttpResponse:
    """The 503 for a request the database could not serve; logs one line (once per request)."""
    if not getattr(request, "_database_outage_logged", False):
        request._database_outage_logged = True
        detail = (str(exception).strip().splitlines() or [""])[0][:200]
        logger.warning(
            "Database unavailable, answered 503: %s %s (%s: %s)",
            request.method,
            request.path,
            type(exception).__name__,
            detail,
        )
    if request.path == HEALTH_PATH:
        # The health check's own answer (spf.views.health), when middleware met the outage first.
        response = JsonResponse(
            {"status": "unhealthy", "database": "down", "error": type(exception).__name__}, status=503
        )
    elif request.path.startswith(API_PREFIXES):
        response = JsonResponse(
            {"error": {"code": "database_unavailable", "message": API_MESSAGE, "fields": {}}}, status=503
        )
    else:
        # No request context: base.html reads the user and their notifications, which needs the database.
        response = HttpResponse(render_to_string("503.html"), status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    # The line above is the log entry: Django's own "Service Unavailable" line would repeat it.
    response._has_been_logged = True
    return response


def outage_response_for_current_exception(request: HttpRequest) -> HttpResponse | None:
    """For the 500 handler, which Django calls while handling the exception: a 503 if it is an outage."""
    exception = sys.exc_info()[1]
    return database_outage_response(request, exception) if is_database_outage(exception) else None


class DatabaseOutageMiddleware:
    """Turns a view's OperationalError or InterfaceError into the 503 of `database_outage_response`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_database_outage(exception):
            return database_outage_response(request, exception)
        return None
