"""The admin site itself and its users: the index in the order of the delivery chain, users scoped to the
districts of whoever manages them (who can hand out no more than they hold), and the admin's own log
for ministry staff only."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType

from registry.tests.factories import UserFactory
from spf.models import Role, User


def with_permissions(user: User, *codenames: str) -> User:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)  # permissions are cached per instance


@pytest.fixture
def samfya_manager(samfya_officer):
    """A front-desk officer of Samfya who may manage users."""
    return with_permissions(samfya_officer, "view_user", "add_user", "change_user")


@pytest.fixture
def superuser(db):
    return UserFactory(username="root_admin_test", role=Role.MINISTRY, is_staff=True, is_superuser=True)


def test_the_index_lists_the_apps_in_the_order_of_the_delivery_chain(client, ministry_user):
    client.force_login(ministry_user)
    page = client.get("/admin/").content.decode()
    positions = [page.index(name) for name in ("Household registry", "Programmes and eligibility", "Referrals")]
    assert positions == sorted(positions)
    assert page.index("Referrals") < page.index("Enrolments and payments") < page.index("Users and roles")
    # No sidebar repeating the index beside every list.
    assert 'id="nav-sidebar"' not in client.get("/admin/registry/household/").content.decode()


def test_ministry_staff_manage_users_by_their_role(client, db, samfya_officer):
    ministry = UserFactory(username="ministry_no_group", role=Role.MINISTRY, is_staff=True)
    assert not ministry.groups.exists() and not ministry.user_permissions.exists()
    client.force_login(ministry)
    assert samfya_officer.username in client.get("/admin/spf/user/").content.decode()
    assert client.get("/admin/spf/user/add/").status_code == 200
    assert client.get(f"/admin/spf/user/{samfya_officer.pk}/change/").status_code == 200


def test_a_districts_user_manager_sees_only_the_users_of_their_districts(
    client, samfya_manager, lunga_officer, committee_samfya
):
    client.force_login(samfya_manager)
    page = client.get("/admin/spf/user/").content.decode()
    assert committee_samfya.username in page and samfya_manager.username in page
    assert lunga_officer.username not in page
    # The district filter offers their districts only.
    assert "Samfya" in page and "Lunga" not in page
    assert client.get(f"/admin/spf/user/{lunga_officer.pk}/change/").status_code == 404
    assert client.get(f"/admin/spf/user/{lunga_officer.pk}/password/").status_code == 404


def test_a_districts_user_manager_cannot_give_the_ministry_role_or_another_district(
    client, superuser, samfya_manager, committee_samfya, samfya, lunga
):
    client.force_login(superuser)
    form = client.get(f"/admin/spf/user/{committee_samfya.pk}/change/").content.decode()
    assert 'value="ministry"' in form and f'value="{lunga.pk}"' in form
    client.force_login(samfya_manager)
    form = client.get(f"/admin/spf/user/{committee_samfya.pk}/change/").content.decode()
    assert 'value="ministry"' not in form
    assert f'value="{lunga.pk}"' not in form and f'value="{samfya.pk}"' in form

    response = client.post(
        f"/admin/spf/user/{committee_samfya.pk}/change/",
        {
            "username": committee_samfya.username,
            "role": Role.MINISTRY,
            "districts": [samfya.pk, lunga.pk],
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "10:00:00",
        },
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "role" in errors and "districts" in errors
    committee_samfya.refresh_from_db()
    assert committee_samfya.role == Role.COMMITTEE
    assert list(committee_samfya.districts.all()) == [samfya]


def test_nobody_but_a_superuser_changes_a_superuser_or_ministry_staff(
    client, samfya, superuser, ministry_user, samfya_manager
):
    superuser.districts.add(samfya)
    ministry_user.districts.add(samfya)  # assigned a district, but sees them all
    client.force_login(samfya_manager)
    for stronger in (superuser, ministry_user):
        page = client.get(f"/admin/spf/user/{stronger.pk}/change/")
        assert page.status_code == 200 and 'name="username"' not in page.content.decode()
        assert client.get(f"/admin/spf/user/{stronger.pk}/password/").status_code == 403
    ministry = with_permissions(ministry_user, "view_user", "change_user")
    client.force_login(ministry)
    assert client.get(f"/admin/spf/user/{superuser.pk}/password/").status_code == 403
    client.force_login(superuser)
    assert client.get(f"/admin/spf/user/{ministry_user.pk}/password/").status_code == 200


def test_the_admins_log_is_for_ministry_staff_only(client, ministry_user, samfya_manager):
    entry = LogEntry.objects.create(
        user=ministry_user,
        content_type=ContentType.objects.get_for_model(User),
        object_id=str(samfya_manager.pk),
        object_repr=samfya_manager.username,
        action_flag=CHANGE,
        change_message="Changed the role.",
    )
    client.force_login(ministry_user)
    page = client.get("/admin/admin/logentry/").content.decode()
    assert "Changed the role." in page and f"/admin/spf/user/{samfya_manager.pk}/change/" in page
    assert client.get(f"/admin/admin/logentry/{entry.pk}/change/").status_code == 200
    assert client.get("/admin/admin/logentry/add/").status_code == 403

    client.force_login(with_permissions(samfya_manager, "view_logentry"))
    assert client.get("/admin/admin/logentry/").status_code == 403
