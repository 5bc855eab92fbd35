"""What partner systems rely on: token auth, one JSON error shape for every 4xx,
an OpenAPI schema that generates cleanly, and docs served from our own static files."""

import datetime
import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from registry.services import MemberInput, household_register

HOUSEHOLDS = "/api/v1/households/"


def assert_error_shape(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert {"code", "message", "fields"} <= set(error)
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], dict)
    if code:
        assert error["code"] == code
    return error


def mary(**extra) -> dict:
    return {"first_name": "Mary", "last_name": "Mwansa", "sex": "F", "date_of_birth": "1980-05-17", **extra}


@pytest.fixture
def officer_client(samfya_officer):
    client = APIClient()
    client.force_authenticate(samfya_officer)
    return client


@pytest.fixture
def household(samfya_officer, samfya_village):
    values = {**mary(relationship="head"), "date_of_birth": datetime.date(1980, 5, 17)}
    return household_register(acting_user=samfya_officer, village=samfya_village, members=[MemberInput(values=values)])


# --- token auth ------------------------------------------------------------------------------


def test_a_partner_gets_a_token_and_uses_it(samfya_officer, household):
    client = APIClient()

    response = client.post("/api/v1/auth/token/", {"username": samfya_officer.username, "password": "pass-word-123"})

    assert response.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get(HOUSEHOLDS).json()["results"][0]["number"] == household.number


def test_a_wrong_password_gets_no_token(samfya_officer):
    response = APIClient().post("/api/v1/auth/token/", {"username": samfya_officer.username, "password": "wrong"})

    error = assert_error_shape(response, 400, "validation_error")
    assert "non_field_errors" in error["fields"]


def test_a_bad_token_is_401_in_the_error_shape(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert_error_shape(client.get(HOUSEHOLDS), 401, "authentication_failed")


def test_no_credentials_is_401_not_a_login_page(db):
    response = APIClient().get(HOUSEHOLDS)

    assert_error_shape(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


# --- one shape for every 4xx -----------------------------------------------------------------


def test_400_names_the_fields(officer_client, samfya_village):
    response = officer_client.post(
        HOUSEHOLDS, {"village": samfya_village.code, "members": [mary(national_id="12/34")]}, format="json"
    )

    error = assert_error_shape(response, 400, "validation_error")
    assert list(error["fields"]) == ["members.0.national_id"]
    assert error["message"].startswith("members.0.national_id: ")


def test_400_for_a_body_that_is_not_json(officer_client):
    response = officer_client.post(HOUSEHOLDS, "{not json", content_type="application/json")

    assert_error_shape(response, 400, "parse_error")


def test_403_for_a_role_that_cannot_write(committee_samfya, household):
    client = APIClient()
    client.force_authenticate(committee_samfya)

    assert_error_shape(
        client.patch(f"{HOUSEHOLDS}{household.pk}/", {"phone": "1"}, format="json"), 403, "permission_denied"
    )


def test_404_for_a_household_outside_the_district(lunga_officer, household):
    client = APIClient()
    client.force_authenticate(lunga_officer)

    assert_error_shape(client.get(f"{HOUSEHOLDS}{household.pk}/"), 404, "not_found")
    assert_error_shape(client.get(f"{HOUSEHOLDS}{household.pk}/history/"), 404, "not_found")


@pytest.mark.parametrize(
    "path",
    ["/api/v1/no-such-thing/", "/api/nothing/", "/api/v1/households/not-a-number/", "/api/v1/households/1/nope/"],
)
def test_404_for_an_unknown_api_address_is_json(officer_client, path):
    # Answered by spf.urls' handler404 (DEBUG is False, as in production).
    assert_error_shape(officer_client.get(path), 404, "not_found")


def test_a_post_to_an_unknown_api_address_is_404_not_a_csrf_refusal(samfya_officer):
    # Found by the API fuzz test: /api/v1/grievances/type/close/ answered 403 "CSRF check failed".
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=samfya_officer).key}")

    assert_error_shape(client.post("/api/v1/grievances/type/close/", {}), 404, "not_found")


def test_a_page_that_is_not_a_page_number_is_400_naming_page(officer_client, household):
    # Found by the API fuzz test: ?page=false answered 404 "Invalid page.", a status the schema did not give.
    for page in ("false", "0", "-3"):
        error = assert_error_shape(officer_client.get(HOUSEHOLDS, {"page": page}), 400, "validation_error")
        assert list(error["fields"]) == ["page"]
    assert_error_shape(officer_client.get(HOUSEHOLDS, {"page": 99}), 404, "not_found")
    assert officer_client.get(HOUSEHOLDS, {"page": "last"}).status_code == 200


