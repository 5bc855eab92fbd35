"""Password rules: twelve characters at least, not like the user's name, not common, not all digits, not the
user name or a word of the office; a weak password is refused in the admin's forms with the field named. The
demo users keep DEMO_PASSWORD because the demo sets it directly (it exists only in a demo database)."""

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from registry.tests.factories import UserFactory
from spf.models import Role, User

STRONG = "maize cart river"


def problems(password: str, user=None) -> list[str]:
    try:
        validate_password(password, user)
    except ValidationError as error:
        return [e.code for e in error.error_list]
    return []


@pytest.mark.parametrize(
    "password, code",
    [
        ("short-pass1", "password_too_short"),  # eleven characters
        ("123456789012345", "password_entirely_numeric"),
        ("password1234", "password_too_common"),
        ("mary.mwansa@example", "password_too_similar"),  # the e-mail address, near enough
        ("zz-mmwansa-was-here", "password_contains_username"),
        ("Zambia forever 2026", "password_workplace_word"),
        ("my single-window pass", "password_workplace_word"),
        (settings.DEMO_PASSWORD + "-and-more", "password_workplace_word"),
    ],
)
def test_a_weak_password_is_refused_for_what_is_wrong_with_it(db, password, code):
    user = User(username="mmwansa", first_name="Mary", last_name="Mwansa", email="mary.mwansa@example.org")

    assert code in problems(password, user)


def test_twelve_characters_are_the_minimum(db):
    assert "password_too_short" in problems("kettle-drum")  # eleven
    assert problems("kettle-drums") == []  # twelve


def test_a_passphrase_is_accepted(db):
    user = User(username="mmwansa", first_name="Mary", last_name="Mwansa")

    assert problems(STRONG, user) == []


def test_the_demo_password_would_be_refused_but_demo_users_still_log_in(client, samfya):
    from spf.demo import demo_users_ensure

    assert problems(settings.DEMO_PASSWORD), "too short for a real account: it exists only in demo databases"
    demo_users_ensure()

    response = client.post("/accounts/login/", {"username": "frontdesk_samfya", "password": settings.DEMO_PASSWORD})

    assert response.status_code == 302


@pytest.fixture
def admin_client_for_ministry(client, db):
    ministry = UserFactory(username="ministry_passwords", role=Role.MINISTRY, is_staff=True)
    client.force_login(ministry)
    return client


def test_the_admin_refuses_a_new_user_with_a_weak_password_and_names_the_field(admin_client_for_ministry):
    response = admin_client_for_ministry.post(
        "/admin/spf/user/add/",
        {"username": "new_officer", "password1": "short", "password2": "short", "role": Role.FRONT_DESK},
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "password2" in errors
    assert any("at least 12 characters" in message for message in errors["password2"])
    assert not User.objects.filter(username="new_officer").exists()


def test_the_admin_accepts_a_new_user_with_a_passphrase(admin_client_for_ministry):
    response = admin_client_for_ministry.post(
        "/admin/spf/user/add/",
        {"username": "new_officer", "password1": STRONG, "password2": STRONG, "role": Role.FRONT_DESK},
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert User.objects.get(username="new_officer").check_password(STRONG)


def test_the_admin_set_password_form_refuses_a_weak_password_and_names_the_field(
    admin_client_for_ministry, samfya_officer
):
    url = f"/admin/spf/user/{samfya_officer.pk}/password/"

    response = admin_client_for_ministry.post(url, {"password1": "1234567890123", "password2": "1234567890123"})

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "password2" in errors
    assert any("entirely numeric" in message for message in errors["password2"])
    samfya_officer.refresh_from_db()
    assert samfya_officer.check_password("pass-word-123")


def test_the_help_text_says_the_rules(admin_client_for_ministry):
    page = admin_client_for_ministry.get("/admin/spf/user/add/").text

    assert "at least 12 characters" in page
    assert "must not contain your user name" in page
