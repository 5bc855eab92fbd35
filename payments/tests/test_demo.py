"""The payments demo: its cycles are the months before it is seeded, and seeding again adds none."""

import datetime

import pytest
from django.core.management import call_command
from django.utils import timezone

from payments.demo import demo_payments_ensure
from payments.models import PaymentCycle


def first_of_months_before(day: datetime.date, count: int) -> list[datetime.date]:
    months = []
    year, month = day.year, day.month
    for _ in range(count):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        months.append(datetime.date(year, month, 1))
    return sorted(months)


@pytest.mark.django_db
def test_the_demo_pays_the_three_months_before_it_is_seeded_and_a_later_run_adds_no_cycle():
    call_command("seed_demo", households=300, seed=7, chunk_size=100, stdout=open("/dev/null", "w"))
    cycles = PaymentCycle.objects.order_by("period_start")
    assert cycles.exists()
    today = timezone.localdate()
    for programme_id in set(cycles.values_list("programme_id", flat=True)):
        months = list(cycles.filter(programme_id=programme_id).values_list("period_start", flat=True))
        # A monthly programme: the three months before this one, all paid and reconciled by now.
        assert months == first_of_months_before(today, 3)
    before = list(cycles.values_list("pk", flat=True))

    demo_payments_ensure(today=today + datetime.timedelta(days=70))

    assert list(PaymentCycle.objects.order_by("period_start").values_list("pk", flat=True)) == before
