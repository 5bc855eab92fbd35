"""The registry over the REST API: households and individuals, as a front desk
or a partner system sees them."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from registry.api.filters import years_before
from registry.models import ChangeAction, ChangeEntry, Household, Member, MemberStatus
from registry.services import MemberInput, household_register, member_record_death
from registry.tests.factories import HouseholdFactory, MemberFactory, make_village

HOUSEHOLDS = "/api/v1/households/"
INDIVIDUALS = "/api/v1/individuals/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def person(first_name="Mary", last_name="Mwansa", sex="F", born="1980-05-17", **extra) -> dict:
    return {"first_name": first_name, "last_name": last_name, "sex": sex, "date_of_birth": born, **extra}


def register(officer, village, *people: dict, **household) -> Household:
    """A household registered through the service, as the front desk would."""
    members = [
        MemberInput(values={**p, "date_of_birth": datetime.date.fromisoformat(p["date_of_birth"])}) for p in people
    ]
    return household_register(
        acting_user=officer, village=village, members=members, duplicates_confirmed=True, **household
    )


def numbers(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["number"] for row in response.json()["results"]]


def born_years_ago(years: int, *, days_later: int = 0) -> str:
    return (years_before(timezone.localdate(), years) + datetime.timedelta(days=days_later)).isoformat()


@pytest.fixture
def lunga_household(lunga_officer, lunga_village):
    return register(lunga_officer, lunga_village, person("Bupe", "Lungu", national_id="222222/22/2"))


# --- reading and filtering ---------------------------------------------------------------


def test_household_reads_with_members_head_places_and_attributes(samfya_officer, samfya_village):
    household = register(
        samfya_officer,
        samfya_village,
        person(relationship="head", national_id="123456/10/1"),
        person("Joseph", sex="M", born="2012-03-02", relationship="child"),
        phone="0977 123 456",
    )

    body = client_for(samfya_officer).get(f"{HOUSEHOLDS}{household.pk}/").json()

    assert body["number"] == "SAM-000001"
    assert body["district"] == {"code": "SAM", "name": "Samfya"}
    assert body["ward"]["code"] == "SAM-W1"
    assert body["village"] == {"code": samfya_village.code, "name": samfya_village.name}
    assert body["head"]["full_name"] == "Mary Mwansa"
    assert [m["first_name"] for m in body["members"]] == ["Mary", "Joseph"]
    assert body["members"][0]["national_id"] == "123456/10/1"
    assert body["attributes"] == {}


def test_households_filter_by_district_ward_village_status_and_registration_date(
    ministry_user, samfya_officer, lunga_officer, samfya, samfya_village, lunga_village
):
    other_ward_village = make_village(samfya, suffix="2")
    first = register(samfya_officer, samfya_village, person(), registration_date=datetime.date(2024, 1, 10))
    second = register(samfya_officer, other_ward_village, person("Grace"), registration_date=datetime.date(2024, 6, 1))
    in_lunga = register(lunga_officer, lunga_village, person("Bupe"))
    Household.objects.filter(pk=second.pk).update(status="moved")
    client = client_for(ministry_user)

    assert numbers(client.get(HOUSEHOLDS, {"district": "SAM"})) == [first.number, second.number]
    assert numbers(client.get(HOUSEHOLDS, {"district": "LUN"})) == [in_lunga.number]
    assert numbers(client.get(HOUSEHOLDS, {"ward": "SAM-W2"})) == [second.number]
    assert numbers(client.get(HOUSEHOLDS, {"village": samfya_village.code})) == [first.number]
    assert numbers(client.get(HOUSEHOLDS, {"status": "moved"})) == [second.number]
    assert numbers(client.get(HOUSEHOLDS, {"registered_from": "2024-02-01", "registered_to": "2024-12-31"})) == [
        second.number
    ]


def test_one_member_must_match_sex_age_and_disability_together(samfya_officer, samfya_village):
    # An old woman without difficulty living with a disabled young man is not
    # "a household with a disabled woman over 65".
    mixed = register(
        samfya_officer,
        samfya_village,
        person("Agnes", born=born_years_ago(70)),
        person("Peter", sex="M", born=born_years_ago(30), disability_walking=3),
    )
    disabled_grandmother = register(
        samfya_officer, samfya_village, person("Esther", born=born_years_ago(72), disability_seeing=4)
    )
    neither = register(samfya_officer, samfya_village, person("Ruth", born=born_years_ago(40), disability_hearing=2))
    client = client_for(samfya_officer)

    assert numbers(client.get(HOUSEHOLDS, {"sex": "F", "age_min": 65, "disability": "true"})) == [
        disabled_grandmother.number
    ]
    assert numbers(client.get(HOUSEHOLDS, {"disability": "true"})) == [mixed.number, disabled_grandmother.number]
    assert numbers(client.get(HOUSEHOLDS, {"disability": "false"})) == [mixed.number, neither.number]
    assert numbers(client.get(HOUSEHOLDS, {"sex": "M"})) == [mixed.number]
    assert numbers(client.get(HOUSEHOLDS, {"age_min": 35, "age_max": 45})) == [neither.number]


def test_someone_who_died_does_not_make_the_household_match(samfya_officer, samfya_village):
    household = register(
        samfya_officer, samfya_village, person("Agnes"), person("Peter", sex="M", born=born_years_ago(80))
    )
    member_record_death(
        acting_user=samfya_officer, member=household.members.get(first_name="Peter"), date_of_death=timezone.localdate()
    )

    assert numbers(client_for(samfya_officer).get(HOUSEHOLDS, {"age_min": 75})) == []


def test_age_is_counted_from_the_date_of_birth_today(samfya_officer, samfya_village):
    turns_65_today = register(samfya_officer, samfya_village, person("Agnes", born=born_years_ago(65)))
    turns_65_tomorrow = register(
        samfya_officer, samfya_village, person("Esther", born=born_years_ago(65, days_later=1))
    )
    register(samfya_officer, samfya_village, person("Nobody", born="1990-01-01"))
    Member.objects.filter(first_name="Nobody").update(date_of_birth=None)
    client = client_for(samfya_officer)

    assert numbers(client.get(HOUSEHOLDS, {"age_min": 65})) == [turns_65_today.number]
    assert numbers(client.get(HOUSEHOLDS, {"age_min": 64, "age_max": 64})) == [turns_65_tomorrow.number]
    ages = {row["first_name"]: row["age"] for row in client.get(INDIVIDUALS).json()["results"]}
    assert ages == {"Agnes": 65, "Esther": 64, "Nobody": None}


def test_an_age_no_one_reaches_is_a_bad_filter_not_a_crash(samfya_officer):
    # Found by the API fuzz test: age_min=2100 asked for a date of birth before year 1 (a 500).
    client = client_for(samfya_officer)

    for url in (HOUSEHOLDS, INDIVIDUALS):
        response = client.get(url, {"age_min": 2100})
        assert response.status_code == 400, response.content
        assert list(response.json()["error"]["fields"]) == ["age_min"]
        assert client.get(url, {"age_max": "2.4e16"}).json()["error"]["fields"].keys() == {"age_max"}


def test_household_search_finds_a_name_spelt_another_way(samfya_officer, samfya_village):
    mwansa = register(samfya_officer, samfya_village, person("Mary", "Mwansa"))
    register(samfya_officer, samfya_village, person("Joseph", "Tembo", sex="M"))

    assert numbers(client_for(samfya_officer).get(HOUSEHOLDS, {"search": "mary mwanza"})) == [mwansa.number]


def test_household_search_by_number_and_national_id(samfya_officer, samfya_village):
    register(samfya_officer, samfya_village, person("Joseph", "Tembo", sex="M"))
    wanted = register(samfya_officer, samfya_village, person(national_id="123456/10/1"))
    client = client_for(samfya_officer)

    assert numbers(client.get(HOUSEHOLDS, {"search": wanted.number.lower()})) == [wanted.number]
    assert numbers(client.get(HOUSEHOLDS, {"search": "123456/10/1"})) == [wanted.number]


def test_individuals_filter_by_person_household_and_national_id(samfya_officer, samfya_village):
    household = register(
        samfya_officer,
        samfya_village,
        person("Agnes", born=born_years_ago(70), national_id="123456/10/1"),
        person("Peter", sex="M", born=born_years_ago(8), disability_cognition=3),
    )
    register(samfya_officer, samfya_village, person("Ruth", born=born_years_ago(40)))
    client = client_for(samfya_officer)

    def names(params):
        response = client.get(INDIVIDUALS, params)
        assert response.status_code == 200, response.content
        return [row["first_name"] for row in response.json()["results"]]

    assert names({"household": household.number}) == ["Agnes", "Peter"]
    assert names({"national_id": " 123456/10/1 "}) == ["Agnes"]
    assert names({"sex": "M"}) == ["Peter"]
    assert names({"age_max": 17}) == ["Peter"]
    assert names({"age_min": 18, "sex": "F"}) == ["Agnes", "Ruth"]
    assert names({"disability": "true"}) == ["Peter"]
    assert names({"district": "SAM", "village": samfya_village.code, "status": "present"}) == ["Agnes", "Peter", "Ruth"]
    assert names({"search": "agnis"}) == ["Agnes"]


def test_an_individual_reads_with_its_household_and_places(samfya_officer, samfya_village):
    household = register(samfya_officer, samfya_village, person(disability_self_care=4))
    member = household.members.get()

    body = client_for(samfya_officer).get(f"{INDIVIDUALS}{member.pk}/").json()

    assert body["household"] == household.number
    assert body["household_id"] == household.pk
    assert body["district"]["code"] == "SAM"
    assert body["ward"]["code"] == "SAM-W1"
    assert body["has_disability"] is True
    assert body["relationship"] == "head"


def test_bad_filter_values_are_named(samfya_officer):
    response = client_for(samfya_officer).get(HOUSEHOLDS, {"age_min": "old", "sex": "X"})

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"age_min", "sex"}


# --- registering -----------------------------------------------------------------------------


def test_register_a_household_with_its_members(samfya_officer, samfya_village):
    response = client_for(samfya_officer).post(
        HOUSEHOLDS,
        {
            "village": samfya_village.code,
            "phone": "0977123456",
            "members": [
                person(relationship="head", national_id="123456/10/1"),
                person("Joseph", sex="M", born="2012-03-02", relationship="child"),
            ],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["number"] == "SAM-000001"
    assert body["head"]["full_name"] == "Mary Mwansa"
    assert len(body["members"]) == 2
    household = Household.objects.get(number="SAM-000001")
    assert (
        ChangeEntry.objects.filter(household=household, action=ChangeAction.CREATE, actor=samfya_officer).count() == 3
    )


def test_validation_errors_name_the_member_and_its_field(samfya_officer, samfya_village):
    client = client_for(samfya_officer)

    # Found by the service: a national ID of the wrong shape.
    response = client.post(
        HOUSEHOLDS, {"village": samfya_village.code, "members": [person(national_id="12/34")]}, format="json"
    )
    assert response.status_code == 400
    assert "members.0.national_id" in response.json()["error"]["fields"]

    # Found while reading the request: the second member has no sex, a date that is not one.
    response = client.post(
        HOUSEHOLDS,
        {
            "village": samfya_village.code,
            "members": [person(), {"first_name": "Joseph", "last_name": "Mwansa", "date_of_birth": "soon"}],
        },
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"members.1.sex", "members.1.date_of_birth"}
    assert not Household.objects.exists()


def test_a_household_needs_a_member_and_a_village(samfya_officer):
    response = client_for(samfya_officer).post(HOUSEHOLDS, {"village": "NOWHERE", "members": []}, format="json")

    assert response.status_code == 400
    assert "village" in response.json()["error"]["fields"]


def test_a_likely_duplicate_stops_registration_until_confirmed(samfya_officer, samfya_village):
    existing = register(samfya_officer, samfya_village, person("Mary", "Mwansa"))
    client = client_for(samfya_officer)
    request = {"village": samfya_village.code, "members": [person("Mary", "Mwanza")]}

    response = client.post(HOUSEHOLDS, request, format="json")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "duplicate_suspected"
    candidate = error["candidates"][0]
    assert candidate["household_number"] == existing.number
    assert candidate["score"] >= 0.75
    assert any("same date of birth" in reason for reason in candidate["reasons"])
    assert Household.objects.count() == 1

    response = client.post(HOUSEHOLDS, {**request, "confirm_duplicates": True}, format="json")

    assert response.status_code == 201
    assert Household.objects.count() == 2


def test_an_officer_cannot_register_in_another_district(samfya_officer, lunga_village):
    response = client_for(samfya_officer).post(
        HOUSEHOLDS, {"village": lunga_village.code, "members": [person()]}, format="json"
    )

    assert response.status_code == 400
    assert "village" in response.json()["error"]["fields"]
    assert not Household.objects.exists()


# --- editing ---------------------------------------------------------------------------------


def test_patching_a_household_records_its_history(samfya_officer, samfya_village):
    household = register(samfya_officer, samfya_village, person(), phone="0977000001")
    client = client_for(samfya_officer)

    response = client.patch(
        f"{HOUSEHOLDS}{household.pk}/",
        {"phone": "0966000002", "address": "Near the school", "note": "new phone"},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["phone"] == "0966000002"
    history = client.get(f"{HOUSEHOLDS}{household.pk}/history/").json()["results"]
    latest = history[0]
    assert latest["action"] == "update"
    assert latest["changes"]["phone"] == ["0977000001", "0966000002"]
    assert latest["actor"] == samfya_officer.username
    assert latest["note"] == "new phone"
    assert {entry["action"] for entry in history[1:]} == {"create"}


def test_a_household_edit_cannot_move_it_or_touch_its_number(samfya_officer, samfya, samfya_village):
    household = register(samfya_officer, samfya_village, person())
    elsewhere = make_village(samfya, suffix="2")

    response = client_for(samfya_officer).patch(
        f"{HOUSEHOLDS}{household.pk}/", {"village": elsewhere.code, "number": "SAM-999999"}, format="json"
    )

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"village", "number"}
    household.refresh_from_db()
    assert (household.village_id, household.number) == (samfya_village.pk, "SAM-000001")


def test_a_service_rule_on_edit_names_the_field(samfya_officer, samfya_village):
    household = register(samfya_officer, samfya_village, person())

    response = client_for(samfya_officer).patch(
        f"{HOUSEHOLDS}{household.pk}/", {"gps_latitude": "-11.2"}, format="json"
    )

    assert response.status_code == 400
    assert "gps_latitude" in response.json()["error"]["fields"]


def test_add_a_birth_to_a_household(samfya_officer, samfya_village):
    household = register(samfya_officer, samfya_village, person(relationship="head"))
    client = client_for(samfya_officer)

    response = client.post(
        INDIVIDUALS,
        {
            "household": household.number,
            "event": "birth",
            **person("Baby", born=timezone.localdate().isoformat(), relationship="child"),
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["household"] == household.number
    assert household.history.filter(action=ChangeAction.BIRTH, member__first_name="Baby").exists()


def test_a_birth_of_a_ten_year_old_is_refused_on_the_date_of_birth(samfya_officer, samfya_village):
    household = register(samfya_officer, samfya_village, person(relationship="head"))

    response = client_for(samfya_officer).post(
        INDIVIDUALS,
        {"household": household.number, "event": "birth", **person("Joseph", born=born_years_ago(10))},
        format="json",
    )

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["date_of_birth"]


def test_patching_a_member_records_its_history(samfya_officer, samfya_village):
    household = register(samfya_officer, samfya_village, person(relationship="head"))
    member = household.members.get()
    client = client_for(samfya_officer)

    response = client.patch(f"{INDIVIDUALS}{member.pk}/", {"disability_walking": 3, "note": "assessed"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["has_disability"] is True
    entry = household.history.get(action=ChangeAction.UPDATE, entity="member")
    assert entry.changes == {"disability_walking": [None, 3]}
    assert entry.note == "assessed"


def test_a_member_edit_cannot_record_a_death(samfya_officer, samfya_village):
    member = register(samfya_officer, samfya_village, person()).members.get()

    response = client_for(samfya_officer).patch(f"{INDIVIDUALS}{member.pk}/", {"status": "deceased"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["status"]
    assert Member.objects.get(pk=member.pk).status == MemberStatus.PRESENT


# --- scope and roles -------------------------------------------------------------------------


def test_officer_cannot_see_other_district_household(samfya_officer, lunga_household):
    client = client_for(samfya_officer)
    url = f"{HOUSEHOLDS}{lunga_household.pk}/"

    assert client.get(url).status_code == 404
    assert client.patch(url, {"phone": "0977000000"}, format="json").status_code == 404
    assert client.get(f"{url}history/").status_code == 404
    guessed = lunga_household.pk + 1000
    assert client.get(f"{HOUSEHOLDS}{guessed}/").status_code == 404
    assert client.get(f"{HOUSEHOLDS}{guessed}/history/").status_code == 404
    lunga_household.refresh_from_db()
    assert lunga_household.phone == ""


def test_officer_cannot_see_other_district_member(samfya_officer, lunga_household):
    client = client_for(samfya_officer)
    member = lunga_household.members.get()
    url = f"{INDIVIDUALS}{member.pk}/"

    assert client.get(url).status_code == 404
    assert client.patch(url, {"first_name": "Changed"}, format="json").status_code == 404
    response = client.post(INDIVIDUALS, {"household": lunga_household.number, **person("Intruder")}, format="json")
    assert response.status_code == 400
    assert "household" in response.json()["error"]["fields"]
    assert Member.objects.get(pk=member.pk).first_name == "Bupe"
    assert lunga_household.members.count() == 1


def test_other_district_household_never_appears_in_lists_or_searches(samfya_officer, samfya_village, lunga_household):
    own = register(samfya_officer, samfya_village, person("Bupe", "Lungu"))
    client = client_for(samfya_officer)

    assert numbers(client.get(HOUSEHOLDS)) == [own.number]
    assert numbers(client.get(HOUSEHOLDS, {"district": "LUN"})) == []
    assert numbers(client.get(HOUSEHOLDS, {"search": "Bupe Lungu"})) == [own.number]
    assert numbers(client.get(HOUSEHOLDS, {"search": lunga_household.number})) == []
    assert numbers(client.get(HOUSEHOLDS, {"search": "222222/22/2"})) == []
    people = client.get(INDIVIDUALS, {"search": "Bupe Lungu"}).json()["results"]
    assert [p["household"] for p in people] == [own.number]
    assert client.get(INDIVIDUALS, {"national_id": "222222/22/2"}).json()["results"] == []


def test_ministry_sees_every_district(ministry_user, samfya_officer, samfya_village, lunga_household):
    own = register(samfya_officer, samfya_village, person())

    assert numbers(client_for(ministry_user).get(HOUSEHOLDS)) == [lunga_household.number, own.number]


def test_committee_reads_but_cannot_write(committee_samfya, samfya_officer, samfya_village):
    household = register(samfya_officer, samfya_village, person(relationship="head"))
    member = household.members.get()
    client = client_for(committee_samfya)

    assert client.get(f"{HOUSEHOLDS}{household.pk}/").status_code == 200
    assert client.get(f"{INDIVIDUALS}{member.pk}/").status_code == 200
    writes = [
        client.post(HOUSEHOLDS, {"village": samfya_village.code, "members": [person("Grace")]}, format="json"),
        client.patch(f"{HOUSEHOLDS}{household.pk}/", {"phone": "0977000000"}, format="json"),
        client.post(INDIVIDUALS, {"household": household.number, **person("Grace")}, format="json"),
        client.patch(f"{INDIVIDUALS}{member.pk}/", {"first_name": "Grace"}, format="json"),
    ]
    assert [r.status_code for r in writes] == [403, 403, 403, 403]
    assert writes[0].json()["error"]["code"] == "permission_denied"
    assert Household.objects.count() == 1


def test_session_login_works_for_the_browser(samfya_officer, samfya_village):
    household = register(samfya_officer, samfya_village, person())
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(samfya_officer)

    assert numbers(client.get(HOUSEHOLDS)) == [household.number]
    # A session write without the CSRF token is refused, in the API's shape.
    response = client.patch(f"{HOUSEHOLDS}{household.pk}/", {"phone": "0977000000"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]


# --- queries ---------------------------------------------------------------------------------


def _queries(client, url, params) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(captured)


def test_lists_run_a_fixed_number_of_queries_whatever_the_page_size(
    samfya_officer, samfya_village, django_assert_max_num_queries
):
    for _ in range(12):
        household = HouseholdFactory(village=samfya_village)
        head, _other = MemberFactory.create_batch(2, household=household)
        Household.objects.filter(pk=household.pk).update(head=head)
    # Signed in by token as a partner system is: every request loads the user afresh.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=samfya_officer).key}")

    for url in (HOUSEHOLDS, INDIVIDUALS):
        assert _queries(client, url, {"page_size": 2}) == _queries(client, url, {"page_size": 20})
        with django_assert_max_num_queries(5):
            client.get(url, {"page_size": 20, "sex": "F", "age_min": 18, "district": "SAM"})
