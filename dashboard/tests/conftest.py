import pytest

from payments.tests.makers import make_agency, make_officer
from registry.tests.factories import make_village

from .makers import programme_for_pairs


@pytest.fixture
def agency(db):
    return make_agency("MCDSS")


@pytest.fixture
def maker(agency, samfya, lunga):
    return make_officer(agency, [samfya, lunga], name="maker")


@pytest.fixture
def checker(agency, samfya, lunga):
    return make_officer(agency, [samfya, lunga], name="checker")


@pytest.fixture
def programme(agency, samfya, lunga, ministry_user):
    return programme_for_pairs(agency=agency, districts=[samfya, lunga], ministry_user=ministry_user)


@pytest.fixture
def samfya_ward_2_village(samfya):
    return make_village(samfya, "2")


@pytest.fixture(autouse=True)
def celery_eager():
    """A district never counted is counted on its first visit: here at once, as on the embedded demo."""
    from spf.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before
