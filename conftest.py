"""Fixtures shared by every app's tests: two districts of the demo country, and
a user of each role."""

import pytest
from django.db import connection

from registry.tests.factories import UserFactory, make_district, make_village
from spf.models import Role


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "postgres" in item.keywords and connection.vendor != "postgresql":
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)"))


@pytest.fixture
def samfya(db):
    return make_district("SAM", "Samfya")


@pytest.fixture
def lunga(db):
    return make_district("LUN", "Lunga")


@pytest.fixture
def samfya_village(samfya):
    return make_village(samfya)


@pytest.fixture
def lunga_village(lunga):
    return make_village(lunga)


@pytest.fixture
def samfya_officer(samfya):
    return UserFactory(username="frontdesk_samfya_test", role=Role.FRONT_DESK, districts=[samfya])


@pytest.fixture
def lunga_officer(lunga):
    return UserFactory(username="frontdesk_lunga_test", role=Role.FRONT_DESK, districts=[lunga])


@pytest.fixture
def committee_samfya(samfya):
    return UserFactory(username="committee_samfya_test", role=Role.COMMITTEE, districts=[samfya])


@pytest.fixture
def ministry_user(db):
    return UserFactory(username="ministry_test", role=Role.MINISTRY, is_staff=True)
