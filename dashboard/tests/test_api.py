"""The dashboard over the API: the page's figures as JSON, the same scope, the
API's one error shape."""

import pytest
from rest_framework.test import APIClient

from registry.tests.factories import UserFactory
from spf.models import Role

from .makers import assess, count, person, register

pytestmark = pytest.mark.django_db

URL = "/api/v1/dashboard/"


@pytest.fixture
def counted(samfya, samfya_officer, samfya_village, programme):
    households = [register(samfya_officer, samfya_village, person("F"), person("M")) for _ in range(2)]
    assess(*households)
    count(samfya)


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "fields"} <= set(body["error"])
    return body["error"]


def test_a_committee_member_reads_their_districts_figures_and_indicators(committee_samfya, samfya, counted):
    response = client_for(committee_samfya).get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["districts"] == [{"id": samfya.pk, "code": "SAM", "name": "Samfya"}]
    assert body["refreshed_at"]
    indicators = {i["key"]: i for i in body["indicators"]}
    assert indicators["gap_rate"]["value"] == 100.0
    assert indicators["gap_rate"]["formula"].startswith("eligible households not enrolled")
    tables = {t["key"]: t for t in body["tables"]}
    (row,) = tables["coverage"]["rows"]
    assert (row["programme"], row["eligible"], row["gap"]) == ("Programme SCT", 2, 2)


def test_money_keeps_its_decimals_as_a_string(committee_samfya, samfya, counted):
    tables = {t["key"]: t for t in client_for(committee_samfya).get(URL).json()["tables"]}

    capacity = tables["capacity"]["rows"][0]
    assert capacity["committed"] is None or isinstance(capacity["committed"], str)


def test_another_district_is_not_found_in_the_api_error_shape(committee_samfya, lunga, counted):
    found = error(client_for(committee_samfya).get(URL, {"district": lunga.pk}), 404)

    assert found["code"] == "not_found"


def test_a_bad_filter_names_the_field(committee_samfya, counted):
    found = error(client_for(committee_samfya).get(URL, {"from": "2026-13"}), 400)

    assert "from" in found["fields"]


def test_a_front_desk_officer_has_no_dashboard(samfya):
    officer = UserFactory(username="desk_api", role=Role.FRONT_DESK, districts=[samfya])

    error(client_for(officer).get(URL), 403)
