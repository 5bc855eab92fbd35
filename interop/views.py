"""The DCI endpoints over HTTP: thin, every rule is in `interop.dci.exchange`.

They sit apart from the project's own API (/api/v1/): DCI has its own
envelope, its own error codes and its own authentication, and none of the REST
framework's machinery (session, CSRF, its error shape) applies.
"""

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .dci.envelope import REQUEST_BAD, error_body
from .dci.exchange import ENDPOINTS_BY_PATH, MAX_BODY_BYTES, dci_receive


def _json(body: dict, status: int) -> JsonResponse:
    response = JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})
    # Answers name people: no cache on the way may keep them.
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt
def dci_endpoint(request: HttpRequest, path: str) -> JsonResponse:
    endpoint = ENDPOINTS_BY_PATH.get(path)
    if endpoint is None:
        return _json(error_body("err.request.not_found", f"/dci/{path} is not a DCI endpoint of this registry."), 404)
    if request.method != "POST":
        response = _json(error_body(REQUEST_BAD, f"/dci/{path} takes POST."), 405)
        response["Allow"] = "POST"
        return response
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        # Refused before reading it: one caller cannot tie up a worker with a huge body.
        return _json(error_body(REQUEST_BAD, f"The message is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB."), 400)
    try:
        body = request.body
    except RequestDataTooBig:
        return _json(error_body(REQUEST_BAD, f"The message is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB."), 400)
    answer = dci_receive(
        endpoint=endpoint,
        authorization=request.headers.get("Authorization", ""),
        content_type=request.content_type or request.headers.get("Content-Type", ""),
        body=body,
    )
    return _json(answer.body, answer.status_code)
