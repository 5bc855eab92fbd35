import logging

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)


@never_cache
def health(request):
    """For load balancers and docker-compose: the web process is up and reaches its database.

    Answers within the connect timeout (DATABASE_CONNECT_TIMEOUT_SECONDS) when the database is away.
    Also says whether the broker (Redis) answers and how many jobs wait in the outbox for it; a broker that
    is down does not make the web process unhealthy: pages and the API keep working, jobs wait (docs/operations.md).
    """
    from .outbox import broker_state, outbox_backlog

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as problem:  # noqa: BLE001 - any failure means unhealthy
        return JsonResponse(
            {"status": "unhealthy", "database": "down", "error": problem.__class__.__name__}, status=503
        )
    answer = {"status": "ok", "database": "up", "broker": broker_state()}
    try:
        backlog = outbox_backlog()
    except Exception:  # noqa: BLE001 - the outbox is news for the operator, never a reason to fail the check
        logger.warning("Health check: could not read the outbox", exc_info=True)
    else:
        answer["jobs_waiting"], answer["oldest_job_waiting_seconds"] = backlog["pending"], backlog["oldest_seconds"]
    return JsonResponse(answer)


def csrf_failure(request, reason=""):
    """A form refused by the CSRF check (CSRF_FAILURE_VIEW): usually a page left open past the end of its session.

    People get a page saying what to do, API clients the one JSON error shape;
    neither is told Django's reason, which is for the server's log.
    """
    from django.shortcuts import render

    if request.path.startswith("/api/"):
        return JsonResponse(
            {
                "error": {
                    "code": "csrf_failed",
                    "message": "CSRF check failed: send the X-CSRFToken header with a session, or use a token.",
                    "fields": {},
                }
            },
            status=403,
        )
    return render(request, "403_csrf.html", status=403)
