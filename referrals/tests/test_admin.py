"""Referrals in the admin: browse-only, scoped like everywhere else, searchable
by the numbers people read out."""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from programmes.models import EligibilityChange
from referrals.models import EligibilitySweep, Notification, Referral, ReferralEvent, ReferralStatus
from referrals.services import referral_attachment_add, referral_create, referral_transition
from registry.tests.factories import UserFactory
from spf.models import Role, User

from .makers import make_agency, make_household, make_programme

S = ReferralStatus
REFERRAL_MODELS = ("referral", "referralevent", "notification")


def grant_views(user: User) -> User:
    user.user_permissions.add(*Permission.objects.filter(codename__in=[f"view_{m}" for m in REFERRAL_MODELS]))
    return User.objects.get(pk=user.pk)  # permissions are cached per instance


def page(client, user, path: str, **params) -> str:
    client.force_login(user)
    response = client.get(path, params)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


@pytest.fixture
def mcdss(db):
    return make_agency("MCDSS")


@pytest.fixture
def moe(db):
    return make_agency("MOE")


@pytest.fixture
def referrals(samfya_officer, lunga_officer, samfya_village, lunga_village, samfya, lunga, mcdss, moe):
    cash = make_programme(code="SCT", agency=mcdss, districts=[samfya, lunga])
    school = make_programme(code="SCH", agency=moe, districts=[samfya])
    samfya_household = make_household(officer=samfya_officer, village=samfya_village)
    lunga_household = make_household(officer=lunga_officer, village=lunga_village, last_name="Lungu")
    return {
        "samfya_cash": referral_create(acting_user=samfya_officer, household=samfya_household, programme=cash),
        "samfya_school": referral_create(acting_user=samfya_officer, household=samfya_household, programme=school),
        "lunga_cash": referral_create(acting_user=lunga_officer, household=lunga_household, programme=cash),
    }


@pytest.fixture
def samfya_staff(samfya):
    return grant_views(UserFactory(username="samfya_staff", role=Role.FRONT_DESK, districts=[samfya], is_staff=True))


@pytest.fixture
def mcdss_staff(samfya, mcdss):
    user = UserFactory(
        username="mcdss_staff", role=Role.PROGRAMME_OFFICER, agency=mcdss, districts=[samfya], is_staff=True
    )
    return grant_views(user)


def test_district_staff_see_their_districts_referrals_and_not_others(client, samfya_staff, referrals):
    listed = page(client, samfya_staff, "/admin/referrals/referral/")
    assert referrals["samfya_cash"].number in listed and referrals["samfya_school"].number in listed
    assert referrals["lunga_cash"].number not in listed
    client.force_login(samfya_staff)
    assert client.get(f"/admin/referrals/referral/{referrals['lunga_cash'].pk}/change/").status_code == 404
    lunga_event = ReferralEvent.objects.filter(referral=referrals["lunga_cash"]).first()
    assert client.get(f"/admin/referrals/referralevent/{lunga_event.pk}/change/").status_code == 404


def test_an_agencys_staff_see_only_their_agencys_referrals(client, mcdss_staff, referrals):
    listed = page(client, mcdss_staff, "/admin/referrals/referral/")
    assert referrals["samfya_cash"].number in listed
    assert referrals["samfya_school"].number not in listed  # another agency's
    assert referrals["lunga_cash"].number not in listed  # another district
    events = page(client, mcdss_staff, "/admin/referrals/referralevent/")
    assert referrals["samfya_cash"].number in events and referrals["samfya_school"].number not in events


def test_ministry_staff_see_every_referral_by_their_role(client, ministry_user, referrals):
    listed = page(client, ministry_user, "/admin/referrals/referral/")
    assert all(referral.number in listed for referral in referrals.values())


