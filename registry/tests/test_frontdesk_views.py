"""The front desk's pages: search, registration, the household page, edits and
life events, and who may see or change what."""

import datetime

import pytest
from django.urls import reverse

from registry.models import (
    AttributeDefinition,
    AttributeEntity,
    AttributeType,
    ChangeAction,
    ChangeEntry,
    Household,
    HouseholdStatus,
    Member,
    MemberStatus,
)
from registry.services import MemberInput, household_register, household_update, member_add
from registry.tests.factories import make_village

MARY = {
    "first_name": "Mary",
    "last_name": "Mwansa",
    "sex": "F",
    "date_of_birth": datetime.date(1980, 5, 17),
    "relationship": "head",
    "national_id": "123456/10/1",
}
JOHN = {
    "first_name": "John",
    "last_name": "Mwansa",
    "sex": "M",
    "date_of_birth": datetime.date(2010, 2, 3),
    "relationship": "child",
}


def register(officer, village, *people, phone="0977 123 456"):
    return household_register(
        acting_user=officer, village=village, phone=phone, members=[MemberInput(values=dict(p)) for p in people]
    )


def registration_post(village, members, *, extra_forms=2, **household):
    """What the registration form posts: the household fields and a member formset."""
    data = {
        "village": village.pk if village else "",
        "address": "",
        "phone": "",
        "gps_latitude": "",
        "gps_longitude": "",
        **household,
    }
    total = len(members) + extra_forms
    data.update(
        {
            "members-TOTAL_FORMS": total,
            "members-INITIAL_FORMS": 1,
            "members-MIN_NUM_FORMS": 1,
            "members-MAX_NUM_FORMS": 1000,
        }
    )
    for index in range(total):
        person = members[index] if index < len(members) else {}
        defaults = {"relationship": "head"} if index == 0 else {}
        for name in (
            "first_name",
            "middle_name",
            "last_name",
            "other_names",
            "sex",
            "date_of_birth",
            "birth_year",
            "relationship",
            "national_id",
            "phone",
            "school_attendance",
            "work_status",
        ):
            value = person.get(name, defaults.get(name, ""))
            data[f"members-{index}-{name}"] = value.isoformat() if isinstance(value, datetime.date) else value
        data[f"members-{index}-chronic_illness"] = "unknown"
    return data


@pytest.fixture
def officer_client(client, samfya_officer):
    client.force_login(samfya_officer)
    return client


@pytest.fixture
def mwansa_household(samfya_officer, samfya_village):
    return register(samfya_officer, samfya_village, MARY, JOHN)


# --- search ------------------------------------------------------------------------------


