"""Two people (or two workers) doing the same thing at the same moment, on PostgreSQL with real
threads and separate connections: nothing happens twice, no limit is crossed.

Each test first holds the row the services lock (from the test's own connection), starts the
two calls, waits until PostgreSQL shows both of them waiting for that lock, then lets go: the
two calls really do meet at the lock, every time, instead of racing only when the scheduler
happens to interleave them.
"""

import csv
import io
import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from payments.models import (
    Enrolment,
    EnrolmentEvent,
    EnrolmentStatus,
    Payment,
    PaymentChannel,
    PaymentCycle,
    PaymentEvent,
    PaymentStatus,
    Reconciliation,
)
from payments.payroll import payment_cycle_create, payroll_approve, payroll_export, payroll_generate
from payments.reconciliation import reconciliation_import
from payments.services import enrolment_apply, enrolment_transition
from programmes.models import ProgrammeDistrict
from registry.tests.factories import UserFactory
from spf.models import Role

from .makers import enrol_active, first_of_month, make_household

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# How long to wait for the two calls to reach the lock before letting go anyway (then the
# assertions judge whatever happened). Generous: the machine is shared.
REACH_LOCK_SECONDS = 30


def at_once(*calls) -> list:
    """Run each call in its own thread (its own database connection); what each returned or raised."""
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            results[index] = call()
        except Exception as problem:  # noqa: BLE001 - collected for the assertions
            results[index] = problem
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    return threads, results


def held_then_released(locked_queryset, *calls) -> list:
    """Lock the rows of `locked_queryset`, start the calls, let go once both wait for the lock."""
    with transaction.atomic():
        list(locked_queryset.select_for_update())
        threads, results = at_once(*calls)
        deadline = time.monotonic() + REACH_LOCK_SECONDS
        while time.monotonic() < deadline and any(t.is_alive() for t in threads):
            if waiting_for_a_lock() >= len(calls):
                break
            time.sleep(0.02)
    for thread in threads:
        thread.join()
    return results


def waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:
        # Inside a transaction the activity view is read once and kept: ask for a fresh look.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def verified_enrolment(*, household, programme, maker) -> Enrolment:
    enrolment = enrolment_apply(
        acting_user=maker,
        household=household,
        programme=programme,
        source="agency",
        channel=PaymentChannel.MOBILE_MONEY,
        account_number="0977000001",
    )
    return enrolment_transition(enrolment=enrolment, to_status=EnrolmentStatus.VERIFIED, acting_user=maker)


@pytest.fixture
def second_checker(agency, samfya, lunga):
    return UserFactory(username="checker2_mcdss", role=Role.PROGRAMME_OFFICER, agency=agency, districts=[samfya, lunga])


def test_two_approvals_of_the_same_enrolment_at_once_approve_it_once(
    household, programme, maker, checker, second_checker
):
    enrolment = verified_enrolment(household=household, programme=programme, maker=maker)

    def approve(user):
        return lambda: enrolment_transition(enrolment=enrolment, to_status=EnrolmentStatus.APPROVED, acting_user=user)

    results = held_then_released(Enrolment.objects.filter(pk=enrolment.pk), approve(checker), approve(second_checker))
    # The second finds it approved already: answered as it stands, nothing recorded (`repeated`).
    assert all(isinstance(r, Enrolment) for r in results), results
    approved = [r for r in results if not r.repeated]
    assert len(approved) == 1 and sum(r.repeated for r in results) == 1, results
    assert EnrolmentEvent.objects.filter(enrolment=enrolment, to_status=EnrolmentStatus.APPROVED).count() == 1
    enrolment.refresh_from_db()
    assert enrolment.status == EnrolmentStatus.APPROVED and enrolment.approved_by == approved[0].approved_by


