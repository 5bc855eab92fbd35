"""Sessions end: when the browser closes (no expiry on the cookie), after twenty minutes without a request at
the shared counter PC, and ten hours after logging in whatever happens. The "last seen" mark is written at most
once a minute, not on every page."""

import datetime
import time

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.db import connection
from django.test.utils import CaptureQueriesContext

from spf.sessions import LAST_SEEN_AT, LOGGED_IN_AT

PASSWORD = "pass-word-123"
SEARCH = "/"


def shift_clocks(client, *, logged_in_ago: datetime.timedelta, last_seen_ago: datetime.timedelta) -> None:
    """Move the session's marks into the past (the database's view of "later")."""
    session = client.session
    now = time.time()
    session[LOGGED_IN_AT] = now - logged_in_ago.total_seconds()
    session[LAST_SEEN_AT] = now - last_seen_ago.total_seconds()
    session.save()


def session_writes(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if "django_session" in q["sql"] and q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT"))
    ]


def test_the_timings_are_the_documented_ones():
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
    assert settings.SESSION_IDLE_TIMEOUT == datetime.timedelta(minutes=20)
    assert settings.SESSION_ABSOLUTE_TIMEOUT == datetime.timedelta(hours=10)


def test_the_session_cookie_ends_with_the_browser(client, samfya_officer):
    response = client.post("/accounts/login/", {"username": samfya_officer.username, "password": PASSWORD})

    assert response.status_code == 302
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie.value
    assert not cookie["expires"] and not cookie["max-age"], "a cookie with an expiry outlives the browser"
    assert cookie["httponly"]


def test_logging_in_starts_both_clocks(client, samfya_officer):
    before = time.time()
    client.post("/accounts/login/", {"username": samfya_officer.username, "password": PASSWORD})

    session = client.session
    assert session[LOGGED_IN_AT] >= before and session[LAST_SEEN_AT] >= before


def test_twenty_minutes_without_a_request_log_the_officer_out(client, samfya_officer):
    client.force_login(samfya_officer)
    client.get(SEARCH)
    shift_clocks(client, logged_in_ago=datetime.timedelta(minutes=30), last_seen_ago=datetime.timedelta(minutes=21))

    response = client.get(SEARCH, follow=True)

    assert response.redirect_chain[0][0].startswith("/accounts/login/?next=/")
    assert "logged out after 20 minutes without activity" in response.text
    assert SESSION_KEY not in client.session


def test_a_request_within_twenty_minutes_keeps_the_officer_logged_in(client, samfya_officer):
    client.force_login(samfya_officer)
    client.get(SEARCH)
    shift_clocks(client, logged_in_ago=datetime.timedelta(hours=3), last_seen_ago=datetime.timedelta(minutes=19))

    response = client.get(SEARCH)

    assert response.status_code == 200
    assert client.session[SESSION_KEY] == str(samfya_officer.pk)
    assert time.time() - client.session[LAST_SEEN_AT] < 60, "the request counts as activity"


def test_a_session_ends_ten_hours_after_logging_in_however_busy(client, samfya_officer):
    client.force_login(samfya_officer)
    client.get(SEARCH)
    shift_clocks(client, logged_in_ago=datetime.timedelta(hours=10, minutes=1), last_seen_ago=datetime.timedelta(0))

    response = client.get(SEARCH, follow=True)

    assert "a session lasts 10 hours" in response.text
    assert SESSION_KEY not in client.session


def test_an_expired_session_gets_the_api_error_not_a_page(client, samfya_officer):
    client.force_login(samfya_officer)
    client.get(SEARCH)
    shift_clocks(client, logged_in_ago=datetime.timedelta(hours=1), last_seen_ago=datetime.timedelta(minutes=25))

    response = client.get("/api/v1/households/")

    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] == "not_authenticated"


def test_the_last_seen_mark_is_written_at_most_once_a_minute(client, samfya_officer):
    client.force_login(samfya_officer)
    client.get(SEARCH)

    with CaptureQueriesContext(connection) as soon_after:
        client.get(SEARCH)
    assert session_writes(soon_after.captured_queries) == []

    shift_clocks(client, logged_in_ago=datetime.timedelta(minutes=5), last_seen_ago=datetime.timedelta(seconds=61))
    with CaptureQueriesContext(connection) as a_minute_later:
        client.get(SEARCH)
    assert len(session_writes(a_minute_later.captured_queries)) == 1
    assert time.time() - client.session[LAST_SEEN_AT] < 60


def test_a_token_client_is_given_no_session(samfya_officer):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=samfya_officer).key}")

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/households/")

    assert response.status_code == 200
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert not [q for q in queries.captured_queries if "django_session" in q["sql"]]
