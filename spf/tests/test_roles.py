import pytest

from registry.tests.factories import UserFactory
from spf.models import Role
from spf.services import MINISTRY_GROUP, user_sync_role_access


def test_ministry_staff_get_the_admin_and_can_browse_households_without_being_superusers(client, samfya):
    user = UserFactory(username="ministry_plain", role=Role.MINISTRY)
    user_sync_role_access(user=user)
    user.refresh_from_db()
    assert user.is_staff and not user.is_superuser
    assert user.groups.filter(name=MINISTRY_GROUP).exists()
    client.force_login(user)
    assert client.get("/admin/registry/household/").status_code == 200
    assert client.get("/admin/registry/location/add/").status_code == 200
    assert client.get("/admin/registry/household/add/").status_code == 403


@pytest.mark.django_db
def test_a_user_moved_out_of_the_ministry_role_loses_its_group():
    user = UserFactory(username="was_ministry", role=Role.MINISTRY)
    user_sync_role_access(user=user)
    user.role = Role.FRONT_DESK
    user.save()
    user_sync_role_access(user=user)
    assert not user.groups.filter(name=MINISTRY_GROUP).exists()


def test_a_front_desk_officer_cannot_enter_the_admin(client, samfya_officer):
    client.force_login(samfya_officer)
    response = client.get("/admin/registry/household/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
