"""Referrals over the REST API: the window refers and follows up, an agency's
system pulls its queue and answers, and nobody sees beyond their scope."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from programmes.models import Agency, ReferralDelivery
from referrals.models import Referral, ReferralEvent, ReferralStatus
from referrals.services import referral_create, referral_transition
from registry.tests.factories import UserFactory, make_village
from spf.models import Role

from .makers import make_agency, make_household, make_programme

REFERRALS = "/api/v1/referrals/"
S = ReferralStatus


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def token_client(user) -> APIClient:
    """Signed in as a partner system is: a token, the user loaded afresh on every request."""
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def numbers(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["number"] for row in response.json()["results"]]


def transition_url(referral: Referral) -> str:
    return f"{REFERRALS}{referral.pk}/transition/"


@pytest.fixture
def mcdss(db):
    return make_agency("MCDSS")


@pytest.fixture
def moe(db):
    return make_agency("MOE")


@pytest.fixture
def cash(mcdss, samfya, lunga):
    return make_programme(code="SCT", agency=mcdss, districts=[samfya, lunga])


@pytest.fixture
def school(moe, samfya):
    return make_programme(code="SCH", agency=moe, districts=[samfya], sla_days=5)


@pytest.fixture
def household(samfya_officer, samfya_village):
    return make_household(officer=samfya_officer, village=samfya_village)


@pytest.fixture
def lunga_household(lunga_officer, lunga_village):
    return make_household(officer=lunga_officer, village=lunga_village, last_name="Lungu")


@pytest.fixture
def mcdss_system(mcdss, samfya, lunga):
    """MCDSS's own system: a service user of the agency, as `seed_demo` makes `officer_mcdss`."""
    return UserFactory(username="mcdss_system", role=Role.PROGRAMME_OFFICER, agency=mcdss, districts=[samfya, lunga])


# --- making a referral ---------------------------------------------------------------------------


