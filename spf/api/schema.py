"""The errors every operation of a kind can answer, documented once for all of them.

Each view documents the errors of its own rules (a refused transition, a duplicate household). Some
answers come from the machinery every view shares, and a partner system must be able to rely on
them from the schema too: 401 from token authentication, 400 from a list's filters (a date that is
not a date, a choice that is not one), 404 from its pagination (a page past the end), and 415 from
the parsers (a body in a media type the operation does not read). Every write that needs credentials
takes an `Idempotency-Key` header (spf/idempotency/), refused with 422 when the key was used for another
request; and any operation answers 503 while the database is unavailable (spf/database_outage.py). The
schema fuzz test (`tests/test_api_fuzz.py`) holds the schema to what the API answers.
"""

ERROR_SCHEMA = "Error"  # the one error shape's component (spf/api/errors.py)

SHARED_ERRORS = {
    "401": "No credentials, or a bad token.",
    "400": "A filter or the page is not valid; `fields` names the parameter.",
    "404": "No such page (past the end of the list).",
    "415": "The body is not in a media type this operation reads, or cannot be parsed as the type it names.",
    "422": "The Idempotency-Key was used (in the last day) for another request: another address or body.",
    "503": "The database is not answering (restarting): nothing was saved; the Retry-After header says when to try again.",
}

IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Any text new for each request you mean (a UUID), at most 255 characters. The same key sent again "
        "(a retry) gets the first answer again, with `Idempotent-Replayed: true`, and does nothing twice."
    ),
    "schema": {"type": "string", "maxLength": 255},
}
WRITES = ("post", "put", "patch", "delete")


def _error_response(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}},
    }


def _needs_credentials(operation: dict, default_security: list) -> bool:
    security = operation.get("security", default_security)
    return bool(security) and {} not in security


def document_shared_errors(result, generator, request, public):
    """drf-spectacular postprocessing hook: add the shared errors an operation can answer but does not document."""
    if ERROR_SCHEMA not in result.get("components", {}).get("schemas", {}):
        return result
    default_security = result.get("security", [])
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            query = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
            shared = []
            if _needs_credentials(operation, default_security):
                shared.append("401")
            if method == "get" and query:
                shared.append("400")
            if method == "get" and "page" in query:
                shared.append("404")
            # DRF's parsers answer a Content-Type they do not read, or a multipart body they cannot split.
            if "requestBody" in operation:
                shared.append("415")
            if method in WRITES and _needs_credentials(operation, default_security):
                parameters = operation.setdefault("parameters", [])
                if not any(p.get("name") == IDEMPOTENCY_KEY_PARAMETER["name"] for p in parameters):
                    parameters.append(dict(IDEMPOTENCY_KEY_PARAMETER))
                shared.append("422")
            shared.append("503")
            for status in shared:
                responses.setdefault(status, _error_response(SHARED_ERRORS[status]))
    return result
