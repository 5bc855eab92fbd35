import pytest

from .makers import make_agency, make_cash_programme, make_household, make_officer


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
    return make_cash_programme(agency=agency, districts=[samfya, lunga], ministry_user=ministry_user)


@pytest.fixture
def household(samfya_officer, samfya_village):
    return make_household(officer=samfya_officer, village=samfya_village)