def test_a_body_over_the_memory_limit_is_400_in_the_error_shape(officer_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = officer_client.generic(
        "POST", HOUSEHOLDS, '{"address": "' + "x" * 2048 + '"}', content_type="application/json"
    )

    error = assert_error_shape(response, 400, "bad_request")
    assert "larger than" in error["message"]


def test_every_list_documents_the_errors_of_its_filters_and_pages(officer_client):
    paths = officer_client.get("/api/schema/", {"format": "json"}).json()["paths"]

    for path in ("/api/v1/households/", "/api/v1/referrals/", "/api/v1/payments/", "/api/v1/grievances/"):
        assert {"200", "400", "401", "404"} <= set(paths[path]["get"]["responses"]), path
    assert "401" not in paths["/api/v1/auth/token/"]["post"]["responses"]
    assert "415" in paths["/api/v1/households/"]["post"]["responses"]


def test_every_write_documents_the_idempotency_key_and_every_operation_the_database_outage(officer_client):
    paths = officer_client.get("/api/schema/?format=json").json()["paths"]
    register = paths["/api/v1/households/"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in register["parameters"] if p["in"] == "header"}
    assert {"422", "503"} <= set(register["responses"])
    assert "503" in paths["/api/v1/households/"]["get"]["responses"]
    token = paths["/api/v1/auth/token/"]["post"]
    assert "Idempotency-Key" not in {p["name"] for p in token.get("parameters", [])}  # keys are a user's


def test_a_body_in_a_media_type_the_operation_does_not_take_is_415_in_the_error_shape(officer_client):
    # Found by the long API fuzz run: every operation with a body answered an undocumented 415.
    response = officer_client.generic("POST", HOUSEHOLDS, "village=SAM-W1-V1", content_type="text/plain")

    assert_error_shape(response, 415, "unsupported_media_type")


def test_an_unknown_page_outside_the_api_stays_html(officer_client):
    response = officer_client.get("/no-such-page/")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("method", ["put", "delete"])
def test_405_for_replacing_or_deleting_a_household(officer_client, household, method):
    response = getattr(officer_client, method)(f"{HOUSEHOLDS}{household.pk}/", {}, format="json")

    assert_error_shape(response, 405, "method_not_allowed")


def test_409_lists_the_likely_duplicates(officer_client, samfya_village, household):
    response = officer_client.post(
        HOUSEHOLDS, {"village": samfya_village.code, "members": [mary(last_name="Mwanza")]}, format="json"
    )

    error = assert_error_shape(response, 409, "duplicate_suspected")
    assert [c["household_number"] for c in error["candidates"]] == [household.number]
    assert {"score", "reasons", "household_number", "member_id", "name"} <= set(error["candidates"][0])


def test_errors_are_json_even_when_a_browser_asks_for_html(db):
    response = APIClient().get(HOUSEHOLDS, HTTP_ACCEPT="application/json, text/html;q=0.9")

    assert_error_shape(response, 401)


# --- schema and docs -------------------------------------------------------------------------


def test_the_openapi_schema_generates_without_warnings(tmp_path):
    # The command raises on any warning or error, and validates against the OpenAPI 3 spec.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))

    schema = (tmp_path / "schema.yaml").read_text()
    for path in (
        "/api/v1/households/",
        "/api/v1/households/{id}/history/",
        "/api/v1/individuals/{id}/",
        "/api/v1/enrolments/{id}/transition/",
        "/api/v1/payment-cycles/{id}/export/",
        "/api/v1/payment-cycles/{id}/reconciliations/{reconciliation_id}/report/",
        "/api/v1/payments/{id}/",
        "/api/v1/grievances/",
        "/api/v1/grievances/{id}/uphold/",
        "/api/v1/grievances/{id}/attachments/",
        "/api/v1/grievances/{id}/attachments/{attachment_id}/",
    ):
        assert f"  {path}:" in schema


def test_the_schema_is_served(officer_client):
    response = officer_client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    assert "/api/v1/households/" in response.json()["paths"]


def test_the_docs_are_served_from_our_own_static_files(officer_client):
    response = officer_client.get("/api/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    assert not re.findall(r"https?://", page), "the docs page must not load anything from another host"
    assets = re.findall(r'(?:src|href)="/static/([^"]+)"', page)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    for asset in assets:
        assert finders.find(asset), f"{asset} is not among the project's static files"
