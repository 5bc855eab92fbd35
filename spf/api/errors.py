"""One JSON shape for every API error:

{"error": {"code": "validation_error", "message": "...", "fields": {"field": ["problem"]}}}
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.views import exception_handler


def _flatten(detail, path: str = "") -> dict[str, list[str]]:
    """Nested errors as dotted field names (`members.0.national_id`), the names the services use."""
    if isinstance(detail, dict):
        fields: dict[str, list[str]] = {}
        for key, value in detail.items():
            key = "non_field_errors" if key == "__all__" else str(key)
            fields.update(_flatten(value, f"{path}.{key}" if path else key))
        return fields
    if isinstance(detail, list):
        if any(isinstance(item, (dict, list)) for item in detail):
            # One entry per item of a nested list (a household's members), empty for the good ones.
            fields = {}
            for index, item in enumerate(detail):
                fields.update(_flatten(item, f"{path}.{index}" if path else str(index)))
            return fields
        return {path or "non_field_errors": [str(m) for m in detail]} if detail else {}
    return {path or "non_field_errors": [str(detail)]}


def api_exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None

    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first = next(iter(fields.items()), None)
        message = f"{first[0]}: {first[1][0]}" if first else "The request is not valid."
        body = {"code": "validation_error", "message": message, "fields": fields}
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(exc, "default_code", "error")
        if isinstance(detail, dict):
            body = {"code": code, "message": str(next(iter(detail.values()))), "fields": _flatten(detail)}
        else:
            body = {"code": code, "message": str(detail), "fields": {}}
    # Some errors carry more than a message: a 409 on registration lists the likely duplicates.
    body.update(getattr(exc, "extra", None) or {})
    response.data = {"error": body}
    return response


@csrf_exempt  # an address that does not exist is a 404 for every method, not a refused CSRF token
def not_found(request, exception=None):
    """Django's 404 page for people; the API's error shape for API clients."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": "not_found", "message": "Not found.", "fields": {}}}, status=404)
    return page_not_found(request, exception)


def bad_request(request, exception=None):
    """A request Django refuses before any view (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, too many fields):
    the API's error shape for API clients, Django's 400 page for people."""
    from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
    from django.http import JsonResponse
    from django.views.defaults import bad_request as html_bad_request

    if not request.path.startswith("/api/"):
        return html_bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} kB"
        message = f"The request is larger than the {size} a request may be (files excepted)."
    elif isinstance(exception, TooManyFieldsSent):
        message = "The request has more fields than a request may have."
    else:
        message = "The request is not valid."
    return JsonResponse({"error": {"code": "bad_request", "message": message, "fields": {}}}, status=400)


def server_error(request):
    from django.http import JsonResponse
    from django.views.defaults import server_error as html_server_error

    from spf.database_outage import outage_response_for_current_exception

    # The database away while middleware loaded the session (outside any view): 503, try again.
    outage = outage_response_for_current_exception(request)
    if outage is not None:
        return outage
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": {"code": "server_error", "message": "The server could not complete the request.", "fields": {}}},
            status=500,
        )
    return html_server_error(request)
