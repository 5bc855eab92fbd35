"""The catalogue pages the front desk reads, and the programmes panel on the
household page: grouped outcomes with reasons, what to collect, what to bring,
and "re-check now"."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from programmes.models import EligibilityChange, EligibilityResult, EnrolmentMode, ProgrammeStatus
from programmes.services import eligibility_recompute_household
from registry.models import Member

from .catalogue_helpers import (
    SCHOOL_AGE,
    grandmother_and_two,
    make_programme,
    unknown_ages,
    years_ago,
    young_couple,
)

CATALOGUE = "/programmes/"


def household_url(household) -> str:
    return reverse("frontdesk:household", args=[household.pk])


def recheck_url(household) -> str:
    return reverse("programmes:household-recheck", args=[household.pk])


@pytest.fixture
def desk(client, samfya_officer):
    client.force_login(samfya_officer)
    return client


@pytest.fixture
def sct(samfya, ministry_user):
    return make_programme(
        code="SCT",
        name="Social Cash Transfer",
        districts=[samfya],
        acting_user=ministry_user,
        description="Cash every month for poor households caring for an older person.",
        documents=["National registration card of the head", "A letter from the village headman"],
    )


@pytest.fixture
def school_feeding(samfya, ministry_user):
    return make_programme(
        code="HGSF",
        name="Home Grown School Feeding",
        districts=[samfya],
        acting_user=ministry_user,
        rule=SCHOOL_AGE,
        formula="",
        kind="school_feeding",
        frequency="termly",
        enrolment_mode=EnrolmentMode.DIRECT,
        documents=[],
    )


@pytest.fixture
def lunga_only(lunga, ministry_user):
    return make_programme(code="LFSP", name="Lunga Fisheries Pack", districts=[lunga], acting_user=ministry_user)


# --- the catalogue -----------------------------------------------------------------------------


def test_the_catalogue_tells_who_each_programme_is_for_what_it_gives_and_how_to_enrol(
    desk, sct, school_feeding, lunga_only
):
    page = desk.get(CATALOGUE)
    assert page.status_code == 200
    text = page.text
    assert "Social Cash Transfer" in text and "Home Grown School Feeding" in text
    assert "Cash every month for poor households caring for an older person." in text
    assert "Cash transfer, every month" in text
    assert "A letter from the village headman" in text
    assert "refers the household to Ministry of Community Development" in text
    assert "Enrolled here at the window" in text
    assert "Samfya" in text
    # The officer's own district first: Lunga's programme is one choice away.
    assert "Lunga Fisheries Pack" not in text
    assert "Lunga Fisheries Pack" in desk.get(CATALOGUE, {"district": "all"}).text
    assert "Lunga Fisheries Pack" in desk.get(CATALOGUE, {"district": "lun"}).text


def test_draft_programmes_are_not_in_the_catalogue(desk, samfya, ministry_user):
    make_programme(code="NEW", name="Not Yet Launched", districts=[samfya], acting_user=ministry_user, status="draft")
    page = desk.get(CATALOGUE, {"district": "all"})
    assert "Not Yet Launched" not in page.text
    assert "No programme here yet" in page.text


def test_a_programme_page_by_its_code(desk, sct):
    page = desk.get("/programmes/sct/")
    assert page.status_code == 200
    assert "Social Cash Transfer" in page.text
    assert "household.size &gt;= 3" in page.text  # the rule as written, for the curious officer
    assert "500" in page.text  # capacity in Samfya


def test_a_draft_programme_page_is_for_ministry_staff_only(client, desk, samfya, ministry_user):
    make_programme(code="NEW", districts=[samfya], acting_user=ministry_user, status=ProgrammeStatus.DRAFT)
    assert desk.get("/programmes/NEW/").status_code == 404
    client.force_login(ministry_user)
    assert client.get("/programmes/NEW/").status_code == 200


def test_re_checking_a_household_needs_a_login(client, sct, samfya_village):
    response = client.post("/programmes/households/1/recheck/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- the panel on the household page ---------------------------------------------------------


def test_the_panel_groups_programmes_with_reasons_amount_and_documents(desk, sct, school_feeding, samfya_village):
    household = grandmother_and_two(samfya_village)
    eligibility_recompute_household(household_id=household.pk)
    page = desk.get(household_url(household))
    panel = page.context["programme_panel"]
    assert [e.programme.code for e in panel.eligible] == ["HGSF", "SCT"]
    text = page.text
    assert 'id="programmes"' in text
    assert "ZMW 400.00" in text and "every month, estimated" in text
    assert "✓" in text and "number of members is at least 3" in text
    assert (
        "Documents to bring:</span> National registration card of the head; A letter from the village headman" in text
    )


def test_missing_information_is_named_with_a_question_mark(desk, sct, samfya_village):
    household = unknown_ages(samfya_village)
    eligibility_recompute_household(household_id=household.pk)
    page = desk.get(household_url(household))
    [entry] = page.context["programme_panel"].needs_information
    assert entry.missing
    assert "To collect" in page.text
    assert "date of birth" in page.text
    assert "clause-unknown" in page.text and "?" in page.text


def test_not_eligible_shows_the_failed_clause(desk, sct, samfya_village):
    household = young_couple(samfya_village)
    eligibility_recompute_household(household_id=household.pk)
    page = desk.get(household_url(household))
    assert [e.programme.code for e in page.context["programme_panel"].not_eligible] == ["SCT"]
    assert "clause-false" in page.text and "✗" in page.text


def test_programmes_not_assessed_yet_are_listed_as_such(desk, sct, samfya_village):
    household = young_couple(samfya_village)
    page = desk.get(household_url(household))
    assert [e.programme.code for e in page.context["programme_panel"].not_assessed] == ["SCT"]
    assert "Not assessed yet" in page.text


def test_the_panel_says_when_no_programme_runs_in_the_district(desk, lunga_only, samfya_village):
    household = young_couple(samfya_village)
    page = desk.get(household_url(household))
    assert page.context["programme_panel"].is_empty
    assert "No programme runs in" in page.text


# --- re-check now ------------------------------------------------------------------------------------


def test_re_check_assesses_the_household_and_shows_the_change_at_once(desk, sct, samfya_village):
    household = unknown_ages(samfya_village)
    eligibility_recompute_household(household_id=household.pk)
    # The officer records the missing date of birth: Agnes is 75.
    agnes = Member.objects.get(household=household, first_name="Agnes")
    agnes.date_of_birth = years_ago(75)
    agnes.save(update_fields=["date_of_birth"])

    response = desk.post(recheck_url(household), follow=True)
    assert response.redirect_chain[-1][0].endswith(household_url(household) + "#programmes")
    assert "Social Cash Transfer: Needs information → Eligible" in response.text
    assert [e.programme.code for e in response.context["programme_panel"].eligible] == ["SCT"]
    change = EligibilityChange.objects.filter(household=household).first()
    assert (change.previous_outcome, change.outcome) == ("needs_information", "eligible")


def test_re_check_with_nothing_new_says_so(desk, sct, samfya_village):
    household = young_couple(samfya_village)
    desk.post(recheck_url(household))
    response = desk.post(recheck_url(household), follow=True)
    assert "nothing changed" in response.text
    assert EligibilityResult.objects.filter(household=household).count() == 1


def test_re_check_is_a_post_and_stays_in_the_district(client, desk, lunga_officer, sct, samfya_village):
    household = young_couple(samfya_village)
    assert desk.get(recheck_url(household)).status_code == 405
    client.force_login(lunga_officer)
    assert client.post(recheck_url(household)).status_code == 404
    assert not EligibilityResult.objects.filter(household=household).exists()


def test_a_committee_member_in_the_district_may_re_check(client, committee_samfya, sct, samfya_village):
    household = grandmother_and_two(samfya_village)
    client.force_login(committee_samfya)
    assert client.post(recheck_url(household)).status_code == 302
    assert EligibilityResult.objects.get(household=household).outcome == "eligible"


def test_the_panel_costs_the_same_queries_for_one_programme_or_many(desk, samfya, ministry_user, sct, samfya_village):
    household = grandmother_and_two(samfya_village)
    eligibility_recompute_household(household_id=household.pk)
    with CaptureQueriesContext(connection) as one:
        desk.get(household_url(household))
    for code in ("P2", "P3", "P4"):
        make_programme(code=code, districts=[samfya], acting_user=ministry_user)
    eligibility_recompute_household(household_id=household.pk)
    with CaptureQueriesContext(connection) as four:
        page = desk.get(household_url(household))
    assert len(page.context["programme_panel"].eligible) == 4
    assert len(four) == len(one)


def test_the_catalogue_is_public_and_shows_only_active_programmes(client, samfya, ministry_user):
    from programmes.tests.catalogue_helpers import make_programme

    active = make_programme(code="PUB", districts=[samfya], acting_user=ministry_user, name="Public programme")
    draft = make_programme(code="DRF", districts=[samfya], acting_user=ministry_user, name="Draft programme", status="draft")
    response = client.get("/programmes/")
    assert response.status_code == 200
    assert active.name in response.content.decode()
    assert draft.name not in response.content.decode()
    assert client.get("/programmes/pub/").status_code == 200
    assert client.get("/programmes/drf/").status_code == 404
