"""`Idempotency-Key` for every API write: the same request sent again is answered once.

An API client (a partner system, a script, the browser) that sends `POST`, `PUT`, `PATCH` or
`DELETE` under `/api/` with an `Idempotency-Key` header gets, for a repeat of that request with
the same key within a day, the answer the first one got (status and body, with
`Idempotent-Replayed: true`); the work is not done again. The same key with another request
(another address or body) is refused with 422. Keys are per user. docs/api.md says how to use it.

How: the key is claimed (a row, unique per user and key) in a transaction that also runs the
view; the answer is stored in the same transaction. Two copies arriving at once take turns on
the unique index: the second waits until the first commits, then repeats its answer. A refused
request (4xx) keeps nothing, so the client may correct it and send it again with the same key.

The view's user is who DRF authenticates (token or session), found here before the view runs;
a request that does not authenticate is left to the view (401/403), keys or not.
"""

import copy
import hashlib
import json

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.views import APIView

from spf.database_outage import OUTAGE_ERRORS, database_outage_response

from .models import IdempotencyKey
from .services import idempotency_key_claim, idempotency_key_keep

HEADER = "Idempotency-Key"
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
API_PREFIX = "/api/"
# The column's length; a UUID is 36 characters, a partner's message id rarely more than 100.
MAX_KEY_LENGTH = 255


def _error(status: int, code: str, message: str, fields: dict | None = None) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "fields": fields or {}}}, status=status)


def request_fingerprint(request: HttpRequest) -> str:
    """SHA-256 of the method, the address with its query and the body.

    A JSON body counts by its content (key order and spacing aside); a multipart upload by its
    fields and its files' names and contents (its boundary is random on every send)."""
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.get_full_path()}\n".encode())
    content_type = request.content_type or ""
    if content_type == "multipart/form-data":
        for name, values in sorted(request.POST.lists()):
            digest.update(json.dumps([name, values]).encode())
        for name, files in sorted(request.FILES.lists()):
            for upload in files:
                digest.update(json.dumps([name, upload.name, upload.size]).encode())
                for chunk in upload.chunks():
                    digest.update(chunk)
                upload.seek(0)
    elif content_type == "application/json":
        try:
            digest.update(json.dumps(json.loads(request.body), sort_keys=True, separators=(",", ":")).encode())
        except ValueError:
            digest.update(request.body)
    else:
        digest.update(request.body)
    return digest.hexdigest()


def _view_setting(view_func, name: str):
    """The view's authentication or parser classes: an action may set its own (`@action(parser_classes=...)`)."""
    return getattr(view_func, "initkwargs", {}).get(name, getattr(view_func.cls, name))


def _api_user(request: HttpRequest, view_func):
    """The user DRF will authenticate for this view, or None (anonymous, or credentials refused).

    On a copy of the request: DRF sets the user it finds (or an anonymous one, when the session's CSRF
    check fails) on the request it wraps, and the view must authenticate the untouched request itself.
    With the view's parsers: that CSRF check reads the form through this request, and DRF, finding no
    parser for it, would leave the request an empty form (and no file)."""
    drf_request = Request(
        copy.copy(request),
        parsers=[parser() for parser in _view_setting(view_func, "parser_classes")],
        authenticators=[authenticator() for authenticator in _view_setting(view_func, "authentication_classes")],
    )
    try:
        user = drf_request.user
    except APIException:
        return None
    return user if user is not None and user.is_authenticated else None


def _replay(earlier: IdempotencyKey) -> HttpResponse:
    headers = dict(earlier.response_headers)
    if headers.pop("streamed", False):
        return _error(
            409,
            "idempotency_key_used",
            "This request was done already with this Idempotency-Key; its answer was a stream that is not kept.",
        )
    response = HttpResponse(bytes(earlier.response_body), status=earlier.status_code)
    for name, value in headers.items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response


class IdempotencyKeyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        key = request.headers.get(HEADER, "").strip()
        if not key or request.method not in UNSAFE_METHODS or not request.path.startswith(API_PREFIX):
            return None
        view_class = getattr(view_func, "cls", None)
        if not (isinstance(view_class, type) and issubclass(view_class, APIView)):
            return None
        if len(key) > MAX_KEY_LENGTH:
            return _error(
                400,
                "validation_error",
                f"{HEADER}: at most {MAX_KEY_LENGTH} characters.",
                {HEADER: [f"At most {MAX_KEY_LENGTH} characters."]},
            )
        try:
            # The body first: authenticating with a session reads the form for its CSRF token, and
            # the body cannot be read again once a form has been read from the stream.
            fingerprint = request_fingerprint(request)
            user = _api_user(request, view_func)
            if user is None:
                return None
            with transaction.atomic():
                claim = idempotency_key_claim(
                    user=user, key=key, method=request.method, path=request.get_full_path(), fingerprint=fingerprint
                )
                if claim.claimed is not None:
                    response = view_func(request, *view_args, **view_kwargs)
                    if hasattr(response, "render") and callable(response.render):
                        response = response.render()
                    idempotency_key_keep(claim.claimed, response)
                    return response
        except OUTAGE_ERRORS as problem:
            return database_outage_response(request, problem)
        if claim.repeats_earlier:
            return _replay(claim.earlier)
        return _error(
            422,
            "idempotency_key_reused",
            f"This {HEADER} was used for another request ({claim.earlier.method} {claim.earlier.path} with "
            "another body). Use a new key for each request.",
            {HEADER: ["Already used for another request."]},
        )
