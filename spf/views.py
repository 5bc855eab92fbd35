from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache


@never_cache
def health(request):
    """For load balancers and docker-compose: the web process is up and reaches its database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as problem:  # noqa: BLE001 - any failure means unhealthy
        return JsonResponse({"status": "unhealthy", "database": str(problem.__class__.__name__)}, status=503)
    return JsonResponse({"status": "ok"})
