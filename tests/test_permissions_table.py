"""The role × endpoint table, asserted: every row of `spf.permissions_table` asked as every actor against
one world of real objects (built once for the module), each request in a savepoint rolled back after it.

For every (address, method, actor) the answer must be the table's; a refused answer must write nothing to
the project's tables; nothing anonymous callers or district B's officer get may name district A's people
(and the lists that could, do name them to whoever may see them). A URL pattern, or a DCI path, without a
row fails the suite, and so does a method a URL answers that its rows do not list. docs/permissions.md must
be what the table generates.
"""

from __future__ import annotations

import copy
import json
import re
import tempfile
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from interop.dci.exchange import ENDPOINTS_BY_PATH
from spf.permissions_table import (
    ADMIN_ROUTE,
    AREAS,
    CHECKED_METHODS,
    DCI_ACTORS,
    DCI_ROUTE,
    FORBIDDEN,
    LOGIN,
    MISS,
    NOT_FOUND,
    NOT_THEIRS,
    OK,
    REFUSALS,
    RULES,
    UNAUTHENTICATED,
    Upload,
    permissions_markdown,
)

from .permissions_world import World, build_world

DOCS = Path(__file__).resolve().parents[1] / "docs" / "permissions.md"
LOGIN_PAGES = ("/accounts/login/", "/admin/login/")
# The apps whose tables a refused request must not write to.
PROJECT_APPS = ("spf", "registry", "programmes", "referrals", "payments", "grievances", "dashboard", "interop")
# Written on purpose when a request is refused: a partner token's last use is recorded once it is shown,
# whatever the exchange then says (the ministry sees which token was used, and when).
WRITTEN_WHEN_REFUSED = {"interop_partnertoken"}
WRITE = re.compile(r'^\s*(?P<verb>insert\s+into|update|delete\s+from)\s+"?(?P<table>\w+)"?', re.IGNORECASE)


# --- the world and the actors' clients ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """The world, built once in a transaction that is rolled back when the module is done; each test runs
    in a savepoint of it (pytest-django's `db`), and each request in one more."""
    # Uploaded documents go to a folder of this module's own: pytest's numbered temporary folders are
    # pruned by any other pytest run on the machine, which may happen in the middle of this one.
    media = tempfile.TemporaryDirectory(prefix="spf-permissions-")
    with media, django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media.name):
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield build_world()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture(scope="module")
def clients(world: World) -> dict[str, dict[str, Client]]:
    """For each kind of address, each actor's client: a session for the pages, a token for the API, a bearer
    token for DCI."""
    pages, api = {}, {}
    for key, user in world.users.items():
        pages[key] = Client()
        api[key] = Client()
        if user is not None:
            pages[key].force_login(user)
            api[key].defaults["HTTP_AUTHORIZATION"] = f"Token {world.api_tokens[key]}"
    # Pages that do not depend on the role are asked as one signed-in user: A's front desk.
    pages["signed_in"], api["signed_in"] = pages["desk_a"], api["desk_a"]
    dci = {key: Client() for key in DCI_ACTORS}
    dci["partner"].defaults["HTTP_AUTHORIZATION"] = f"Bearer {world.partner_token}"
    dci["search_only_partner"].defaults["HTTP_AUTHORIZATION"] = f"Bearer {world.limited_partner_token}"
    dci["user_token"].defaults["HTTP_AUTHORIZATION"] = f"Bearer {world.user_bearer_token}"
    return {"pages": pages, "api": api, "dci": dci}


def _kind(path: str) -> str:
    if path.startswith("/dci/"):
        return "dci"
    return "api" if path.startswith("/api/") else "pages"


# --- asking --------------------------------------------------------------------------------------------------


def _filled(value, world: World):
    if isinstance(value, str):
        return value.format(**vars(world.objects))
    return value


def _ask(client: Client, method: str, path: str, body: dict, world: World):
    """One request in a savepoint rolled back after it, the client's cookies as they were before."""
    cookies = copy.deepcopy(client.cookies)
    data = {key: _filled(value, world) for key, value in body.items()}
    has_file = any(isinstance(value, Upload) for value in data.values())
    for key, value in data.items():
        if isinstance(value, Upload):
            data[key] = SimpleUploadedFile(value.name, value.content.encode(), content_type=value.content_type)
    recorder = WriteRecorder()
    with transaction.atomic(), connection.execute_wrapper(recorder):
        if method == "GET":
            response = client.get(path)
        elif method == "DELETE":
            response = client.delete(path)
        elif _kind(path) == "pages" or has_file:
            # A form, as a browser posts it (multipart carries files too).
            response = client.generic(method, path) if method != "POST" else client.post(path, data)
        elif _kind(path) == "dci":
            response = client.generic(method, path, b"", content_type="application/json")
        else:
            response = client.generic(method, path, json.dumps(data), content_type="application/json")
        content = b"".join(response.streaming_content) if response.streaming else response.content
        transaction.set_rollback(True)
    client.cookies = cookies
    return response, content, recorder.written


class WriteRecorder:
    """The project's tables each statement of a request writes (INSERT, UPDATE, DELETE), as they run."""

    def __init__(self):
        self.written: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        match = WRITE.match(sql)
        if match and match["table"].split("_", 1)[0] in PROJECT_APPS and match["table"] not in WRITTEN_WHEN_REFUSED:
            self.written.append(f"{match['verb'].upper()} {match['table']}")
        return execute(sql, params, many, context)


