"""The ministry's admin: locations get their district from the service, attribute
definitions keep their rules, households are browse-only and scoped."""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError

from registry.models import (
    AttributeDefinition,
    AttributeEntity,
    AttributeType,
    ChangeEntry,
    ImportJob,
    Location,
    LocationLevel,
    Relationship,
)
from registry.services import MemberInput, household_register, household_update, member_update
from registry.tests.factories import UserFactory
from spf.models import Role, User

REGISTRY_MODELS = ("household", "member", "changeentry", "importjob", "location", "attributedefinition")


def person(first="Mary", last="Mwansa", **extra) -> MemberInput:
    values = {
        "first_name": first,
        "last_name": last,
        "sex": "F",
        "date_of_birth": datetime.date(1980, 5, 17),
        "relationship": Relationship.HEAD,
    }
    values.update(extra)
    return MemberInput(values=values)


def grant(user: User, *codenames: str) -> User:
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)  # a fresh instance: permissions are cached per instance


def view_everything(user: User) -> User:
    return grant(user, *(f"view_{model}" for model in REGISTRY_MODELS))


@pytest.fixture
def samfya_household(samfya_officer, samfya_village):
    return household_register(
        acting_user=samfya_officer,
        village=samfya_village,
        phone="+260 977 123456",
        members=[person(national_id="123456/10/1"), person("Bupe", "Mwansa", relationship=Relationship.CHILD)],
    )


@pytest.fixture
def lunga_household(lunga_officer, lunga_village):
    return household_register(
        acting_user=lunga_officer,
        village=lunga_village,
        phone="0966 555444",
        members=[person("Chilufya", "Banda", national_id="654321/10/1")],
    )


@pytest.fixture
def samfya_staff(samfya):
    user = UserFactory(username="samfya_staff", role=Role.FRONT_DESK, districts=[samfya], is_staff=True)
    return view_everything(user)


@pytest.fixture
def ministry_staff(ministry_user):
    return view_everything(ministry_user)


@pytest.fixture
def superuser(db):
    return UserFactory(username="root_test", is_staff=True, is_superuser=True, role=Role.MINISTRY)


def changelist(client, user, model: str, **params) -> str:
    client.force_login(user)
    response = client.get(f"/admin/registry/{model}/", params)
    assert response.status_code == 200
    return response.content.decode()


# --- who gets in -------------------------------------------------------------------------