def test_two_approvals_racing_for_the_last_place_in_a_district_never_exceed_capacity(
    programme, maker, checker, second_checker, samfya_officer, samfya_village, samfya
):
    ProgrammeDistrict.objects.filter(programme=programme, district=samfya).update(capacity=2)
    enrol_active(
        household=make_household(officer=samfya_officer, village=samfya_village, last_name="Banda"),
        programme=programme,
        maker=maker,
        checker=checker,
    )
    waiting = [
        verified_enrolment(
            household=make_household(officer=samfya_officer, village=samfya_village, last_name=name),
            programme=programme,
            maker=maker,
        )
        for name in ("Phiri", "Tembo")
    ]
    results = held_then_released(
        ProgrammeDistrict.objects.filter(programme=programme, district=samfya),
        lambda: enrolment_transition(enrolment=waiting[0], to_status=EnrolmentStatus.APPROVED, acting_user=checker),
        lambda: enrolment_transition(
            enrolment=waiting[1], to_status=EnrolmentStatus.APPROVED, acting_user=second_checker
        ),
    )
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(refused) == 1, results
    assert "2 of 2 places are taken" in refused[0].message_dict["capacity"][0]
    holding = Enrolment.objects.filter(
        programme=programme, district=samfya, status__in=(EnrolmentStatus.APPROVED, EnrolmentStatus.ACTIVE)
    )
    assert holding.count() == 2


@pytest.fixture
def enrolled(programme, maker, checker, samfya_officer, samfya_village, lunga_officer, lunga_village):
    households = [
        make_household(officer=samfya_officer, village=samfya_village, last_name=name)
        for name in ("Banda", "Phiri", "Tembo")
    ] + [make_household(officer=lunga_officer, village=lunga_village, last_name="Zulu")]
    return [
        enrol_active(household=h, programme=programme, maker=maker, checker=checker, account_number=f"09770{i}")
        for i, h in enumerate(households)
    ]


def test_two_generations_of_the_same_cycle_at_once_make_one_payment_each(programme, maker, checker, enrolled):
    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())
    results = held_then_released(
        PaymentCycle.objects.filter(pk=cycle.pk),
        lambda: payroll_generate(acting_user=maker, cycle=cycle),
        lambda: payroll_generate(acting_user=checker, cycle=cycle),
    )
    assert sorted(r.created for r in results) == [0, 4], results
    assert Payment.objects.filter(cycle=cycle).count() == 4
    assert set(Payment.objects.filter(cycle=cycle).values_list("enrolment_id", flat=True)) == {e.pk for e in enrolled}
    assert PaymentEvent.objects.filter(payment__cycle=cycle).count() == 4
    cycle.refresh_from_db()
    assert cycle.payment_count == 4 and cycle.events.filter(action__in=("generated", "regenerated")).count() == 2


def test_two_imports_of_the_same_reconciliation_file_at_once_pay_each_payment_once(programme, maker, checker, enrolled):
    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())
    payroll_generate(acting_user=maker, cycle=cycle)
    payroll_approve(acting_user=checker, cycle=cycle)
    payroll_export(acting_user=maker, cycle=cycle, channel=PaymentChannel.MOBILE_MONEY)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["reference", "status", "amount", "paid_at", "transaction_id"])
    for i, payment in enumerate(cycle.payments.order_by("reference")):
        writer.writerow([payment.reference, "paid", f"{payment.amount:.2f}", "2026-11-20 09:30", f"TX-{i}"])
    content = out.getvalue().encode()

    def reconcile(user):
        return lambda: reconciliation_import(acting_user=user, cycle=cycle, file_name="nov.csv", content=content)

    results = held_then_released(PaymentCycle.objects.filter(pk=cycle.pk), reconcile(maker), reconcile(checker))
    assert all(isinstance(r, Reconciliation) for r in results), results
    assert sorted((r.rows_applied, r.rows_unchanged) for r in results) == [(0, 4), (4, 0)]
    assert Payment.objects.filter(cycle=cycle, status=PaymentStatus.PAID).count() == 4
    for payment in Payment.objects.filter(cycle=cycle):
        assert payment.events.filter(to_status=PaymentStatus.PAID).count() == 1
    cycle.refresh_from_db()
    assert cycle.events.filter(action="closed").count() == 1