def _outcome(method: str, response, path: str) -> str:
    status = response.status_code
    if status in (301, 302, 303, 307, 308):
        target = urlsplit(response["Location"]).path
        if target.startswith(LOGIN_PAGES) and "next=" in response["Location"]:
            return LOGIN
        if "/open/" in path and path.rsplit("=", 1)[-1] not in response["Location"]:
            return MISS
        return OK
    if 200 <= status < 300:
        return OK
    if status in (400, 409) and method != "GET":
        return OK
    return {401: UNAUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND}.get(status, str(status))


def _secrets_shown(world: World, path: str, content: bytes) -> list[str]:
    """District A's people named in an answer (those the address itself spells out excepted)."""
    text = content.decode("utf-8", errors="replace")
    return [secret for secret in world.secrets if secret in text and secret not in path]


# --- the table is complete ----------------------------------------------------------------------------------


def _routes(resolver: URLResolver | None = None, prefix: str = "") -> set[str]:
    found = set()
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            found |= _routes(pattern, _join(prefix, str(pattern.pattern)))
        elif isinstance(pattern, URLPattern):
            found.add(_join(prefix, str(pattern.pattern)))
    return found


def _join(prefix: str, route: str) -> str:
    # As Django joins them for ResolverMatch.route: an included regex's leading ^ goes.
    return prefix + (route[1:] if prefix and route.startswith("^") else route)


def test_every_url_pattern_of_the_project_has_a_row():
    routes = {route for route in _routes() if not route.startswith(ADMIN_ROUTE)}
    in_table = {rule.route for rule in RULES if rule.route != ADMIN_ROUTE}
    assert routes - in_table == set(), "add these URL patterns to spf/permissions_table.py"
    assert in_table - routes == set(), "these rows name URL patterns that no longer exist"
    assert any(rule.route == ADMIN_ROUTE for rule in RULES), "the admin needs its row"


def test_every_dci_endpoint_has_a_row():
    in_table = {rule.case for rule in RULES if rule.route == DCI_ROUTE}
    assert set(ENDPOINTS_BY_PATH) - in_table == set(), "add these DCI paths to spf/permissions_table.py"
    assert in_table - set(ENDPOINTS_BY_PATH) == {"no/such/endpoint"}


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.label)
def test_each_row_asks_the_pattern_it_names(rule):
    route = resolve(_concrete_example(rule.path)).route
    if rule.route == ADMIN_ROUTE:
        assert route.startswith(ADMIN_ROUTE)
    else:
        assert route == rule.route, f"{rule.path} resolves to {route}"


def _concrete_example(template: str) -> str:
    """The template with each placeholder replaced by a value its converter accepts (ids and numbers are
    digits here), enough to see which pattern the address resolves to."""
    out, rest = "", template.split("?")[0]
    while "{" in rest:
        before, _, after = rest.partition("{")
        name, _, rest = after.partition("}")
        out += before + ("SCT" if name.endswith(".code") else "1")
    return out + rest


# --- the table holds ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.label)
def test_every_actor_gets_the_tables_answer(rule, world, clients, db):
    kind = _kind(rule.path)
    path = _filled(rule.path, world)
    problems = []
    for method in rule.methods:
        for actor, expected in rule.outcomes.items():
            response, content, changed = _ask(clients[kind][actor], method, path, rule.body, world)
            got = _outcome(method, response, path)
            if expected == NOT_THEIRS and response.status_code == 400:
                got = NOT_THEIRS
            where = f"{method} {path} as {actor}"
            if got != expected:
                problems.append(f"{where}: expected {expected}, got {got} ({response.status_code})")
            if got in REFUSALS and changed:
                problems.append(f"{where}: refused ({got}) but changed the database: {changed}")
            # Those who may not read district A's households: nothing they get may name its people.
            if actor in ("anonymous", "desk_b"):
                asked = path + " ".join(str(_filled(value, world)) for value in rule.body.values())
                shown = _secrets_shown(world, asked, content)
                if shown:
                    problems.append(f"{where}: answered {got} naming district A's {shown}")
            if actor == rule.witness and not _secrets_shown(world, path, content):
                problems.append(f"{where}: names none of district A's people, so B's clean answer proves nothing")
    assert not problems, "\n".join(problems)


def test_a_method_no_row_lists_is_refused_with_405(world, clients, db):
    listed = defaultdict(set)
    example = {}
    for rule in RULES:
        listed[rule.route] |= set(rule.methods)
        example.setdefault(rule.route, rule)
    problems = []
    for route, methods in listed.items():
        if route == ADMIN_ROUTE:
            continue  # Django's admin answers its own methods; tests/test_admin_coverage.py covers it.
        rule = example[route]
        kind = _kind(rule.path)
        # Someone the listed methods answer: anyone on a public address, else the superuser (or a partner).
        if kind == "dci":
            actor = "partner"
        elif rule.outcomes["anonymous"] == OK:
            actor = "anonymous"
        else:
            actor = "superuser" if "superuser" in rule.outcomes else "signed_in"
        path = _filled(rule.path, world)
        for method in set(CHECKED_METHODS) - methods:
            response, _, changed = _ask(clients[kind][actor], method, path, {}, world)
            if response.status_code != 405 or changed:
                problems.append(f"{method} {path}: {response.status_code}, changed {changed or 'nothing'}")
    assert not problems, "\n".join(problems)


def test_the_table_covers_every_actor_of_its_area_on_every_row():
    for area in AREAS:
        for rule in area.rules:
            assert set(rule.outcomes) == set(area.actors), rule.label
            assert rule.why.strip(), rule.label


# --- the documentation ------------------------------------------------------------------------------------------


def test_docs_permissions_md_is_generated_from_the_table():
    assert DOCS.read_text() == permissions_markdown(), "run: python manage.py permissions_doc"