def test_a_front_desk_officer_who_is_not_staff_cannot_enter_the_admin(client, samfya_officer, samfya_household):
    client.force_login(samfya_officer)
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    response = client.get(f"/admin/registry/household/{samfya_household.pk}/change/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- scope ---------------------------------------------------------------------------------


def test_district_staff_see_only_their_districts_households(client, samfya_staff, samfya_household, lunga_household):
    page = changelist(client, samfya_staff, "household")
    assert samfya_household.number in page
    assert lunga_household.number not in page


def test_another_districts_household_is_a_404_in_the_admin(client, samfya_staff, samfya_household, lunga_household):
    client.force_login(samfya_staff)
    assert client.get(f"/admin/registry/household/{samfya_household.pk}/change/").status_code == 200
    response = client.get(f"/admin/registry/household/{lunga_household.pk}/change/")
    assert response.status_code == 404
    assert "Banda" not in response.content.decode()
    assert client.get(f"/admin/registry/household/{lunga_household.pk}/history/").status_code == 404
    lunga_member = lunga_household.members.get()
    assert client.get(f"/admin/registry/member/{lunga_member.pk}/change/").status_code == 404
    lunga_entry = ChangeEntry.objects.filter(household=lunga_household).first()
    assert client.get(f"/admin/registry/changeentry/{lunga_entry.pk}/change/").status_code == 404


def test_a_guessed_id_that_does_not_exist_is_a_404_too(client, samfya_staff):
    client.force_login(samfya_staff)
    assert client.get("/admin/registry/household/999999/change/").status_code == 404


def test_district_staff_see_only_their_districts_members_and_history(
    client, samfya_staff, samfya_household, lunga_household
):
    members = changelist(client, samfya_staff, "member")
    assert "Bupe Mwansa" in members and "Chilufya Banda" not in members
    history = changelist(client, samfya_staff, "changeentry")
    assert samfya_household.number in history and lunga_household.number not in history


def test_the_district_filter_offers_only_the_users_districts(client, samfya_staff, samfya_household, lunga_household):
    page = changelist(client, samfya_staff, "household")
    assert "Samfya" in page
    assert "Lunga" not in page


def test_ministry_staff_and_superusers_see_every_district(
    client, ministry_staff, superuser, samfya_household, lunga_household
):
    for user in (ministry_staff, superuser):
        page = changelist(client, user, "household")
        assert samfya_household.number in page and lunga_household.number in page
        client.force_login(user)
        assert client.get(f"/admin/registry/household/{lunga_household.pk}/change/").status_code == 200


def test_the_district_filter_narrows_the_list(client, superuser, samfya, samfya_household, lunga_household):
    page = changelist(client, superuser, "household", district=samfya.pk)
    assert samfya_household.number in page and lunga_household.number not in page
    page = changelist(client, superuser, "changeentry", district=samfya.pk)
    assert samfya_household.number in page and lunga_household.number not in page


def test_import_jobs_are_scoped_to_the_districts_they_wrote(
    client, samfya_staff, lunga_officer, samfya_household, lunga_household
):
    lunga_job = ImportJob.objects.create(original_name="lunga.csv", created_by=lunga_officer)
    ChangeEntry.objects.filter(household=lunga_household).update(import_job=lunga_job)
    own_job = ImportJob.objects.create(original_name="mine.csv", created_by=samfya_staff)
    page = changelist(client, samfya_staff, "importjob")
    assert "mine.csv" in page and "lunga.csv" not in page
    assert client.get(f"/admin/registry/importjob/{lunga_job.pk}/change/").status_code == 404
    assert client.get(f"/admin/registry/importjob/{own_job.pk}/change/").status_code == 200


# --- households are browse-only ----------------------------------------------------------------


def test_the_household_page_shows_members_history_and_the_front_desk_link(client, superuser, samfya_household):
    household_update(acting_user=superuser, household=samfya_household, values={"address": "Near the school"})
    client.force_login(superuser)
    page = client.get(f"/admin/registry/household/{samfya_household.pk}/change/").content.decode()
    assert "Mary Mwansa" in page and "Bupe Mwansa" in page
    assert "Near the school" in page  # the history entry's new value
    assert f'href="/households/{samfya_household.pk}/"' in page


def test_households_cannot_be_added_changed_or_deleted_in_the_admin(client, superuser, samfya_household):
    client.force_login(superuser)
    assert client.get("/admin/registry/household/add/").status_code == 403
    response = client.post(f"/admin/registry/household/{samfya_household.pk}/change/", {"address": "Somewhere"})
    assert response.status_code == 403
    assert client.post(f"/admin/registry/household/{samfya_household.pk}/delete/", {"post": "yes"}).status_code == 403
    samfya_household.refresh_from_db()
    assert samfya_household.address == ""
    for model in ("member", "changeentry", "importjob"):
        assert client.get(f"/admin/registry/{model}/add/").status_code == 403


@pytest.mark.parametrize("query", ["SAM-000001", "0977 123456", "+260977123456", "mwansa mary", "Bupe"])
def test_households_are_found_by_number_phone_and_any_members_name(
    client, superuser, samfya_household, lunga_household, query
):
    page = changelist(client, superuser, "household", q=query)
    assert samfya_household.number in page
    assert lunga_household.number not in page


def test_members_are_found_by_name_or_national_id(client, superuser, samfya_household, lunga_household):
    assert "Mary Mwansa" in changelist(client, superuser, "member", q="123456/10/1")
    page = changelist(client, superuser, "member", q="banda")
    assert "Chilufya Banda" in page and "Mary Mwansa" not in page


def test_history_is_found_by_household_number(client, superuser, samfya_household, lunga_household):
    page = changelist(client, superuser, "changeentry", q=lunga_household.number.lower())
    assert lunga_household.number in page and samfya_household.number not in page


# --- locations ----------------------------------------------------------------------------------


def add_location(client, user, **fields):
    client.force_login(user)
    return client.post("/admin/registry/location/add/", {"_save": "Save", **fields})


def test_a_ward_and_village_added_in_the_admin_belong_to_their_district(client, superuser, samfya):
    response = add_location(client, superuser, code="SAM-W9", name="Kasaba", level="ward", parent=samfya.pk)
    assert response.status_code == 302, response.content.decode()[:2000]
    ward = Location.objects.get(code="SAM-W9")
    assert ward.district == samfya
    add_location(client, superuser, code="SAM-W9-V1", name="Chishi", level="village", parent=ward.pk)
    assert Location.objects.get(code="SAM-W9-V1").district == samfya


def test_a_district_added_in_the_admin_is_its_own_district(client, superuser, samfya):
    add_location(client, superuser, code="MAN", name="Mansa", level="district", parent=samfya.parent_id)
    mansa = Location.objects.get(code="MAN")
    assert mansa.district == mansa
    assert mansa.householdnumbersequence.last_number == 0


def test_a_location_under_the_wrong_level_is_refused(client, superuser, samfya_village):
    response = add_location(client, superuser, code="X1", name="Nowhere", level="ward", parent=samfya_village.parent_id)
    assert response.status_code == 200
    assert "A ward must sit under a district." in response.content.decode()
    assert not Location.objects.filter(code="X1").exists()


def test_only_a_locations_name_changes_after_it_is_created(client, superuser, samfya, lunga):
    client.force_login(superuser)
    ward = Location.objects.create(code="SAM-W1", name="Ward", level=LocationLevel.WARD, parent=samfya, district=samfya)
    response = client.post(
        f"/admin/registry/location/{ward.pk}/change/",
        {"_save": "Save", "name": "Ward renamed", "code": "LUN-W1", "level": "ward", "parent": lunga.pk},
    )
    assert response.status_code == 302
    ward.refresh_from_db()
    assert (ward.name, ward.code, ward.parent, ward.district) == ("Ward renamed", "SAM-W1", samfya, samfya)


def test_the_location_list_reads_as_a_hierarchy(client, superuser, samfya_village):
    page = changelist(client, superuser, "location", level="village")
    assert f"{samfya_village.parent.parent.parent.name} › Samfya › {samfya_village.parent.name}" in page


# --- attribute definitions -------------------------------------------------------------------------


def definition(**fields) -> AttributeDefinition:
    values = {
        "entity": AttributeEntity.HOUSEHOLD,
        "key": "water_source",
        "label": "Water source",
        "type": AttributeType.TEXT,
        "allowed_values": [],
    }
    values.update(fields)
    return AttributeDefinition(**values)


@pytest.mark.parametrize("key", ["Water", "2rooms", "water-source", "water source", "_water", ""])
def test_an_attribute_key_must_be_a_rule_identifier(db, key):
    with pytest.raises(ValidationError) as raised:
        definition(key=key).full_clean()
    assert "key" in raised.value.message_dict


@pytest.mark.parametrize(
    ("entity", "key"),
    [
        ("household", "phone"),
        ("household", "members"),
        ("member", "sex"),
        ("member", "age"),
        ("member", "household_id"),
    ],
)
def test_an_attribute_key_cannot_shadow_a_core_field(db, entity, key):
    with pytest.raises(ValidationError) as raised:
        definition(entity=entity, key=key).full_clean()
    assert f"'{key}' is already a core {entity} field" in raised.value.message_dict["key"][0]


def test_a_member_attribute_may_share_a_name_with_a_household_field(db):
    definition(entity=AttributeEntity.MEMBER, key="address").full_clean()


def test_one_of_a_list_needs_its_values_and_other_types_refuse_them(db):
    with pytest.raises(ValidationError) as raised:
        definition(type=AttributeType.CHOICE).full_clean()
    assert "allowed_values" in raised.value.message_dict
    with pytest.raises(ValidationError) as raised:
        definition(type=AttributeType.INTEGER, allowed_values=["1", "2"]).full_clean()
    assert "allowed_values" in raised.value.message_dict
    definition(type=AttributeType.CHOICE, allowed_values=["borehole", "river"]).full_clean()


def test_the_type_of_an_attribute_in_use_cannot_change(samfya_officer, samfya_village):
    water = definition(type=AttributeType.CHOICE, allowed_values=["borehole", "river"])
    water.save()
    household_register(
        acting_user=samfya_officer, village=samfya_village, members=[person()], attributes={"water_source": "river"}
    )
    water.type, water.allowed_values = AttributeType.TEXT, []
    with pytest.raises(ValidationError) as raised:
        water.full_clean()
    assert (
        "1 household already holds a value for 'water_source'; its type cannot change"
        in (raised.value.message_dict["type"][0])
    )


def test_an_allowed_value_still_held_cannot_be_removed_but_an_unused_one_can(samfya_officer, samfya_village):
    water = definition(type=AttributeType.CHOICE, allowed_values=["borehole", "river", "tap"])
    water.save()
    household_register(
        acting_user=samfya_officer, village=samfya_village, members=[person()], attributes={"water_source": "river"}
    )
    water.allowed_values = ["borehole", "tap"]
    with pytest.raises(ValidationError) as raised:
        water.full_clean()
    assert raised.value.message_dict["allowed_values"] == ["These values are still held and cannot be removed: river."]
    water.allowed_values = ["borehole", "river"]
    water.full_clean()


def test_the_type_of_an_unused_attribute_may_change(db):
    rooms = definition(key="rooms", type=AttributeType.TEXT)
    rooms.save()
    rooms.type = AttributeType.INTEGER
    rooms.full_clean()


def test_the_admin_form_takes_allowed_values_one_per_line_and_explains_a_refusal(
    client, superuser, samfya_officer, samfya_village
):
    client.force_login(superuser)
    response = client.post(
        "/admin/registry/attributedefinition/add/",
        {
            "_save": "Save",
            "entity": "household",
            "key": "water_source",
            "label": "Water source",
            "type": "choice",
            "allowed_values": "borehole\nriver\n\n",
            "help_text": "",
            "active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    water = AttributeDefinition.objects.get(key="water_source")
    assert water.allowed_values == ["borehole", "river"]
    household_register(
        acting_user=samfya_officer, village=samfya_village, members=[person()], attributes={"water_source": "borehole"}
    )
    response = client.post(
        f"/admin/registry/attributedefinition/{water.pk}/change/",
        {
            "_save": "Save",
            "entity": "household",
            "key": "water_source",
            "label": "Water source",
            "type": "text",
            "allowed_values": "",
            "help_text": "",
            "active": "on",
        },
    )
    assert response.status_code == 200
    assert "its type cannot change from one of a list to text" in response.content.decode()
    water.refresh_from_db()
    assert water.type == AttributeType.CHOICE


# --- users ----------------------------------------------------------------------------------------------


def test_a_user_is_created_with_a_role_and_districts(client, superuser, samfya, samfya_village):
    client.force_login(superuser)
    form = client.get("/admin/spf/user/add/").content.decode()
    assert "Samfya" in form and samfya_village.name not in form  # districts only, no villages
    response = client.post(
        "/admin/spf/user/add/",
        {
            "_save": "Save",
            "username": "new_officer",
            "password1": "a-Long-pass-2026",
            "password2": "a-Long-pass-2026",
            "usable_password": "true",
            "role": Role.COMMITTEE,
            "districts": [samfya.pk],
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    created = User.objects.get(username="new_officer")
    assert created.role == Role.COMMITTEE
    assert list(created.districts.all()) == [samfya]


def test_the_user_list_shows_role_and_districts_and_filters_by_district(
    client, superuser, samfya_officer, lunga_officer, samfya
):
    client.force_login(superuser)
    page = client.get("/admin/spf/user/", {"district": samfya.pk}).content.decode()
    assert samfya_officer.username in page and lunga_officer.username not in page
    assert "Front-desk officer" in page and "Samfya" in page


def test_staff_who_are_not_superusers_cannot_make_anyone_a_superuser(client, ministry_user, samfya_officer):
    manager = grant(ministry_user, "view_user", "change_user")
    client.force_login(manager)
    page = client.get(f"/admin/spf/user/{samfya_officer.pk}/change/").content.decode()
    assert 'name="is_superuser"' not in page


# --- scope of the rest, ministry by role, links ---------------------------------------------------------------


def test_district_staff_see_and_add_locations_only_in_their_districts(
    client, samfya_staff, samfya_village, lunga_village
):
    staff = grant(samfya_staff, "view_location", "add_location", "change_location")
    listed = changelist(client, staff, "location")
    assert samfya_village.code in listed and lunga_village.code not in listed
    province = samfya_village.district.parent
    assert f"/admin/registry/location/{province.pk}/change/" not in listed  # above every district: the ministry's
    form = client.get("/admin/registry/location/add/").content.decode()
    assert samfya_village.parent.name in form and lunga_village.parent.name not in form
    assert client.get(f"/admin/registry/location/{lunga_village.pk}/change/").status_code == 404

    response = add_location(
        client, staff, code="X-W1", name="Elsewhere", level="ward", parent=lunga_village.parent.district_id
    )

    assert response.status_code == 200 and "parent" in response.context["adminform"].form.errors
    assert not Location.objects.filter(code="X-W1").exists()


def test_household_number_sequences_are_scoped_to_the_district(client, samfya_staff, samfya_household, lunga_household):
    staff = grant(samfya_staff, "view_householdnumbersequence")
    listed = changelist(client, staff, "householdnumbersequence")
    assert "Samfya" in listed and "Lunga" not in listed
    assert (
        client.get(f"/admin/registry/householdnumbersequence/{lunga_household.district_id}/change/").status_code == 404
    )


def test_ministry_staff_browse_the_registry_by_their_role_without_permissions(
    client, ministry_user, samfya_household, lunga_household
):
    assert not ministry_user.groups.exists() and not ministry_user.user_permissions.exists()
    page = changelist(client, ministry_user, "household")
    assert samfya_household.number in page and lunga_household.number in page
    household = client.get(f"/admin/registry/household/{lunga_household.pk}/change/").content.decode()
    assert "Chilufya Banda" in household  # the members inline, shown by role too
    assert client.get("/admin/registry/household/add/").status_code == 403
    assert client.get("/admin/registry/location/add/").status_code == 200
    assert client.get("/admin/registry/attributedefinition/add/").status_code == 200


def test_the_household_page_links_to_the_lists_the_user_may_read(client, superuser, samfya_staff, samfya_household):
    client.force_login(superuser)
    page = client.get(f"/admin/registry/household/{samfya_household.pk}/change/").content.decode()
    for list_path in ("/admin/referrals/referral/", "/admin/payments/enrolment/", "/admin/registry/changeentry/"):
        assert f'href="{list_path}?q={samfya_household.number}"' in page
    client.force_login(samfya_staff)  # may view the registry's lists, not referrals or enrolments
    page = client.get(f"/admin/registry/household/{samfya_household.pk}/change/").content.decode()
    assert f'href="/admin/registry/changeentry/?q={samfya_household.number}"' in page
    assert "/admin/referrals/referral/?q=" not in page and "/admin/payments/enrolment/?q=" not in page


def test_a_members_page_shows_their_history_and_no_search_keys(client, superuser, samfya_officer, samfya_household):
    bupe = samfya_household.members.get(first_name="Bupe")
    member_update(acting_user=samfya_officer, member=bupe, values={"phone": "0977 555 111"})
    client.force_login(superuser)
    page = client.get(f"/admin/registry/member/{bupe.pk}/change/").content.decode()
    assert "this person&#x27;s history" in page.lower()
    assert "0977 555 111" in page
    assert "search_name" not in page and "Name keys" not in page
