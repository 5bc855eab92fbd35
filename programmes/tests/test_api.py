"""The catalogue and eligibility over the REST API, as a partner system or the
ministry's tools see them: the catalogue, agencies, a household's stored
eligibility (scoped like the household), and a draft rule's preview."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from programmes.services import eligibility_recompute_household

from .catalogue_helpers import (
    ELDERLY_LARGE,
    grandmother_and_two,
    make_agency,
    make_programme,
    unknown_ages,
    young_couple,
)

PROGRAMMES = "/api/v1/programmes/"
AGENCIES = "/api/v1/agencies/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def eligibility_url(household) -> str:
    return f"/api/v1/households/{household.pk}/eligibility/"


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "fields"} <= set(body["error"])
    return body["error"]


@pytest.fixture
def sct(samfya, lunga, ministry_user):
    return make_programme(
        code="SCT",
        name="Social Cash Transfer",
        districts=[samfya, lunga],
        acting_user=ministry_user,
        documents=["National registration card of the head"],
    )


# --- the catalogue --------------------------------------------------------------------------------


def test_the_catalogue_lists_programmes_with_agency_districts_documents_and_rules(samfya_officer, sct):
    response = client_for(samfya_officer).get(PROGRAMMES)
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["code"] == "SCT" and row["agency"] == {"code": "MCDSS", "name": sct.agency.name}
    assert row["kind"] == "cash_transfer" and row["kind_label"] == "Cash transfer"
    assert row["frequency"] == "monthly" and row["currency"] == "ZMW"
    assert row["documents"] == ["National registration card of the head"]
    assert {d["district"] for d in row["districts"]} == {"SAM", "LUN"}
    assert row["rules"]["version"] == 1
    assert row["rules"]["eligibility_rule"] == ELDERLY_LARGE


def test_one_programme_by_code_and_an_unknown_code_is_404_in_the_error_shape(samfya_officer, sct):
    client = client_for(samfya_officer)
    assert client.get(f"{PROGRAMMES}sct/").json()["name"] == "Social Cash Transfer"
    assert error_of(client.get(f"{PROGRAMMES}NOPE/"), 404)["code"] == "not_found"


def test_drafts_are_for_ministry_staff_only(samfya, samfya_officer, ministry_user, sct):
    make_programme(code="NEW", districts=[samfya], acting_user=ministry_user, rule=None, status="draft")
    assert [r["code"] for r in client_for(samfya_officer).get(PROGRAMMES).json()["results"]] == ["SCT"]
    error_of(client_for(samfya_officer).get(f"{PROGRAMMES}NEW/"), 404)
    ministry = client_for(ministry_user)
    assert {r["code"] for r in ministry.get(PROGRAMMES).json()["results"]} == {"SCT", "NEW"}
    assert ministry.get(f"{PROGRAMMES}NEW/").json()["rules"] is None
    assert [r["code"] for r in ministry.get(PROGRAMMES, {"status": "draft"}).json()["results"]] == ["NEW"]


def test_the_catalogue_filters_by_district_and_agency(samfya, lunga, samfya_officer, ministry_user, sct):
    make_programme(
        code="LFP", districts=[lunga], acting_user=ministry_user, agency=make_agency("MFL", "Ministry of Fisheries")
    )
    client = client_for(samfya_officer)
    assert [r["code"] for r in client.get(PROGRAMMES, {"district": "lun"}).json()["results"]] == ["LFP", "SCT"]
    assert [r["code"] for r in client.get(PROGRAMMES, {"district": "SAM"}).json()["results"]] == ["SCT"]
    assert [r["code"] for r in client.get(PROGRAMMES, {"agency": "mfl"}).json()["results"]] == ["LFP"]


def test_agencies_are_listed(samfya_officer, sct):
    response = client_for(samfya_officer).get(AGENCIES)
    assert [a["code"] for a in response.json()["results"]] == ["MCDSS"]
    assert client_for(samfya_officer).get(f"{AGENCIES}MCDSS/").json()["focal_point_name"] == "Ms Phiri"


def test_the_catalogue_needs_credentials(db):
    assert error_of(APIClient().get(PROGRAMMES), 401)["code"] == "not_authenticated"


# --- a household's eligibility ------------------------------------------------------------------------------


def test_a_household_eligibility_has_outcome_amount_and_reasons(samfya_officer, sct, samfya_village):
    household = grandmother_and_two(samfya_village)
    eligibility_recompute_household(household_id=household.pk)
    body = client_for(samfya_officer).get(eligibility_url(household)).json()
    assert body["household"] == household.pk and body["number"] == household.number
    [result] = body["results"]
    assert result["programme"]["code"] == "SCT"
    assert (result["outcome"], result["amount"], result["rule_version"]) == ("eligible", "400.00", 1)
    assert [(r["text"], r["status"]) for r in result["reasons"]] == [
        ("household.size >= 3", "true"),
        ("household.members.exists(m, m.age >= 60)", "true"),
    ]


def test_needs_information_names_what_to_collect(samfya_officer, sct, samfya_village):
    household = unknown_ages(samfya_village)
    eligibility_recompute_household(household_id=household.pk)
    [result] = client_for(samfya_officer).get(eligibility_url(household)).json()["results"]
    assert result["outcome"] == "needs_information" and result["amount"] is None
    assert any("date of birth" in item for item in result["missing"])
    assert "unknown" in {r["status"] for r in result["reasons"]}


def test_another_districts_household_is_404(lunga_officer, sct, samfya_village):
    household = young_couple(samfya_village)
    eligibility_recompute_household(household_id=household.pk)
    assert error_of(client_for(lunga_officer).get(eligibility_url(household)), 404)["code"] == "not_found"


def test_a_household_never_assessed_has_no_results(samfya_officer, sct, samfya_village):
    household = young_couple(samfya_village)
    assert client_for(samfya_officer).get(eligibility_url(household)).json()["results"] == []


# --- previewing a draft -------------------------------------------------------------------------------------------


def test_ministry_staff_preview_a_draft_per_district(ministry_user, sct, samfya_village, lunga_village):
    eligible = grandmother_and_two(samfya_village)
    young_couple(samfya_village)
    young_couple(lunga_village)
    eligibility_recompute_household(household_id=eligible.pk)
    response = client_for(ministry_user).post(
        f"{PROGRAMMES}SCT/preview/", {"eligibility_rule": "household.size >= 2"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    rows = {row["district"]: row for row in body["districts"]}
    assert body["programme"] == "SCT"
    assert rows["SAM"] == {
        "district": "SAM",
        "district_name": "Samfya",
        "households": 2,
        "eligible_now": 1,
        "eligible_draft": 2,
        "needs_information_draft": 0,
        "would_change": 1,
    }
    assert (rows["LUN"]["eligible_draft"], rows["LUN"]["would_change"]) == (1, 1)
    assert sct.versions.count() == 1  # a preview saves nothing


def test_a_bad_draft_is_400_naming_the_field_and_the_position(ministry_user, sct):
    response = client_for(ministry_user).post(
        f"{PROGRAMMES}SCT/preview/",
        {"eligibility_rule": "household.size >= 3", "benefit_formula": "200 * household.nonsense"},
        format="json",
    )
    error = error_of(response, 400)
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == ["benefit_formula"]
    assert error["fields"]["benefit_formula"][0].startswith("line 1, column ")


def test_only_ministry_staff_preview(samfya_officer, sct):
    response = client_for(samfya_officer).post(f"{PROGRAMMES}SCT/preview/", {"eligibility_rule": "true"}, format="json")
    assert error_of(response, 403)["code"] == "permission_denied"


def test_the_schema_stays_free_of_warnings(db, tmp_path):
    # --fail-on-warn turns any warning of drf-spectacular into an error.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
