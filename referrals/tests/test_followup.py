"""The follow-up jobs: overdue referrals are marked once and the people who can
act are told (in the app and by one e-mail digest each); referrals long past
due expire through the state machine."""

import datetime

import pytest
from django.conf import settings
from django.core import mail

from programmes.models import Agency, ReferralDelivery
from referrals.followup import EXPIRY_GRACE_DAYS, referrals_expire, referrals_mark_overdue
from referrals.models import Delivery, Notification, Referral, ReferralEvent, ReferralStatus
from referrals.services import referral_create, referral_transition
from referrals.tasks import referrals_expire as referrals_expire_task
from referrals.tasks import referrals_mark_overdue as referrals_mark_overdue_task
from registry.tests.factories import UserFactory
from spf.models import Role

from .makers import make_agency, make_household, make_programme

S = ReferralStatus
TODAY = datetime.date(2026, 3, 16)


def due(referral: Referral, *, days_ago: int) -> Referral:
    """As if the referral had been sent long enough ago to be due `days_ago` days before TODAY."""
    Referral.objects.filter(pk=referral.pk).update(due_date=TODAY - datetime.timedelta(days=days_ago))
    referral.refresh_from_db()
    return referral


@pytest.fixture
def mcdss(db):
    return make_agency("MCDSS", email="focal.point@mcdss.example")


@pytest.fixture
def moe(db):
    return make_agency("MOE")


@pytest.fixture
def cash(mcdss, samfya, lunga):
    return make_programme(code="SCT", agency=mcdss, districts=[samfya, lunga])


@pytest.fixture
def school(moe, samfya):
    return make_programme(code="SCH", agency=moe, districts=[samfya])


@pytest.fixture
def people(samfya, lunga, mcdss, moe, samfya_officer, lunga_officer):
    """Who could be told: the window in each district, and officers of both agencies."""
    samfya_officer.email = "desk@samfya.example"
    samfya_officer.save(update_fields=["email"])
    return {
        "samfya_desk": samfya_officer,
        "samfya_desk_without_email": UserFactory(username="desk2_samfya", role=Role.FRONT_DESK, districts=[samfya]),
        "lunga_desk": lunga_officer,
        "mcdss_samfya": UserFactory(
            username="mcdss_samfya",
            role=Role.PROGRAMME_OFFICER,
            agency=mcdss,
            districts=[samfya],
            email="officer@mcdss.example",
        ),
        "mcdss_lunga": UserFactory(
            username="mcdss_lunga", role=Role.PROGRAMME_OFFICER, agency=mcdss, districts=[lunga]
        ),
        "moe_samfya": UserFactory(username="moe_samfya", role=Role.PROGRAMME_OFFICER, agency=moe, districts=[samfya]),
        "inactive_desk": UserFactory(
            username="gone_samfya", role=Role.FRONT_DESK, districts=[samfya], is_active=False, email="gone@x.example"
        ),
    }


@pytest.fixture
def household(samfya_officer, samfya_village):
    return make_household(officer=samfya_officer, village=samfya_village)


def notified(referral: Referral) -> set[str]:
    return set(
        Notification.objects.filter(referral=referral, kind="overdue").values_list("recipient__username", flat=True)
    )


def run_overdue(django_capture_on_commit_callbacks, *, today=TODAY):
    # The digests leave after the job's transaction commits.
    with django_capture_on_commit_callbacks(execute=True):
        return referrals_mark_overdue(today=today)


# --- overdue ----------------------------------------------------------------------------------


def test_a_referral_past_due_is_marked_and_the_agency_and_the_window_are_told(
    people, household, cash, samfya_officer, django_capture_on_commit_callbacks
):
    referral = due(referral_create(acting_user=samfya_officer, household=household, programme=cash), days_ago=1)
    report = run_overdue(django_capture_on_commit_callbacks)

    referral.refresh_from_db()
    assert referral.overdue_since == TODAY
    assert report.marked == 1
    # The district's window and the agency's officers who see the district; not
    # Lunga's desk, not MCDSS's Lunga officer, not another agency, not a former officer.
    assert notified(referral) == {"frontdesk_samfya_test", "desk2_samfya", "mcdss_samfya"}
    assert report.notifications == 3
    message = Notification.objects.filter(referral=referral).first().message
    assert referral.number in message and household.number in message and "overdue" in message


