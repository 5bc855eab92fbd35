"""Security headers on every page: a Content-Security-Policy without 'unsafe-inline' (and templates with no
inline script, style or event handler for it to refuse), no framing, nosniff, same-origin referrer and opener.
HSTS and secure cookies come with the production settings only."""

import json
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
EXPECTED_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}


def project_python_files() -> list[Path]:
    """The project's own Python, tests aside (not the virtualenv, not collected static files)."""
    folders = [
        p
        for p in ROOT.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and p.name not in ("staticfiles", "media", "test-artifacts", "node_modules")
    ]
    return [path for folder in folders for path in folder.rglob("*.py") if "tests" not in path.parts]


def policy_of(response) -> dict[str, list[str]]:
    """The header's directives; a nonce (new on every response) reads NONCE."""
    header = re.sub(r"'nonce-[A-Za-z0-9+/=]+'", "NONCE", response["Content-Security-Policy"])
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name: values for name, *values in directives}


def policy_exceptions(where: str) -> dict[str, list[str]]:
    """ReDoc's page alone: its nonce for the style elements ReDoc writes, and the hashes of two it writes while loading."""
    if not where.startswith("/api/redoc/"):
        return {}
    from spf.api.docs import REDOC_LOAD_TIME_STYLE_HASHES

    return {"style-src": ["'self'", "NONCE", *REDOC_LOAD_TIME_STYLE_HASHES]}


def assert_secure_headers(response, where: str) -> None:
    assert "'unsafe-inline'" not in response["Content-Security-Policy"], where
    assert "'unsafe-eval'" not in response["Content-Security-Policy"], where
    assert policy_of(response) == EXPECTED_POLICY | policy_exceptions(where), where
    assert response["X-Frame-Options"] == "DENY", where
    assert response["X-Content-Type-Options"] == "nosniff", where
    assert response["Referrer-Policy"] == "same-origin", where
    assert response["Cross-Origin-Opener-Policy"] == "same-origin", where
    assert "Strict-Transport-Security" not in response, f"{where}: HSTS belongs to production only"


@pytest.fixture
def superuser(db):
    from registry.tests.factories import UserFactory
    from spf.models import Role

    return UserFactory(username="root_headers", role=Role.MINISTRY, is_staff=True, is_superuser=True)


def test_anonymous_pages_carry_the_headers(client, db):
    for url in ("/accounts/login/", "/admin/login/", "/programmes/", "/no-such-page/"):
        response = client.get(url)
        assert response.status_code in (200, 404), url
        assert_secure_headers(response, url)


def test_pages_of_every_kind_carry_the_headers(client, superuser, samfya):
    client.force_login(superuser)
    for url in (
        "/",
        "/households/new/",
        "/referrals/",
        "/payments/cycles/",
        "/grievances/",
        "/dashboard/",
        "/admin/",
        "/admin/spf/user/",
        f"/admin/spf/user/{superuser.pk}/change/",
        "/admin/axes/accessattempt/",
        "/api/docs/",
        "/api/docs/?script=",
        "/api/redoc/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_secure_headers(response, url)


def test_the_lockout_page_and_the_csrf_refusal_carry_the_headers(samfya_officer):
    from django.test import Client

    client = Client(REMOTE_ADDR="10.1.1.1")
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        locked = client.post("/accounts/login/", {"username": samfya_officer.username, "password": "wrong"})
    assert locked.status_code == 429
    assert_secure_headers(locked, "lockout page")

    refused = Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "x", "password": "y"})
    assert refused.status_code == 403
    assert_secure_headers(refused, "CSRF refusal")


def test_api_docs_load_their_start_up_script_from_an_address_not_inline(client, superuser):
    client.force_login(superuser)

    page = client.get("/api/docs/").content.decode()
    script = client.get("/api/docs/?script=")

    assert not re.search(r"<script>|<script [^>]*>[^<]", page.replace("<script src", "")), "no inline script"
    assert "<style" not in page
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode()
    redoc = client.get("/api/redoc/")
    nonce = re.search(r"'nonce-([^']+)'", redoc["Content-Security-Policy"]).group(1)
    page = redoc.content.decode()
    assert "<style" not in page and "fonts.googleapis" not in page
    assert f'data-style-nonce="{nonce}"' in page, "ReDoc is given this response's nonce for its styles"
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "no inline script"


def test_no_other_page_has_a_nonce(client, superuser):
    client.force_login(superuser)
    for url in ("/", "/api/docs/", "/admin/", "/accounts/login/"):
        assert "nonce-" not in client.get(url)["Content-Security-Policy"], url