def test_the_window_refers_a_household_and_reads_it_back_with_its_timeline(samfya_officer, household, cash):
    response = client_for(samfya_officer).post(
        REFERRALS, {"household": household.number.lower(), "programme": "SCT", "reason": "Elderly head"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    referral = Referral.objects.get()
    assert body["number"] == referral.number and body["status"] == "sent"
    assert body["household"]["number"] == household.number and body["household"]["head"] == "Mary Mwansa"
    assert (body["programme"]["code"], body["agency"]["code"], body["district"]["code"]) == ("SCT", "MCDSS", "SAM")
    assert body["due_date"] == (timezone.localdate() + datetime.timedelta(days=10)).isoformat()
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in body["events"]] == [
        ("", "draft", samfya_officer.username),
        ("draft", "sent", samfya_officer.username),
    ]
    assert body["deliveries"] == []
    assert client_for(samfya_officer).get(f"{REFERRALS}{referral.pk}/").json()["events"] == body["events"]


def test_a_draft_is_kept_when_asked_not_to_send(samfya_officer, household, cash):
    response = client_for(samfya_officer).post(
        REFERRALS, {"household": household.number, "programme": "SCT", "send": False}, format="json"
    )
    assert response.status_code == 201 and response.json()["status"] == "draft"
    assert response.json()["due_date"] is None


def test_what_the_service_refuses_comes_back_naming_the_field(samfya_officer, household, cash, school, lunga):
    client = client_for(samfya_officer)
    school.coverage.all().delete()
    response = client.post(REFERRALS, {"household": household.number, "programme": "SCH"}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and "does not run in" in error["fields"]["programme"][0]

    client.post(REFERRALS, {"household": household.number, "programme": "SCT"}, format="json")
    again = client.post(REFERRALS, {"household": household.number, "programme": "SCT"}, format="json")
    assert (
        again.status_code == 400 and "already has an open referral" in again.json()["error"]["fields"]["programme"][0]
    )

    unknown = client.post(
        REFERRALS, {"household": household.number, "programme": "NOPE", "colour": "red"}, format="json"
    )
    assert unknown.status_code == 400
    assert set(unknown.json()["error"]["fields"]) == {"programme", "colour"}


def test_a_household_outside_the_officers_districts_does_not_exist(lunga_officer, household, cash):
    response = client_for(lunga_officer).post(
        REFERRALS, {"household": household.number, "programme": "SCT"}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not Referral.objects.exists()


def test_the_committee_and_agencies_do_not_make_referrals(committee_samfya, mcdss_system, household, cash):
    for user in (committee_samfya, mcdss_system):
        response = client_for(user).post(REFERRALS, {"household": household.number, "programme": "SCT"}, format="json")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
    assert not Referral.objects.exists()


# --- moving a referral ------------------------------------------------------------------------------


def test_the_agency_system_receives_accepts_and_completes_its_referral(samfya_officer, mcdss_system, household, cash):
    referral = referral_create(acting_user=samfya_officer, household=household, programme=cash)
    client = token_client(mcdss_system)
    for status in ("received", "accepted", "completed"):
        response = client.post(transition_url(referral), {"status": status}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["status"] == status
    last = response.json()["events"][-1]
    assert (last["from_status"], last["to_status"], last["actor"], last["agency"]) == (
        "accepted",
        "completed",
        "mcdss_system",
        "MCDSS",
    )
    assert response.json()["closed_at"] is not None


def test_the_same_idempotency_key_twice_answers_the_same_and_records_once(
    samfya_officer, mcdss_system, household, cash
):
    referral = referral_create(acting_user=samfya_officer, household=household, programme=cash)
    client = token_client(mcdss_system)
    update = {"status": "rejected", "rejection_reason": "capacity_full", "reason": "Ward quota reached"}
    first = client.post(transition_url(referral), update, format="json", HTTP_IDEMPOTENCY_KEY="mcdss-7781")
    second = client.post(transition_url(referral), update, format="json", HTTP_IDEMPOTENCY_KEY="mcdss-7781")
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert ReferralEvent.objects.filter(referral=referral, to_status=S.REJECTED).count() == 1
    event = ReferralEvent.objects.get(referral=referral, to_status=S.REJECTED)
    assert (event.idempotency_key, event.rejection_reason) == ("mcdss-7781", "capacity_full")
    # A new key asking for the status it already has: it is rejected, once, and the answer says so (200).
    third = client.post(transition_url(referral), update, format="json", HTTP_IDEMPOTENCY_KEY="mcdss-7782")
    assert third.status_code == 200 and third.json()["status"] == "rejected"
    assert ReferralEvent.objects.filter(referral=referral, to_status=S.REJECTED).count() == 1
    # A new key asking for another move: the referral is closed, so it is refused.
    fourth = client.post(
        transition_url(referral), {"status": "accepted"}, format="json", HTTP_IDEMPOTENCY_KEY="mcdss-7783"
    )
    assert fourth.status_code == 400 and "closed" in fourth.json()["error"]["fields"]["status"][0]


def test_an_illegal_move_says_where_the_referral_can_go(samfya_officer, mcdss_system, household, cash):
    referral = referral_create(acting_user=samfya_officer, household=household, programme=cash)
    client = token_client(mcdss_system)
    response = client.post(transition_url(referral), {"status": "completed"}, format="json")
    assert response.status_code == 400
    assert "it can go to received" in response.json()["error"]["fields"]["status"][0]
    reject = client.post(transition_url(referral), {"status": "rejected"}, format="json")
    assert reject.status_code == 400 and "rejection_reason" in reject.json()["error"]["fields"]


def test_the_window_may_not_accept_for_the_agency(samfya_officer, household, cash):
    referral = referral_create(acting_user=samfya_officer, household=household, programme=cash)
    response = client_for(samfya_officer).post(transition_url(referral), {"status": "accepted"}, format="json")
    assert response.status_code == 403
    assert "Only Agency MCDSS" in response.json()["error"]["message"]
    cancel = client_for(samfya_officer).post(
        transition_url(referral), {"status": "cancelled", "reason": "Household moved away"}, format="json"
    )
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"


def test_an_agency_system_sees_and_moves_only_its_agencys_referrals(
    samfya_officer, lunga_officer, mcdss_system, household, lunga_household, cash, school
):
    ours = referral_create(acting_user=samfya_officer, household=household, programme=cash)
    ours_in_lunga = referral_create(acting_user=lunga_officer, household=lunga_household, programme=cash)
    theirs = referral_create(acting_user=samfya_officer, household=household, programme=school)
    client = token_client(mcdss_system)

    assert sorted(numbers(client.get(REFERRALS))) == sorted([ours.number, ours_in_lunga.number])
    assert client.get(f"{REFERRALS}{theirs.pk}/").status_code == 404
    refused = client.post(transition_url(theirs), {"status": "received"}, format="json")
    assert refused.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == S.SENT
    assert numbers(client.get(REFERRALS, {"agency": "MOE"})) == []


def test_a_programme_officer_without_an_agency_sees_nothing(samfya, household, cash, samfya_officer):
    referral_create(acting_user=samfya_officer, household=household, programme=cash)
    loose = UserFactory(username="officer_without_agency", role=Role.PROGRAMME_OFFICER, districts=[samfya])
    assert numbers(client_for(loose).get(REFERRALS)) == []


# --- the list ------------------------------------------------------------------------------------------


def test_the_window_sees_its_districts_referrals_and_the_ministry_all(
    samfya_officer, lunga_officer, ministry_user, household, lunga_household, cash
):
    samfya_referral = referral_create(acting_user=samfya_officer, household=household, programme=cash)
    lunga_referral = referral_create(acting_user=lunga_officer, household=lunga_household, programme=cash)
    assert numbers(client_for(samfya_officer).get(REFERRALS)) == [samfya_referral.number]
    assert client_for(samfya_officer).get(f"{REFERRALS}{lunga_referral.pk}/").status_code == 404
    assert sorted(numbers(client_for(ministry_user).get(REFERRALS))) == sorted(
        [samfya_referral.number, lunga_referral.number]
    )


def test_filters_narrow_the_list(samfya_officer, mcdss_system, samfya, household, cash, school):
    other_village = make_village(samfya, suffix="2")
    neighbour = make_household(officer=samfya_officer, village=other_village, last_name="Banda")
    cash_referral = referral_create(acting_user=samfya_officer, household=household, programme=cash)
    school_referral = referral_create(acting_user=samfya_officer, household=household, programme=school)
    neighbour_referral = referral_create(acting_user=samfya_officer, household=neighbour, programme=cash, send=False)
    referral_transition(referral=cash_referral, to_status=S.RECEIVED, acting_user=mcdss_system)
    # The school programme's five days have run out.
    Referral.objects.filter(pk=school_referral.pk).update(due_date=timezone.localdate() - datetime.timedelta(days=1))
    client = client_for(samfya_officer)
    today = timezone.localdate()

    def listed(**query) -> set[str]:
        return set(numbers(client.get(REFERRALS, query)))

    assert listed(status="received") == {cash_referral.number}
    assert listed(status=["draft", "received"]) == {cash_referral.number, neighbour_referral.number}
    assert listed(programme="sct") == {cash_referral.number, neighbour_referral.number}
    assert listed(agency="MOE") == {school_referral.number}
    assert listed(district="SAM") == {cash_referral.number, school_referral.number, neighbour_referral.number}
    assert listed(district="LUN") == set()
    assert listed(ward=other_village.parent.code) == {neighbour_referral.number}
    assert listed(household=neighbour.number) == {neighbour_referral.number}
    assert listed(overdue="true") == {school_referral.number}
    assert school_referral.number not in listed(overdue="false")
    assert listed(due_to=today.isoformat()) == {school_referral.number}
    assert listed(due_from=today.isoformat()) == {cash_referral.number}
    assert len(listed(created_from=today.isoformat(), created_to=today.isoformat())) == 3
    assert listed(created_to=(today - datetime.timedelta(days=1)).isoformat()) == set()
    assert listed(open="false") == set()

    row = next(r for r in client.get(REFERRALS).json()["results"] if r["number"] == school_referral.number)
    assert row["overdue"] is True and row["ward"]["code"] == household.village.parent.code


def _queries(client, url, params) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(captured)


def test_the_list_runs_a_fixed_number_of_queries_whatever_the_page_size(
    samfya_officer, samfya_village, mcdss_system, cash, django_assert_max_num_queries
):
    for index in range(12):
        household = make_household(officer=samfya_officer, village=samfya_village, last_name=f"Family{index}")
        referral_create(acting_user=samfya_officer, household=household, programme=cash)
    client = token_client(mcdss_system)
    assert _queries(client, REFERRALS, {"page_size": 2}) == _queries(client, REFERRALS, {"page_size": 20})
    with django_assert_max_num_queries(5):
        client.get(REFERRALS, {"page_size": 20, "status": "sent", "district": "SAM", "overdue": "false"})


def test_deliveries_to_a_push_agency_show_on_the_referral(samfya_officer, household, cash, mcdss):
    Agency.objects.filter(pk=mcdss.pk).update(
        referral_delivery=ReferralDelivery.WEBHOOK, webhook_url="http://127.0.0.1:9/hook", webhook_secret="s3cret"
    )
    cash.agency.refresh_from_db()
    referral = referral_create(acting_user=samfya_officer, household=household, programme=cash)
    body = client_for(samfya_officer).get(f"{REFERRALS}{referral.pk}/").json()
    assert [(d["event"], d["status"], d["attempts"]) for d in body["deliveries"]] == [("sent", "pending", 0)]
    assert body["deliveries"][0]["idempotency_key"].startswith(referral.number)


def test_anonymous_clients_are_refused_in_the_api_error_shape(household, cash):
    response = APIClient().get(REFERRALS)
    assert response.status_code in (401, 403)
    assert set(response.json()["error"]) == {"code", "message", "fields"}