def test_the_job_run_again_marks_and_tells_nobody_twice(
    people, household, cash, samfya_officer, django_capture_on_commit_callbacks
):
    due(referral_create(acting_user=samfya_officer, household=household, programme=cash), days_ago=3)
    run_overdue(django_capture_on_commit_callbacks)
    mail.outbox.clear()
    again = run_overdue(django_capture_on_commit_callbacks, today=TODAY + datetime.timedelta(days=1))
    assert (again.marked, again.notifications, again.digests) == (0, 0, 0)
    assert Notification.objects.count() == 3
    assert mail.outbox == []
    assert Referral.objects.get().overdue_since == TODAY


def test_each_recipient_gets_one_digest_for_the_run(
    people, samfya_officer, samfya_village, cash, school, django_capture_on_commit_callbacks
):
    first = make_household(officer=samfya_officer, village=samfya_village, last_name="Banda")
    second = make_household(officer=samfya_officer, village=samfya_village, last_name="Phiri")
    overdue_cash = [
        due(referral_create(acting_user=samfya_officer, household=h, programme=cash), days_ago=2)
        for h in (first, second)
    ]
    overdue_school = due(referral_create(acting_user=samfya_officer, household=first, programme=school), days_ago=2)

    report = run_overdue(django_capture_on_commit_callbacks)

    by_address = {message.to[0]: message for message in mail.outbox}
    # The focal point (Agency.email), the desk and the officer with an e-mail:
    # one message each. MOE has no focal-point e-mail; some users have none.
    assert sorted(by_address) == ["desk@samfya.example", "focal.point@mcdss.example", "officer@mcdss.example"]
    assert len(mail.outbox) == report.digests == 3
    focal = by_address["focal.point@mcdss.example"]
    assert all(r.number in focal.body for r in overdue_cash) and overdue_school.number not in focal.body
    assert focal.subject == "2 overdue referrals"
    desk = by_address["desk@samfya.example"]
    assert all(r.number in desk.body for r in [*overdue_cash, overdue_school])
    assert "Mary" not in desk.body  # numbers only: an e-mail leaves the district scoping
    assert desk.from_email == settings.DEFAULT_FROM_EMAIL


def test_a_person_who_is_also_the_focal_point_gets_one_digest(
    people, household, cash, mcdss, samfya_officer, django_capture_on_commit_callbacks
):
    Agency.objects.filter(pk=mcdss.pk).update(email="Officer@MCDSS.example")
    referral = due(referral_create(acting_user=samfya_officer, household=household, programme=cash), days_ago=2)
    run_overdue(django_capture_on_commit_callbacks)
    to_officer = [m for m in mail.outbox if m.to == ["officer@mcdss.example"]]
    assert len(to_officer) == 1 and to_officer[0].body.count(referral.number) == 1


def test_not_yet_due_drafts_and_closed_referrals_are_not_overdue(
    people, samfya_officer, samfya_village, cash, school, django_capture_on_commit_callbacks
):
    first = make_household(officer=samfya_officer, village=samfya_village, last_name="Banda")
    second = make_household(officer=samfya_officer, village=samfya_village, last_name="Phiri")
    due_today = due(referral_create(acting_user=samfya_officer, household=first, programme=cash), days_ago=0)
    draft = referral_create(acting_user=samfya_officer, household=second, programme=cash, send=False)
    closed = due(referral_create(acting_user=samfya_officer, household=first, programme=school), days_ago=5)
    referral_transition(
        referral=closed, to_status=S.REJECTED, acting_user=people["moe_samfya"], rejection_reason="capacity_full"
    )

    report = run_overdue(django_capture_on_commit_callbacks)

    assert report.marked == 0 and mail.outbox == []
    assert not Referral.objects.filter(pk__in=[due_today.pk, draft.pk, closed.pk], overdue_since__isnull=False).exists()