def test_a_referral_reads_with_its_timeline_and_cannot_be_changed(client, samfya_staff, referrals):
    referral = referrals["samfya_cash"]
    change_page = page(client, samfya_staff, f"/admin/referrals/referral/{referral.pk}/change/")
    assert referral.number in change_page and referral.household.number in change_page
    assert "Sent" in change_page and "frontdesk_samfya_test" in change_page  # the events inline
    assert 'name="_save"' not in change_page
    client.force_login(samfya_staff)
    assert client.get("/admin/referrals/referral/add/").status_code == 403
    assert client.post(f"/admin/referrals/referral/{referral.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Referral.objects.filter(pk=referral.pk).exists()


def test_search_by_referral_number_or_household_number(client, samfya_staff, referrals):
    cash, school = referrals["samfya_cash"], referrals["samfya_school"]
    by_number = page(client, samfya_staff, "/admin/referrals/referral/", q=cash.number.lower())
    assert cash.number in by_number and school.number not in by_number
    by_household = page(client, samfya_staff, "/admin/referrals/referral/", q=cash.household.number)
    assert cash.number in by_household and school.number in by_household
    events = page(client, samfya_staff, "/admin/referrals/referralevent/", q=str(school.pk))
    assert school.number in events and cash.number not in events


def test_the_overdue_filter_and_column(client, samfya_staff, referrals):
    late = referrals["samfya_school"]
    Referral.objects.filter(pk=late.pk).update(due_date=timezone.localdate() - datetime.timedelta(days=2))
    overdue = page(client, samfya_staff, "/admin/referrals/referral/", overdue="yes")
    assert late.number in overdue and referrals["samfya_cash"].number not in overdue
    on_time = page(client, samfya_staff, "/admin/referrals/referral/", overdue="no")
    assert late.number not in on_time and referrals["samfya_cash"].number in on_time


def test_notifications_are_browse_only_and_scoped(client, samfya_staff, lunga_officer, referrals, ministry_user):
    mine = Notification.objects.create(
        recipient=samfya_staff, referral=referrals["samfya_cash"], kind="overdue", message="Samfya notice"
    )
    theirs = Notification.objects.create(
        recipient=lunga_officer, referral=referrals["lunga_cash"], kind="overdue", message="Lunga notice"
    )
    listed = page(client, samfya_staff, "/admin/referrals/notification/")
    assert "Samfya notice" in listed and "Lunga notice" not in listed
    client.force_login(samfya_staff)
    assert client.get(f"/admin/referrals/notification/{theirs.pk}/change/").status_code == 404
    assert 'name="_save"' not in page(client, samfya_staff, f"/admin/referrals/notification/{mine.pk}/change/")
    assert "Lunga notice" in page(client, ministry_user, "/admin/referrals/notification/")


def test_staff_without_a_role_or_permission_do_not_see_referrals(client, samfya, referrals):
    plain = UserFactory(username="plain_staff", role=Role.FRONT_DESK, districts=[samfya], is_staff=True)
    client.force_login(plain)
    assert client.get("/admin/referrals/referral/").status_code == 403


def test_a_closed_referral_shows_why(client, samfya_staff, referrals, samfya, moe):
    officer = UserFactory(username="moe_officer", role=Role.PROGRAMME_OFFICER, agency=moe, districts=[samfya])
    referral_transition(
        referral=referrals["samfya_school"],
        to_status=S.REJECTED,
        acting_user=officer,
        rejection_reason="capacity_full",
        reason="Ward quota reached",
    )
    change_page = page(client, samfya_staff, f"/admin/referrals/referral/{referrals['samfya_school'].pk}/change/")
    assert "Ward quota reached" in change_page and "No place left" in change_page


# --- the timeline by role, attachments, the sweep's watermark --------------------------------------------


def test_ministry_staff_read_a_referrals_timeline_by_their_role(client, ministry_user, referrals):
    assert not ministry_user.user_permissions.exists()
    referral = referrals["lunga_cash"]
    change_page = page(client, ministry_user, f"/admin/referrals/referral/{referral.pk}/change/")
    assert "frontdesk_lunga_test" in change_page  # who sent it, from the events inline
    assert f'href="/admin/payments/enrolment/?q={referral.household.number}"' in change_page


@pytest.fixture
def attachments(settings, tmp_path, samfya_officer, lunga_officer, referrals):
    settings.MEDIA_ROOT = tmp_path
    return {
        name: referral_attachment_add(
            acting_user=officer,
            referral=referrals[name],
            file=SimpleUploadedFile(f"{name}.pdf", b"%PDF-1.4\n"),
            description=f"Letter for {name}",
        )
        for name, officer in (("samfya_cash", samfya_officer), ("lunga_cash", lunga_officer))
    }


def test_attachments_are_listed_on_the_referral_and_scoped(client, samfya_staff, referrals, attachments):
    staff = User.objects.get(pk=samfya_staff.pk)
    staff.user_permissions.add(Permission.objects.get(codename="view_referralattachment"))
    staff = User.objects.get(pk=staff.pk)
    referral = referrals["samfya_cash"]
    mine, theirs = attachments["samfya_cash"], attachments["lunga_cash"]

    on_referral = page(client, staff, f"/admin/referrals/referral/{referral.pk}/change/")
    assert "Letter for samfya_cash" in on_referral
    assert f"/referrals/{referral.number}/attachments/{mine.pk}/" in on_referral  # served through the scoped page
    listed = page(client, staff, "/admin/referrals/referralattachment/")
    assert "Letter for samfya_cash" in listed and "Letter for lunga_cash" not in listed
    assert "Letter for samfya_cash" in page(client, staff, "/admin/referrals/referralattachment/", q=referral.number)
    assert client.get(f"/admin/referrals/referralattachment/{theirs.pk}/change/").status_code == 404
    assert client.get("/admin/referrals/referralattachment/add/").status_code == 403


def test_the_sweep_says_how_many_eligibility_changes_wait_for_automatic_referrals(client, ministry_user, referrals):
    referral = referrals["samfya_cash"]
    read, unread, also_unread = (
        EligibilityChange.objects.create(household=referral.household, programme=referral.programme, outcome=outcome)
        for outcome in ("eligible", "not_eligible", "eligible")
    )
    sweep = EligibilitySweep.objects.create(name="auto_referrals", last_change_id=read.pk)
    shown = page(client, ministry_user, f"/admin/referrals/eligibilitysweep/{sweep.pk}/change/")
    assert "eligibility changes not yet read" in shown.lower() and '<div class="readonly">2</div>' in shown
    client.force_login(ministry_user)
    assert client.get("/admin/referrals/eligibilitysweep/add/").status_code == 403
