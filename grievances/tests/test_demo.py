"""The demo's grievances: every category raised at each demo district's window over the last months,
worked through the services as far as each has got; the same for a seed, and nothing twice."""

import datetime
import io

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from grievances.demo import MONTHS_BACK, SCHEDULE
from grievances.models import AppealOutcome, Grievance, GrievanceCategory, GrievanceEvent, GrievanceStatus
from grievances.services import RESOLUTION_DAYS
from payments.models import PaymentStatus

pytestmark = pytest.mark.django_db

S = GrievanceStatus
SEED = 11
HOUSEHOLDS = 400  # enough paid households for the provider to report failures (payments.demo)


def seed_demo() -> None:
    call_command("seed_demo", households=HOUSEHOLDS, seed=SEED, chunk_size=200, stdout=io.StringIO())


def demo_grievances():
    return Grievance.objects.filter(events__idempotency_key__startswith="demo:", events__to_status=S.RECEIVED)


def stories() -> list[tuple]:
    def day(moment):
        return timezone.localtime(moment).date() if moment else None

    return sorted(
        (
            g.district.code,
            g.category,
            g.household.number if g.household else "",
            g.status,
            g.sensitive,
            day(g.created_at),
            day(g.resolved_at),
            g.due_date,
            g.overdue_since,
        )
        for g in demo_grievances().select_related("district", "household")
    )


def test_the_demo_raises_every_kind_of_grievance_and_works_each_as_far_as_it_has_got():
    seed_demo()
    today = timezone.localdate()
    grievances = list(demo_grievances().select_related("household", "payment", "created_by", "assigned_agency"))

    assert len(grievances) == 2 * sum(count for _category, count in SCHEDULE)
    assert {g.category for g in grievances} == set(GrievanceCategory.values)
    assert {S.ACKNOWLEDGED, S.ASSIGNED, S.INVESTIGATED, S.ESCALATED, S.RESOLVED, S.CLOSED} <= {
        g.status for g in grievances
    }
    for grievance in grievances:
        received = timezone.localtime(grievance.created_at).date()
        assert today - datetime.timedelta(days=MONTHS_BACK * 31) <= received < today
        assert grievance.due_date == received + datetime.timedelta(days=RESOLUTION_DAYS[grievance.category])
        assert grievance.created_by.username.startswith("frontdesk_")
        events = list(grievance.events.order_by("at", "pk"))
        assert events[0].to_status == S.RECEIVED and events[-1].to_status == grievance.status
        assert [e.at for e in events] == sorted(e.at for e in events) and events[-1].at <= timezone.now()
    resolved = [g for g in grievances if g.resolved_at]
    days = [(g.resolved_at - g.created_at).days for g in resolved]
    assert min(days) >= 0
    assert any(d > RESOLUTION_DAYS[g.category] for g, d in zip(resolved, days, strict=True)), "some resolved late"
    overdue = [g for g in grievances if g.overdue_since]
    assert 1 <= len(overdue) <= 6
    assert all(g.is_open and g.due_date < g.overdue_since <= today for g in overdue)
    sensitive = [g for g in grievances if g.sensitive]
    assert 1 <= len(sensitive) <= 4 and not any(g.assigned_agency_id for g in sensitive)
    appeals = [g for g in grievances if g.category == GrievanceCategory.ELIGIBILITY and g.programme_id]
    assert appeals and all(g.appealed_outcome == "not_eligible" for g in appeals)
    assert all(g.appeal_outcome == AppealOutcome.NOT_UPHELD for g in appeals if g.resolved_at)
    unpaid = [g for g in grievances if g.payment_id]
    assert unpaid and all(
        g.payment.household_id == g.household_id and g.payment.status in (PaymentStatus.FAILED, PaymentStatus.UNCLAIMED)
        for g in unpaid
    )


def test_the_same_seed_raises_the_same_grievances_and_seeding_again_adds_nothing():
    with transaction.atomic():
        seed_demo()
        first = stories()
        transaction.set_rollback(True)
    seed_demo()
    assert stories() == first and first
    counts = (Grievance.objects.count(), GrievanceEvent.objects.count())

    seed_demo()

    assert (Grievance.objects.count(), GrievanceEvent.objects.count()) == counts