def test_an_accepted_referral_not_completed_by_its_due_date_is_overdue(
    people, household, cash, samfya_officer, django_capture_on_commit_callbacks
):
    referral = referral_create(acting_user=samfya_officer, household=household, programme=cash)
    referral_transition(referral=referral, to_status=S.ACCEPTED, acting_user=people["mcdss_samfya"])
    due(referral, days_ago=1)
    assert run_overdue(django_capture_on_commit_callbacks).marked == 1


# --- expiry ---------------------------------------------------------------------------------


def test_a_referral_long_past_due_expires_by_the_system(people, samfya_officer, samfya_village, cash):
    old = make_household(officer=samfya_officer, village=samfya_village, last_name="Banda")
    recent = make_household(officer=samfya_officer, village=samfya_village, last_name="Phiri")
    dead = due(
        referral_create(acting_user=samfya_officer, household=old, programme=cash), days_ago=EXPIRY_GRACE_DAYS + 1
    )
    late = due(
        referral_create(acting_user=samfya_officer, household=recent, programme=cash), days_ago=EXPIRY_GRACE_DAYS
    )

    report = referrals_expire(today=TODAY)

    dead.refresh_from_db()
    late.refresh_from_db()
    assert (report.expired, report.refused) == (1, 0)
    assert dead.status == S.EXPIRED and dead.closed_at is not None
    assert late.status == S.SENT
    event = ReferralEvent.objects.get(referral=dead, to_status=S.EXPIRED)
    assert event.actor is None and event.from_status == S.SENT and f"{EXPIRY_GRACE_DAYS} days" in event.reason
    assert referrals_expire(today=TODAY).expired == 0
    # Closed, a new referral to the programme may be made.
    referral_create(acting_user=samfya_officer, household=old, programme=cash)


def test_expiry_goes_in_batches_and_reaches_a_push_agency(
    people, samfya_officer, samfya_village, cash, mcdss, monkeypatch
):
    Agency.objects.filter(pk=mcdss.pk).update(
        referral_delivery=ReferralDelivery.WEBHOOK, webhook_url="http://127.0.0.1:9/hook", webhook_secret="s3cret"
    )
    monkeypatch.setattr("referrals.followup.EXPIRE_BATCH", 2)
    referrals = [
        due(
            referral_create(
                acting_user=samfya_officer,
                household=make_household(officer=samfya_officer, village=samfya_village, last_name=f"Family{i}"),
                programme=cash,
            ),
            days_ago=EXPIRY_GRACE_DAYS + 5,
        )
        for i in range(5)
    ]
    assert referrals_expire(today=TODAY).expired == 5
    assert set(Referral.objects.values_list("status", flat=True)) == {S.EXPIRED}
    assert Delivery.objects.filter(referral__in=referrals, event__to_status=S.EXPIRED).count() == 5


# --- the beat --------------------------------------------------------------------------------


def test_the_tasks_run_the_jobs_for_the_day_given(people, household, cash, samfya_officer):
    referral = due(referral_create(acting_user=samfya_officer, household=household, programme=cash), days_ago=40)
    marked = referrals_mark_overdue_task.apply(kwargs={"today": TODAY.isoformat()}).get()
    assert marked["marked"] == 1
    expired = referrals_expire_task.apply(kwargs={"today": TODAY.isoformat()}).get()
    assert expired == {"expired": 1, "refused": 0}
    referral.refresh_from_db()
    assert referral.status == S.EXPIRED and referral.overdue_since is None


def test_both_jobs_are_on_the_beat_schedule():
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"referrals.tasks.referrals_mark_overdue", "referrals.tasks.referrals_expire"} <= tasks