def test_the_search_page_is_the_landing_page_and_needs_a_login(client):
    response = client.get(reverse("frontdesk:search"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_an_empty_search_offers_to_register_a_household(officer_client):
    response = officer_client.get(reverse("frontdesk:search"))
    assert response.status_code == 200
    assert b"autofocus" in response.content
    assert reverse("frontdesk:household-new").encode() in response.content
    assert b"/imports/" in response.content


@pytest.mark.parametrize(
    "query, matched_on",
    [
        ("SAM-000001", "household number"),
        ("123456/10/1", "NRC number"),
        ("+260 977 123456", "household phone"),
        ("marry mwanza", "name"),
    ],
)
def test_search_finds_a_household_by_number_id_phone_or_loosely_typed_name(
    officer_client, mwansa_household, query, matched_on
):
    response = officer_client.get(reverse("frontdesk:search"), {"q": query})
    assert response.status_code == 200
    page = response.content.decode()
    assert mwansa_household.number in page
    assert "Mary Mwansa" in page
    assert matched_on in page
    assert "Village 1 of Samfya" in page and "Ward 1 of Samfya ward" in page


def test_a_search_that_finds_nobody_says_so_and_offers_registration(officer_client, mwansa_household):
    response = officer_client.get(reverse("frontdesk:search"), {"q": "Zebedayo Kunda"})
    page = response.content.decode()
    assert "No household found" in page
    assert reverse("frontdesk:household-new") in page


def test_search_does_not_show_another_districts_household(officer_client, lunga_officer, lunga_village):
    register(lunga_officer, lunga_village, MARY)
    response = officer_client.get(reverse("frontdesk:search"), {"q": "Mary Mwansa"})
    assert "LUN-000001" not in response.content.decode()


# --- registration ---------------------------------------------------------------------


def test_an_officer_registers_a_household_with_two_members_and_lands_on_its_page(officer_client, samfya_village):
    data = registration_post(samfya_village, [MARY, JOHN], phone="0977 000 111", address="Near the school")
    response = officer_client.post(reverse("frontdesk:household-new"), data)
    household = Household.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("frontdesk:household", args=[household.pk])
    assert household.head.first_name == "Mary"
    assert sorted(household.members.values_list("first_name", flat=True)) == ["John", "Mary"]
    page = officer_client.get(response["Location"]).content.decode()
    assert "John Mwansa" in page and "Household registered" in page


def test_the_registration_form_has_extra_member_boxes_for_browsers_without_javascript(officer_client, samfya_village):
    response = officer_client.get(reverse("frontdesk:household-new"))
    page = response.content.decode()
    assert 'name="members-2-first_name"' in page
    assert "Ward 1 of Samfya ward" in page  # villages grouped by ward


def test_a_bad_national_id_is_shown_beside_that_member_and_what_was_typed_is_kept(officer_client, samfya_village):
    john = {**JOHN, "national_id": "12/34"}
    data = registration_post(samfya_village, [MARY, john], address="Plot 7, behind the clinic")
    response = officer_client.post(reverse("frontdesk:household-new"), data)
    assert response.status_code == 400
    assert not Household.objects.exists()
    member_form = response.context["formset"].forms[1]
    assert "NRC number must look like 123456/10/1." in member_form.errors["national_id"]
    page = response.content.decode()
    assert 'value="Plot 7, behind the clinic"' in page
    assert 'value="John"' in page and 'value="12/34"' in page


def test_a_missing_required_household_attribute_is_shown_on_its_field(officer_client, samfya_village):
    AttributeDefinition.objects.create(
        entity=AttributeEntity.HOUSEHOLD,
        key="roof",
        label="Roof material",
        type=AttributeType.CHOICE,
        allowed_values=["iron", "thatch"],
        required=True,
    )
    response = officer_client.post(reverse("frontdesk:household-new"), registration_post(samfya_village, [MARY]))
    assert response.status_code == 400
    assert response.context["form"].errors["attr_roof"]
    data = registration_post(samfya_village, [MARY], attr_roof="thatch")
    response = officer_client.post(reverse("frontdesk:household-new"), data)
    assert response.status_code == 302
    assert Household.objects.get().attributes == {"roof": "thatch"}


def test_a_service_error_on_a_member_attribute_lands_on_that_member(officer_client, samfya_village):
    AttributeDefinition.objects.create(
        entity=AttributeEntity.MEMBER, key="grade", label="School grade", type=AttributeType.INTEGER, required=True
    )
    data = registration_post(samfya_village, [MARY, JOHN])
    data["members-0-attr_grade"] = "7"
    response = officer_client.post(reverse("frontdesk:household-new"), data)
    assert response.status_code == 400
    assert "attr_grade" in response.context["formset"].forms[1].errors
    assert "attr_grade" not in response.context["formset"].forms[0].errors


def test_a_year_of_birth_alone_is_recorded_as_an_estimated_date(officer_client, samfya_village):
    elder = {**MARY, "date_of_birth": "", "birth_year": "1950", "national_id": ""}
    officer_client.post(reverse("frontdesk:household-new"), registration_post(samfya_village, [elder]))
    member = Member.objects.get()
    assert member.date_of_birth == datetime.date(1950, 7, 1)
    assert member.date_of_birth_estimated


def test_a_likely_duplicate_is_shown_and_registration_goes_ahead_once_the_officer_confirms(
    officer_client, mwansa_household, samfya_village
):
    mwanza = {**MARY, "last_name": "Mwanza", "national_id": ""}
    data = registration_post(samfya_village, [mwanza])
    response = officer_client.post(reverse("frontdesk:household-new"), data)
    assert response.status_code == 409
    page = response.content.decode()
    assert "may already be registered" in page
    assert reverse("frontdesk:household", args=[mwansa_household.pk]) in page
    assert "None of these is the same person" in page
    assert Household.objects.count() == 1

    response = officer_client.post(reverse("frontdesk:household-new"), {**data, "duplicates_confirmed": "on"})
    assert response.status_code == 302
    assert Household.objects.count() == 2


def test_the_duplicate_check_while_typing_returns_candidates_with_a_link(
    officer_client, mwansa_household, samfya_village
):
    response = officer_client.get(
        reverse("frontdesk:duplicate-check"),
        {
            "first_name": "Mary",
            "last_name": "Mwanza",
            "date_of_birth": "1980-05-17",
            "village": samfya_village.pk,
        },
    )
    candidates = response.json()["candidates"]
    assert candidates[0]["household_number"] == mwansa_household.number
    assert candidates[0]["url"] == reverse("frontdesk:household", args=[mwansa_household.pk])
    assert any("same date of birth" in reason for reason in candidates[0]["reasons"])


def test_the_duplicate_check_does_not_reveal_another_districts_people(
    client, lunga_officer, lunga_village, samfya_officer
):
    register(lunga_officer, lunga_village, MARY)
    client.force_login(samfya_officer)
    response = client.get(
        reverse("frontdesk:duplicate-check"),
        {"first_name": "Mary", "last_name": "Mwansa", "date_of_birth": "1980-05-17"},
    )
    assert response.json() == {"candidates": []}


# --- the household page --------------------------------------------------------------


def test_the_household_page_shows_members_with_age_disability_and_history(officer_client, mwansa_household):
    mary = mwansa_household.members.get(first_name="Mary")
    Member.objects.filter(pk=mary.pk).update(disability_walking=3, date_of_birth_estimated=True)
    response = officer_client.get(reverse("frontdesk:household", args=[mwansa_household.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert mwansa_household.number in page and "Village 1 of Samfya" in page and "Samfya" in page
    assert f"{mary.age} (est.)" in page
    assert "Yes: walking" in page
    assert "Household registered" in page and "Member added: John Mwansa" in page
    assert reverse("frontdesk:household-edit", args=[mwansa_household.pk]) in page


def test_the_household_page_makes_a_bounded_number_of_queries(
    officer_client, samfya_officer, mwansa_household, django_assert_max_num_queries
):
    for index in range(8):
        member_add(
            acting_user=samfya_officer,
            household=mwansa_household,
            values={**JOHN, "first_name": f"Child{index}", "last_name": f"Banda{index}"},
        )
    # 13: the enrolments-and-payments section adds one (its payments, one more, only with enrolments).
    # 16: the grievances section adds three (its grievances, and the user's permissions, read once, that
    # decide whether they see sensitive ones).
    with django_assert_max_num_queries(16):
        response = officer_client.get(reverse("frontdesk:household", args=[mwansa_household.pk]))
    assert response.status_code == 200
    assert len(response.context["members"]) == 10


def test_history_is_paginated_when_long(officer_client, samfya_officer, mwansa_household):
    for index in range(25):
        household_update(acting_user=samfya_officer, household=mwansa_household, values={"address": f"Plot {index}"})
    page = officer_client.get(reverse("frontdesk:household", args=[mwansa_household.pk])).content.decode()
    assert "Page 1 of 2" in page
    assert "Plot 24" in page  # newest first
    older = officer_client.get(reverse("frontdesk:household", args=[mwansa_household.pk]), {"page": 2})
    assert "Household registered" in older.content.decode()


# --- edits record history ---------------------------------------------------------------


def test_editing_the_household_records_the_change_in_words(officer_client, mwansa_household):
    url = reverse("frontdesk:household-edit", args=[mwansa_household.pk])
    assert officer_client.get(url).status_code == 200
    response = officer_client.post(
        url,
        {
            "address": "Behind the market",
            "phone": "0966 555 444",
            "gps_latitude": "",
            "gps_longitude": "",
            "registration_date": mwansa_household.registration_date.isoformat(),
            "note": "Phone lost",
        },
    )
    assert response.status_code == 302
    entry = ChangeEntry.objects.filter(household=mwansa_household, action=ChangeAction.UPDATE).get()
    assert entry.changes["phone"] == ["0977 123 456", "0966 555 444"]
    page = officer_client.get(response["Location"]).content.decode()
    assert "Household edited" in page and "0966 555 444" in page and "Phone lost" in page


def test_an_edit_that_breaks_a_rule_keeps_the_typed_values(officer_client, mwansa_household):
    url = reverse("frontdesk:household-edit", args=[mwansa_household.pk])
    response = officer_client.post(
        url,
        {
            "address": "Somewhere",
            "phone": "",
            "gps_latitude": "-11.2",
            "gps_longitude": "",
            "registration_date": mwansa_household.registration_date.isoformat(),
        },
    )
    assert response.status_code == 400
    assert response.context["form"].errors["gps_latitude"] == ["Give both latitude and longitude, or neither."]
    assert 'value="Somewhere"' in response.content.decode()


def test_editing_a_member_records_the_change(officer_client, mwansa_household):
    john = mwansa_household.members.get(first_name="John")
    url = reverse("frontdesk:member-edit", args=[mwansa_household.pk, john.pk])
    response = officer_client.get(url)
    assert 'value="2010-02-03"' in response.content.decode()  # the date picker reads ISO dates
    form = response.context["form"]
    data = {name: ("" if value is None else value) for name, value in form.initial.items()}
    data.update(
        {"first_name": "Johnny", "date_of_birth": "2010-02-03", "chronic_illness": "unknown", "disability_seeing": "3"}
    )
    response = officer_client.post(url, data)
    assert response.status_code == 302, response.context["form"].errors
    john.refresh_from_db()
    assert john.first_name == "Johnny" and john.disability_seeing == 3
    page = officer_client.get(response["Location"]).content.decode()
    assert "Member edited: Johnny Mwansa" in page
    assert "First name" in page and "Johnny" in page
    assert "A lot of difficulty" in page


# --- life events ----------------------------------------------------------------------------


def test_recording_a_death_marks_the_member_and_the_history(officer_client, mwansa_household):
    john = mwansa_household.members.get(first_name="John")
    url = reverse("frontdesk:member-death", args=[mwansa_household.pk, john.pk])
    response = officer_client.post(url, {"on": "2024-03-01", "note": "Malaria"})
    assert response.status_code == 302
    john.refresh_from_db()
    assert john.status == MemberStatus.DECEASED and john.status_date == datetime.date(2024, 3, 1)
    page = officer_client.get(response["Location"]).content.decode()
    assert "Death: John Mwansa" in page and "Malaria" in page


def test_a_death_in_the_future_is_refused_on_the_date_field(officer_client, mwansa_household):
    john = mwansa_household.members.get(first_name="John")
    tomorrow = datetime.date.today() + datetime.timedelta(days=2)
    response = officer_client.post(
        reverse("frontdesk:member-death", args=[mwansa_household.pk, john.pk]), {"on": tomorrow.isoformat()}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["on"]


def test_a_member_moves_out(officer_client, mwansa_household):
    john = mwansa_household.members.get(first_name="John")
    response = officer_client.post(
        reverse("frontdesk:member-move-out", args=[mwansa_household.pk, john.pk]), {"on": "2025-01-10"}
    )
    assert response.status_code == 302
    john.refresh_from_db()
    assert john.status == MemberStatus.MOVED_OUT


def test_a_birth_is_added_to_the_household(officer_client, mwansa_household):
    baby_born = datetime.date.today() - datetime.timedelta(days=20)
    url = reverse("frontdesk:member-add", args=[mwansa_household.pk]) + "?event=birth"
    response = officer_client.post(
        url,
        {
            "first_name": "Grace",
            "last_name": "Mwansa",
            "sex": "F",
            "date_of_birth": baby_born.isoformat(),
            "relationship": "child",
            "chronic_illness": "unknown",
        },
    )
    assert response.status_code == 302
    assert ChangeEntry.objects.filter(household=mwansa_household, action=ChangeAction.BIRTH).exists()


def test_a_registered_person_moves_in_from_another_household(
    officer_client, samfya_officer, mwansa_household, samfya_village
):
    other = register(
        samfya_officer,
        samfya_village,
        {"first_name": "Peter", "last_name": "Banda", "sex": "M", "date_of_birth": datetime.date(1975, 1, 1)},
        {
            "first_name": "Ruth",
            "last_name": "Banda",
            "sex": "F",
            "date_of_birth": datetime.date(2001, 1, 1),
            "relationship": "child",
        },
        phone="",
    )
    ruth = other.members.get(first_name="Ruth")
    url = reverse("frontdesk:member-move-in", args=[mwansa_household.pk]) + f"?from_number={other.number.lower()}"
    page = officer_client.get(url).content.decode()
    assert "Ruth Banda" in page
    response = officer_client.post(url, {"member": ruth.pk, "relationship": "other_relative", "note": "Married"})
    assert response.status_code == 302
    ruth.refresh_from_db()
    assert ruth.household_id == mwansa_household.pk
    assert ChangeEntry.objects.filter(household=other, action=ChangeAction.MOVE_OUT).exists()


def test_the_household_moves_and_its_head_changes(officer_client, mwansa_household, samfya):
    new_village = make_village(samfya, suffix="2")
    response = officer_client.post(
        reverse("frontdesk:household-move", args=[mwansa_household.pk]),
        {"village": new_village.pk, "address": "New plot"},
    )
    assert response.status_code == 302
    john = mwansa_household.members.get(first_name="John")
    response = officer_client.post(
        reverse("frontdesk:household-head", args=[mwansa_household.pk]), {"new_head": john.pk}
    )
    assert response.status_code == 302
    mwansa_household.refresh_from_db()
    assert mwansa_household.village == new_village and mwansa_household.head == john
    page = officer_client.get(reverse("frontdesk:household", args=[mwansa_household.pk])).content.decode()
    assert "Household moved" in page and "Head changed" in page


def test_a_household_is_marked_dissolved(officer_client, mwansa_household):
    response = officer_client.post(
        reverse("frontdesk:household-status", args=[mwansa_household.pk]),
        {"status": HouseholdStatus.DISSOLVED, "note": "Everyone left"},
    )
    assert response.status_code == 302
    mwansa_household.refresh_from_db()
    assert mwansa_household.status == HouseholdStatus.DISSOLVED


# --- who may see and change what -------------------------------------------------------

LUNGA_PAGES = [
    ("frontdesk:household", False),
    ("frontdesk:household-edit", False),
    ("frontdesk:household-move", False),
    ("frontdesk:household-head", False),
    ("frontdesk:household-status", False),
    ("frontdesk:member-add", False),
    ("frontdesk:member-move-in", False),
    ("frontdesk:member-edit", True),
    ("frontdesk:member-death", True),
    ("frontdesk:member-move-out", True),
]


@pytest.mark.parametrize("url_name, per_member", LUNGA_PAGES)
def test_a_samfya_officer_gets_not_found_for_a_lunga_household(
    officer_client, lunga_officer, lunga_village, url_name, per_member
):
    household = register(lunga_officer, lunga_village, MARY)
    args = [household.pk, household.head_id] if per_member else [household.pk]
    url = reverse(url_name, args=args)
    assert officer_client.get(url).status_code == 404
    if url_name != "frontdesk:household":  # the page itself takes no posts
        assert officer_client.post(url, {"on": "2024-01-01", "status": "dissolved"}).status_code == 404
    household.refresh_from_db()
    assert household.status == HouseholdStatus.ACTIVE


def test_a_guessed_household_id_is_not_found(officer_client):
    assert officer_client.get(reverse("frontdesk:household", args=[987654])).status_code == 404


def test_a_committee_member_reads_but_cannot_post_edits(client, committee_samfya, mwansa_household):
    client.force_login(committee_samfya)
    page = client.get(reverse("frontdesk:household", args=[mwansa_household.pk]))
    assert page.status_code == 200
    assert reverse("frontdesk:household-edit", args=[mwansa_household.pk]) not in page.content.decode()
    assert b"/imports/" not in page.content
    edit = reverse("frontdesk:household-edit", args=[mwansa_household.pk])
    assert client.get(edit).status_code == 403
    response = client.post(edit, {"address": "Changed", "registration_date": "2024-01-01"})
    assert response.status_code == 403
    assert client.post(reverse("frontdesk:household-new"), {}).status_code == 403
    mwansa_household.refresh_from_db()
    assert mwansa_household.address == ""


def test_a_ministry_user_sees_every_district(client, ministry_user, lunga_officer, lunga_village):
    household = register(lunga_officer, lunga_village, MARY)
    client.force_login(ministry_user)
    assert client.get(reverse("frontdesk:household", args=[household.pk])).status_code == 200
