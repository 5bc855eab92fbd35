"""The published DCI OpenAPI schemas as validators (jsonschema + referencing + PyYAML).

OpenAPI 3.0 schema objects are JSON Schema draft 4 with extra keywords
(`example`, `description`), which draft 4 ignores. Two things in the
published files need help, neither changing what they say:

- Some `$ref`s point *through* another `$ref` (the Social Registry's
  TxnStatusResponse reaches the beneficiary schema via
  /paths/~1registry~1txn~1on-status/…/oneOf/0/properties/…, where oneOf/0 is
  itself a $ref). JSON Pointer cannot cross a reference, so each such pointer
  is rewritten, once, to the place it reaches.
- `format: date-time` is checked (a timestamp with its offset), as the
  validator does not check formats unless told how.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import jsonschema
import referencing
import referencing.jsonschema
import yaml

from interop.dci.envelope import parse_timestamp

REFERENCE = Path(__file__).parent / "dci_reference"
FILES = {"social": "social_api_v1.0.0.yaml", "ibr": "ibr_api_v1.0.0.yaml"}
URIS = {"social": "urn:dci:social-registry:1.0.0", "ibr": "urn:dci:ibr:1.0.0"}

SYNC_SEARCH = "/paths/~1registry~1sync~1search/post/responses/default/content/application~1json/schema"
ON_SEARCH = "/paths/~1registry~1on-search/post/requestBody/content/application~1json/schema"
SYNC_TXN_STATUS = "/paths/~1registry~1sync~1txn~1status/post/responses/default/content/application~1json/schema"
ON_STATUS = "/paths/~1registry~1txn~1on-status/post/requestBody/content/application~1json/schema"
ACK = "/components/responses/Response/content/application~1json/schema"
HTTP_ERROR = "/components/responses/HttpErrorResponse/content/application~1json/schema"
# The IBR's enrolled and enrolment-update paths give a bare message schema as their
# "default" response (not a response object, and no envelope): the answer is the
# envelope every other exchange uses, with that schema as its message.
ENROLLED = "#enrolled"
ENROLLMENT_UPDATES = "#enrollment-updates"


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _parts(pointer: str) -> list[str]:
    return [_unescape(p) for p in pointer.lstrip("#").lstrip("/").split("/")] if pointer.strip("#/") else []


def _step(node, part: str):
    return node[int(part)] if isinstance(node, list) else node[part]


def _direct(document, parts: list[str]):
    node = document
    for part in parts:
        node = _step(node, part)
    return node


def _reachable(document, pointer: str) -> list[str]:
    """The path a pointer reaches, following any $ref it has to cross on the way."""
    path: list[str] = []
    node = document
    for part in _parts(pointer):
        while isinstance(node, dict) and part not in node and "$ref" in node:
            path = _reachable(document, node["$ref"])
            node = _direct(document, path)
        node = _step(node, part)
        path.append(part)
    return path


def _fix_references(document) -> dict:
    fixed = copy.deepcopy(document)

    def walk(node):
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/"):
                try:
                    _direct(document, _parts(reference))
                except (KeyError, IndexError, TypeError, ValueError):
                    node["$ref"] = "#/" + "/".join(_escape(p) for p in _reachable(document, reference))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(fixed)
    return fixed


@lru_cache(maxsize=2)
def document(api: str) -> dict:
    with open(REFERENCE / FILES[api], encoding="utf-8") as handle:
        return _fix_references(yaml.safe_load(handle))


@lru_cache(maxsize=1)
def registry() -> referencing.Registry:
    resources = [
        (
            URIS[api],
            referencing.Resource.from_contents(document(api), default_specification=referencing.jsonschema.DRAFT4),
        )
        for api in FILES
    ]
    return referencing.Registry().with_resources(resources)


FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time")
def _date_time(value) -> bool:
    return not isinstance(value, str) or parse_timestamp(value) is not None


def _schema(api: str, pointer: str) -> dict:
    uri = URIS[api]
    if pointer in (ENROLLED, ENROLLMENT_UPDATES):
        message = "EnrolledResponse" if pointer == ENROLLED else "EnrollmentUpdatesResponse"
        return {
            "type": "object",
            "properties": {
                "signature": {"$ref": f"{uri}#/components/schemas/MsgSignature"},
                "header": {"$ref": f"{uri}#/components/schemas/MsgCallbackHeader_V1.0.0"},
                "message": {"$ref": f"{uri}#/components/schemas/{message}"},
            },
            "required": ["header"],
        }
    return {"$ref": f"{uri}#{pointer}"}


def validator(api: str, pointer: str) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(_schema(api, pointer), registry=registry(), format_checker=FORMATS)


def problems(api: str, pointer: str, instance) -> list[str]:
    found = sorted(validator(api, pointer).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}" for error in found]


def assert_valid(api: str, pointer: str, instance) -> None:
    """Fail, listing every problem, unless `instance` is valid against the published schema."""
    found = problems(api, pointer, instance)
    assert not found, f"not valid against the {api} schema {pointer}:\n" + "\n".join(found[:20])
