import pytest
from django.contrib.auth.models import Permission

from referrals.tests.makers import make_agency, make_household
from registry.tests.factories import UserFactory
from spf.models import Role


@pytest.fixture
def household(samfya_officer, samfya_village):
    return make_household(officer=samfya_officer, village=samfya_village)


@pytest.fixture
def other_samfya_officer(samfya):
    return UserFactory(username="frontdesk_samfya_second", role=Role.FRONT_DESK, districts=[samfya])


@pytest.fixture
def designated_officer(samfya):
    user = UserFactory(username="grievance_focal_samfya", role=Role.FRONT_DESK, districts=[samfya])
    user.user_permissions.add(Permission.objects.get(codename="handle_sensitive", content_type__app_label="grievances"))
    return user


@pytest.fixture
def agency(db):
    return make_agency("MCDSS")
