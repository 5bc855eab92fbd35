"""Log-in lockout (django-axes, in the database): five wrong passwords for a user name from one address lock it
for fifteen minutes on every way in (the log-in page, the admin's, the API token), the right password resets the
count, and ministry staff unlock from the admin. Partners' DCI bearer tokens are not user log-ins."""

import datetime

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Permission
from django.test import Client
from rest_framework.test import APIClient

from registry.tests.factories import UserFactory
from spf.models import Role

PASSWORD = "pass-word-123"  # the factories' password
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
TOKEN = "/api/v1/auth/token/"


def from_address(address: str, *, api: bool = False):
    return (APIClient if api else Client)(REMOTE_ADDR=address)


def page_login(client, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password})


def logged_in(client) -> bool:
    return SESSION_KEY in client.session


def fail(client, username: str, times: int, url: str = LOGIN):
    return [client.post(url, {"username": username, "password": "not-the-password"}) for _ in range(times)]


@pytest.fixture
def officer(samfya_officer):
    return samfya_officer


def test_the_limit_and_cool_off_are_the_documented_ones():
    assert settings.LOGIN_FAILURE_LIMIT == settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME == datetime.timedelta(minutes=15)
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


# --- the log-in page ------------------------------------------------------------------------------------------


def test_four_wrong_passwords_only_say_the_password_is_wrong(officer):
    client = from_address("10.0.0.1")

    for response in fail(client, officer.username, 4):
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.text


def test_the_fifth_wrong_password_locks_the_account_and_the_page_says_for_how_long_and_whom_to_ask(officer):
    client = from_address("10.0.0.1")

    *_, fifth = fail(client, officer.username, 5)

    assert fifth.status_code == 429
    assert "Account locked" in fifth.text
    assert "locked on this computer after 5 wrong passwords" in fifth.text
    assert "Try again in 15 minutes" in fifth.text
    assert "ministry staff who manage users" in fifth.text
    assert int(fifth["Retry-After"]) > 14 * 60


def test_a_locked_account_is_refused_even_with_the_right_password(officer):
    client = from_address("10.0.0.1")
    fail(client, officer.username, 5)

    response = page_login(client, officer.username, PASSWORD)

    assert response.status_code == 429
    assert "Account locked" in response.text
    assert not logged_in(client)


def test_the_lock_is_on_that_user_name_from_that_address_only(officer, lunga_officer):
    fail(from_address("10.0.0.1"), officer.username, 5)

    colleague_same_desk = from_address("10.0.0.1")
    assert page_login(colleague_same_desk, lunga_officer.username, PASSWORD).status_code == 302
    own_office_pc = from_address("10.0.0.2")
    assert page_login(own_office_pc, officer.username, PASSWORD).status_code == 302
    assert logged_in(own_office_pc)


def test_the_right_password_resets_the_count(officer):
    client = from_address("10.0.0.1")
    fail(client, officer.username, 4)
    assert page_login(client, officer.username, PASSWORD).status_code == 302
    client.post("/accounts/logout/")

    *_, fourth = fail(client, officer.username, 4)

    assert fourth.status_code == 200
    assert AccessAttempt.objects.get(username=officer.username).failures_since_start == 4


def test_the_lock_ends_after_the_cool_off(officer):
    client = from_address("10.0.0.1")
    fail(client, officer.username, 5)
    # Sixteen minutes later, for the database.
    AccessAttempt.objects.update(attempt_time=datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=16))

    assert page_login(client, officer.username, PASSWORD).status_code == 302
    assert logged_in(client)


def test_tries_during_the_lock_do_not_make_it_longer(officer):
    client = from_address("10.0.0.1")
    fail(client, officer.username, 5)
    locked_at = AccessAttempt.objects.get().attempt_time

    fail(client, officer.username, 3)

    attempt = AccessAttempt.objects.get()
    assert attempt.attempt_time == locked_at
    assert attempt.failures_since_start == 5


# --- the admin's log-in ---------------------------------------------------------------------------------------------


def test_the_admin_login_counts_and_locks_the_same_way(ministry_user):
    client = from_address("10.0.0.7")

    *tries, fifth = fail(client, ministry_user.username, 5, url=ADMIN_LOGIN)

    assert all(response.status_code == 200 for response in tries)
    assert fifth.status_code == 429
    assert "Account locked" in fifth.text
    right = client.post(ADMIN_LOGIN, {"username": ministry_user.username, "password": PASSWORD})
    assert right.status_code == 429
    assert not logged_in(client)


def test_wrong_passwords_on_the_page_and_the_admin_add_up(ministry_user):
    client = from_address("10.0.0.7")
    fail(client, ministry_user.username, 3)
    fail(client, ministry_user.username, 1, url=ADMIN_LOGIN)

    assert fail(client, ministry_user.username, 1, url=ADMIN_LOGIN)[0].status_code == 429