# --- nothing inline for the policy to refuse -------------------------------------------------------------------------


def project_template_files() -> list[Path]:
    folders = [Path(folder) for folder in settings.TEMPLATES[0]["DIRS"]]
    folders += [
        Path(config.path) / "templates"
        for config in apps.get_app_configs()
        if Path(config.path).is_relative_to(ROOT) and ".venv" not in Path(config.path).parts
    ]
    return sorted({file for folder in folders if folder.is_dir() for file in folder.rglob("*.html")})


INLINE = {
    "inline <script>": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "<style> element": re.compile(r"<style\b", re.I),
    "style attribute": re.compile(r"""<[a-z][^<>]*\sstyle\s*=""", re.I),
    "event handler attribute": re.compile(r"""<[a-z][^<>]*\son[a-z]+\s*=""", re.I),
    "javascript: address": re.compile(r"javascript:", re.I),
}


def test_no_template_has_inline_script_style_or_event_handlers():
    files = project_template_files()
    assert len(files) > 40
    found = [
        f"{file.relative_to(ROOT)}: {what}"
        for file in files
        for what, pattern in INLINE.items()
        if pattern.search(file.read_text(encoding="utf-8"))
    ]
    assert not found, found


def python_strings(path: Path) -> list[str]:
    """The string literals of a Python file: where HTML is written (format_html, mark_safe)."""
    with tokenize.open(path) as source:
        return [token.string for token in tokenize.generate_tokens(source.readline) if token.type == tokenize.STRING]


def test_no_python_code_writes_inline_styles_or_scripts():
    """Admin columns and read-only fields write HTML with format_html: classes only."""
    offenders = [
        f"{path.relative_to(ROOT)}: {what}"
        for path in project_python_files()
        for what, pattern in INLINE.items()
        if what != "javascript: address" and any(pattern.search(text) for text in python_strings(path))
    ]
    assert not offenders, offenders


def test_no_script_of_ours_writes_style_attributes():
    """Setting element.style (CSSOM) is allowed by the policy; markup with style="" or setAttribute("style") is not."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "static" / "js").rglob("*.js")
        if re.search(r"""setAttribute\(\s*["']style|style\s*=\s*\\?["']|cssText""", path.read_text(encoding="utf-8"))
    ]
    assert not offenders


# --- production ------------------------------------------------------------------------------------------------------

PRODUCTION_PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.test import Client
response = Client().get("/accounts/login/", secure=True, HTTP_HOST="spf.example.org")
print(json.dumps({
    "status": response.status_code,
    "hsts": response.get("Strict-Transport-Security"),
    "csp": response.get("Content-Security-Policy"),
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_cookie_secure": settings.CSRF_COOKIE_SECURE,
    "csrf_cookie": {k: response.cookies[settings.CSRF_COOKIE_NAME][k] for k in ("secure", "samesite")},
    "ssl_redirect": settings.SECURE_SSL_REDIRECT,
    "plain_http": Client().get("/accounts/login/", HTTP_HOST="spf.example.org").status_code,
}))
"""


def test_production_settings_send_hsts_and_keep_cookies_to_https(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("SECRET_KEY", "DJANGO_SETTINGS_MODULE")}
    env.update(
        DJANGO_SETTINGS_MODULE="spf.settings.production",
        SECRET_KEY="p" * 30 + "-a-production-looking-secret-for-this-test-" + "q" * 20,
        ALLOWED_HOSTS="spf.example.org",
        DATABASE_URL=f"sqlite:///{tmp_path / 'probe.sqlite3'}",
        CELERY_BROKER_URL="",
    )
    result = subprocess.run(
        [sys.executable, "-c", PRODUCTION_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])

    assert seen["status"] == 200
    assert seen["hsts"] and seen["hsts"].startswith("max-age=31536000")
    assert "includeSubDomains" in seen["hsts"]
    assert "'unsafe-inline'" not in seen["csp"] and "frame-ancestors 'none'" in seen["csp"]
    assert seen["session_cookie_secure"] and seen["csrf_cookie_secure"]
    assert seen["csrf_cookie"]["secure"] is True
    assert seen["ssl_redirect"] and seen["plain_http"] == 301


def test_the_test_and_development_settings_send_no_hsts():
    assert settings.SECURE_HSTS_SECONDS == 0
    assert not settings.SESSION_COOKIE_SECURE and not settings.CSRF_COOKIE_SECURE
