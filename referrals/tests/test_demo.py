"""The demo's referral work: suggestions the window sent over the last months and what the agencies
did with them, in every status, through the services; the same for a seed, and nothing twice."""

import datetime
import io

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from payments.models import Enrolment, EnrolmentSource, EnrolmentStatus
from programmes.models import Agency, ProgrammeStatus
from referrals.demo import MONTHS_BACK, SENT_PER_PROGRAMME, stuck_agency
from referrals.followup import EXPIRY_GRACE_DAYS
from referrals.models import Referral, ReferralEvent, ReferralStatus

pytestmark = pytest.mark.django_db

S = ReferralStatus
SEED = 11
HOUSEHOLDS = 240


def seed_demo() -> None:
    call_command("seed_demo", households=HOUSEHOLDS, seed=SEED, chunk_size=120, stdout=io.StringIO())


def sent_by_the_demo():
    return Referral.objects.filter(events__idempotency_key="demo:sent").select_related(
        "household", "programme", "agency", "district"
    )


def stories() -> list[tuple]:
    """Every demo referral as the dashboard and the worklists read it, by day (the steps of today may fall
    at another minute of it)."""

    def day(moment):
        return timezone.localtime(moment).date() if moment else None

    return sorted(
        (
            r.household.number,
            r.programme.code,
            r.status,
            r.rejection_reason,
            day(r.sent_at),
            r.due_date,
            day(r.closed_at),
            r.overdue_since,
        )
        for r in sent_by_the_demo()
    )


def test_the_demo_sends_referrals_that_end_in_every_status_over_the_last_months():
    seed_demo()
    today = timezone.localdate()
    referrals = list(sent_by_the_demo())

    assert {r.status for r in referrals} == set(S.values) - {S.DRAFT}
    per_district_programme: dict = {}
    for referral in referrals:
        key = (referral.district_id, referral.programme_id)
        per_district_programme[key] = per_district_programme.get(key, 0) + 1
        sent = timezone.localtime(referral.sent_at).date()
        assert today - datetime.timedelta(days=MONTHS_BACK * 31) <= sent < today
        assert referral.due_date == sent + datetime.timedelta(days=referral.programme.referral_sla_days)
        assert referral.created_at < referral.sent_at
        assert (referral.closed_at is None) == referral.is_open
        if referral.closed_at:
            assert referral.sent_at < referral.closed_at <= timezone.now()
    assert max(per_district_programme.values()) <= SENT_PER_PROGRAMME[1]
    rejected = [r for r in referrals if r.status == S.REJECTED]
    assert all(r.rejection_reason for r in rejected) and len({r.rejection_reason for r in rejected}) > 1
    overdue = [r for r in referrals if r.overdue_since]
    assert overdue and all(r.is_open and r.due_date < r.overdue_since <= today for r in overdue)
    # Nothing open is older than the expiry job allows: it would have expired it.
    assert all(r.due_date >= today - datetime.timedelta(days=EXPIRY_GRACE_DAYS) for r in referrals if r.is_open)

    # Every step has its history row, by the window or the agency, in order.
    for referral in referrals:
        events = list(referral.events.select_related("actor").order_by("at", "pk"))
        assert [e.to_status for e in events][:2] == [S.DRAFT, S.SENT]
        assert events[1].actor.username == f"frontdesk_{referral.district.name.lower()}"
        for event in events[2:]:
            if event.to_status in (S.RECEIVED, S.ACCEPTED, S.REJECTED, S.COMPLETED):
                assert event.actor.agency_id == referral.agency_id
        assert events[-1].to_status == referral.status

    # One agency has fallen behind: the largest share of what it was sent still waits.
    waiting: dict = {}
    for referral in referrals:
        counts = waiting.setdefault(referral.agency, [0, 0])
        counts[0] += referral.status in (S.SENT, S.RECEIVED)
        counts[1] += 1
    behind = stuck_agency(list(Agency.objects.filter(programmes__status=ProgrammeStatus.ACTIVE).distinct()), SEED)
    assert max(waiting, key=lambda agency: waiting[agency][0] / waiting[agency][1]) == behind

    # Accepted referrals end in an enrolment, whose activation completes them.
    enrolled = Enrolment.objects.filter(
        source=EnrolmentSource.REFERRAL, referral__in=[r.pk for r in referrals], status=EnrolmentStatus.ACTIVE
    )
    assert enrolled.exists()
    assert all(e.referral.status == S.COMPLETED for e in enrolled.select_related("referral"))


def test_the_same_seed_tells_the_same_stories_and_seeding_again_adds_nothing():
    with transaction.atomic():
        seed_demo()
        first = stories()
        transaction.set_rollback(True)
    seed_demo()
    assert stories() == first and first
    counts = (Referral.objects.count(), ReferralEvent.objects.count(), Enrolment.objects.count())

    seed_demo()

    assert (Referral.objects.count(), ReferralEvent.objects.count(), Enrolment.objects.count()) == counts