# --- the API token --------------------------------------------------------------------------------------------------


def assert_locked_json(response):
    assert response.status_code == 429
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "account_locked"
    assert "locked" in error["message"] and "15 minutes" in error["message"]
    assert error["fields"] == {}
    assert int(response["Retry-After"]) > 14 * 60


def test_the_api_token_locks_after_five_wrong_passwords_with_a_json_error(officer):
    client = from_address("10.0.0.9", api=True)

    *tries, fifth = fail(client, officer.username, 5, url=TOKEN)

    assert all(r.status_code == 400 and r.json()["error"]["code"] == "validation_error" for r in tries)
    assert_locked_json(fifth)


def test_a_locked_account_gets_no_token_with_the_right_password(officer):
    client = from_address("10.0.0.9", api=True)
    fail(client, officer.username, 5, url=TOKEN)

    response = client.post(TOKEN, {"username": officer.username, "password": PASSWORD}, format="json")

    assert_locked_json(response)
    assert "token" not in response.json()


def test_a_token_resets_the_count(officer):
    client = from_address("10.0.0.9", api=True)
    fail(client, officer.username, 4, url=TOKEN)

    response = client.post(TOKEN, {"username": officer.username, "password": PASSWORD})

    assert response.status_code == 200 and response.json()["token"]
    assert not AccessAttempt.objects.filter(username=officer.username).exists()
    assert "sessionid" not in response.cookies, "a token client is given no session"


def test_a_lock_from_the_log_in_page_holds_for_the_api_token_too(officer):
    fail(from_address("10.0.0.9"), officer.username, 5)

    response = from_address("10.0.0.9", api=True).post(TOKEN, {"username": officer.username, "password": PASSWORD})

    assert_locked_json(response)


def test_partner_bearer_tokens_on_dci_are_not_user_log_ins(db):
    client = from_address("10.0.0.11")
    for _ in range(settings.LOGIN_FAILURE_LIMIT + 1):
        response = client.post(
            "/dci/registry/sync/search", data="{}", content_type="application/json", HTTP_AUTHORIZATION="Bearer wrong"
        )
        assert response.status_code in (400, 401, 403)
    assert not AccessAttempt.objects.exists()


# --- unlocking in the admin -----------------------------------------------------------------------------------------


def test_ministry_staff_see_the_lock_and_unlock_the_account(client, officer, ministry_user):
    fail(from_address("10.0.0.1"), officer.username, 5)
    assert not ministry_user.user_permissions.exists(), "by their role, not by permissions"
    client.force_login(ministry_user)

    listed = client.get("/admin/axes/accessattempt/", {"locked_out": "yes"})
    assert listed.status_code == 200
    assert officer.username in listed.text and "Locked Out" in listed.text
    attempt = AccessAttempt.objects.get(username=officer.username)
    assert client.get(f"/admin/axes/accessattempt/{attempt.pk}/change/").status_code == 200

    response = client.post(
        "/admin/axes/accessattempt/", {"action": "unlock", "_selected_action": [attempt.pk]}, follow=True
    )

    assert "Unlocked 1 user name" in response.text
    assert not AccessAttempt.objects.exists()
    entry = LogEntry.objects.get(user=ministry_user, action_flag=DELETION)
    assert entry.change_message.startswith(f"Unlocked {officer.username} from 10.0.0.1")
    unlocked = from_address("10.0.0.1")
    assert page_login(unlocked, officer.username, PASSWORD).status_code == 302


def test_deleting_the_attempt_in_the_admin_unlocks_too(client, officer, ministry_user):
    fail(from_address("10.0.0.1"), officer.username, 5)
    attempt = AccessAttempt.objects.get()
    client.force_login(ministry_user)

    response = client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert page_login(from_address("10.0.0.1"), officer.username, PASSWORD).status_code == 302


def test_ministry_staff_read_the_log_of_log_ins(client, officer, ministry_user):
    page_login(from_address("10.0.0.1"), officer.username, PASSWORD)
    client.force_login(ministry_user)

    listed = client.get("/admin/axes/accesslog/")

    assert listed.status_code == 200 and officer.username in listed.text


def test_district_staff_with_every_project_permission_do_not_see_lockouts(client, samfya, officer):
    staff = UserFactory(username="samfya_staff", role=Role.FRONT_DESK, districts=[samfya], is_staff=True)
    staff.user_permissions.set(Permission.objects.exclude(content_type__app_label="axes"))
    fail(from_address("10.0.0.1"), officer.username, 5)
    client.force_login(staff)

    assert client.get("/admin/axes/accessattempt/").status_code == 403
    assert (
        client.post(
            "/admin/axes/accessattempt/", {"action": "unlock", "_selected_action": [AccessAttempt.objects.get().pk]}
        ).status_code
        == 403
    )
    assert AccessAttempt.objects.exists()
