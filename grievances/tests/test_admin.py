"""Grievances in the admin: every page opens, nothing is written from it, and
it is scoped like the selector: no staff user without the designation sees a
sensitive grievance (ministry staff included), nobody sees another district's,
not even by typing an id."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile

from grievances.models import Grievance, GrievanceCategory
from grievances.services import grievance_acknowledge, grievance_attachment_add, grievance_register
from referrals.tests.makers import make_household
from registry.tests.factories import UserFactory
from spf.models import User

MODELS = ("grievance", "grievanceevent", "grievanceattachment")
SECRET = "The pay point agent asked me for money."


def staff(user: User) -> User:
    """The user let into the admin with Django's view permission on every grievances model."""
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="grievances", codename__startswith="view_")
    )
    return User.objects.get(pk=user.pk)  # permissions are cached per instance


def page(client, user, path: str, **params) -> str:
    client.force_login(user)
    response = client.get(path, params)
    assert response.status_code == 200, (path, response.status_code)
    return response.content.decode()


def register(user, household, **extra) -> Grievance:
    values = {
        "category": GrievanceCategory.DATA_CORRECTION,
        "description": "My name is spelt wrong.",
        "complainant": household.head,
    }
    values.update(extra)
    return grievance_register(acting_user=user, household=household, **values)


@pytest.fixture
def grievances(samfya_officer, lunga_officer, household, lunga_village, settings, tmp_path):
    """An ordinary and a sensitive grievance in Samfya, each with a document, and one in Lunga."""
    settings.MEDIA_ROOT = tmp_path
    lunga_household = make_household(officer=lunga_officer, village=lunga_village, last_name="Lungu")
    ordinary = register(samfya_officer, household)
    grievance_acknowledge(acting_user=samfya_officer, grievance=ordinary, note="Slip given")
    sensitive = register(
        samfya_officer, household, category=GrievanceCategory.STAFF_CONDUCT, sensitive=True, description=SECRET
    )
    for grievance, name in ((ordinary, "letter.pdf"), (sensitive, "bribe-receipt.pdf")):
        grievance_attachment_add(
            acting_user=samfya_officer,
            grievance=grievance,
            file=SimpleUploadedFile(name, b"%PDF-1.4\n", "application/pdf"),
            description=name,
        )
    lunga = register(lunga_officer, lunga_household, description="Lunga's complaint about the boat.")
    return {"ordinary": ordinary, "sensitive": sensitive, "lunga": lunga}


@pytest.fixture
def samfya_staff(other_samfya_officer):
    """An ordinary officer of Samfya who did not record the grievances, let into the admin."""
    return staff(other_samfya_officer)


def _sees(client, user, grievance: Grievance) -> bool:
    listed = all(
        grievance.number in page(client, user, f"/admin/grievances/{model}/")
        or (model == "grievanceattachment" and not grievance.attachments.exists())
        for model in MODELS
    )
    client.force_login(user)
    opened = client.get(f"/admin/grievances/grievance/{grievance.pk}/change/").status_code == 200
    assert listed == opened, "the list and the page must agree"
    return opened


def test_every_page_opens_for_a_superuser(client, grievances):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    ordinary = grievances["ordinary"]

    for model in MODELS:
        body = page(client, root, f"/admin/grievances/{model}/")
        assert ordinary.number in body
    body = page(client, root, f"/admin/grievances/grievance/{ordinary.pk}/change/")
    assert "Slip given" in body and "letter.pdf" in body
    assert f"/api/v1/grievances/{ordinary.pk}/attachments/" in body
    event = ordinary.events.last()
    assert "Slip given" in page(client, root, f"/admin/grievances/grievanceevent/{event.pk}/change/")
    attachment = ordinary.attachments.get()
    page(client, root, f"/admin/grievances/grievanceattachment/{attachment.pk}/change/")
    for params in ({"overdue": "yes"}, {"sensitive__exact": "1"}, {"status__exact": "received"}, {"q": "x"}):
        page(client, root, "/admin/grievances/grievance/", **params)


def test_nothing_is_added_changed_or_deleted_in_the_admin(client, grievances):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    ordinary = grievances["ordinary"]
    client.force_login(root)

    assert client.get("/admin/grievances/grievance/add/").status_code == 403
    response = client.post(f"/admin/grievances/grievance/{ordinary.pk}/change/", {"status": "closed"})
    assert response.status_code == 403
    assert client.post(f"/admin/grievances/grievance/{ordinary.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Grievance.objects.get(pk=ordinary.pk).status == "acknowledged"


def test_an_ordinary_staff_officer_never_sees_a_sensitive_grievance(client, samfya_staff, grievances):
    sensitive = grievances["sensitive"]

    assert _sees(client, samfya_staff, grievances["ordinary"])
    assert not _sees(client, samfya_staff, sensitive)
    for model in MODELS:
        body = page(client, samfya_staff, f"/admin/grievances/{model}/", q=sensitive.number)
        assert SECRET not in body and "bribe-receipt" not in body
    client.force_login(samfya_staff)
    for model, row in (
        ("grievance", sensitive),
        ("grievanceevent", sensitive.events.get()),
        ("grievanceattachment", sensitive.attachments.get()),
    ):
        assert client.get(f"/admin/grievances/{model}/{row.pk}/change/").status_code == 404, model


def test_ministry_staff_see_every_district_but_a_sensitive_grievance_only_when_designated(
    client, ministry_user, grievances
):
    assert _sees(client, ministry_user, grievances["ordinary"]) and _sees(client, ministry_user, grievances["lunga"])
    assert not _sees(client, ministry_user, grievances["sensitive"])

    designated = Group.objects.create(name="Grievance focal points")
    designated.permissions.add(Permission.objects.get(codename="handle_sensitive"))
    ministry_user.groups.add(designated)

    assert _sees(client, User.objects.get(pk=ministry_user.pk), grievances["sensitive"])


def test_a_designated_officer_sees_the_sensitive_grievances_of_their_district(client, designated_officer, grievances):
    designated = staff(designated_officer)

    assert _sees(client, designated, grievances["sensitive"])
    body = page(client, designated, f"/admin/grievances/grievance/{grievances['sensitive'].pk}/change/")
    assert SECRET in body and "bribe-receipt.pdf" in body


def test_an_officer_cannot_see_another_districts_grievance_even_by_typing_its_id(client, samfya_staff, grievances):
    lunga = grievances["lunga"]

    assert not _sees(client, samfya_staff, lunga)
    for model in MODELS:
        body = page(client, samfya_staff, f"/admin/grievances/{model}/", q="boat")
        assert "complaint about the boat" not in body and lunga.number not in body
    client.force_login(samfya_staff)
    assert client.get(f"/admin/grievances/grievanceevent/{lunga.events.get().pk}/change/").status_code == 404


def test_the_admin_finds_a_grievance_by_its_number_or_its_words(client, ministry_user, grievances):
    ordinary, lunga = grievances["ordinary"], grievances["lunga"]

    by_number = page(client, ministry_user, "/admin/grievances/grievance/", q=ordinary.number)
    assert ordinary.number in by_number and lunga.number not in by_number
    by_words = page(client, ministry_user, "/admin/grievances/grievance/", q="boat")
    assert lunga.number in by_words and ordinary.number not in by_words


def test_an_officer_who_is_not_staff_cannot_enter_the_admin(client, samfya_officer, grievances):
    client.force_login(samfya_officer)

    assert client.get("/admin/grievances/grievance/").status_code == 302
