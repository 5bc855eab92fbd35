"""Payment cycles: generation (set-based, idempotent, amounts from current data), maker-checker
approval against the budget, payment files with their control line, reissues."""

import csv
import datetime
import hashlib
import io
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from payments.models import CycleStatus, EnrolmentEventKind, Payment, PaymentChannel, PaymentStatus
from payments.payroll import (
    payment_cycle_create,
    payment_file,
    payments_reissue,
    payroll_approve,
    payroll_export,
    payroll_generate,
)
from registry.models import Relationship
from registry.services import member_add

from .makers import enrol_active, first_of_month, make_household


@pytest.fixture
def enrolled(maker, checker, samfya_officer, samfya_village, lunga_officer, lunga_village, programme):
    households = [
        make_household(officer=samfya_officer, village=samfya_village, last_name="Banda"),
        make_household(officer=samfya_officer, village=samfya_village, last_name="Phiri"),
        make_household(officer=lunga_officer, village=lunga_village, last_name="Zulu"),
    ]
    return [
        enrol_active(household=h, programme=programme, maker=maker, checker=checker, account_number=f"09770000{i}")
        for i, h in enumerate(households)
    ]


def test_generation_makes_one_payment_per_active_enrolment(maker, programme, enrolled):
    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())
    report = payroll_generate(acting_user=maker, cycle=cycle)
    assert report.created == 3
    assert report.total_amount == Decimal("450.00")
    cycle.refresh_from_db()
    assert (cycle.status, cycle.payment_count, cycle.total_amount) == (CycleStatus.GENERATED, 3, Decimal("450.00"))
    assert [(row["district"], row["count"], row["total"]) for row in report.by_district] == [
        ("Lunga", 1, Decimal("150.00")),
        ("Samfya", 2, Decimal("300.00")),
    ]
    payment = Payment.objects.get(enrolment=enrolled[0])
    assert payment.reference == f"SCT-202611-{enrolled[0].pk}"
    assert payment.events.get().actor == maker


def test_generating_twice_creates_nothing_new(maker, programme, enrolled):
    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())
    payroll_generate(acting_user=maker, cycle=cycle)
    again = payroll_generate(acting_user=maker, cycle=cycle)
    assert again.created == 0
    assert Payment.objects.filter(cycle=cycle).count() == 3


def test_amount_is_recalculated_from_current_data_with_its_reason(maker, samfya_officer, programme, enrolled):
    household = enrolled[0].household
    for n in range(4):  # five members: the amount doubles
        member_add(
            acting_user=samfya_officer,
            household=household,
            values={
                "first_name": f"Child{n}",
                "last_name": "Banda",
                "sex": "M",
                "relationship": Relationship.CHILD,
                "date_of_birth": datetime.date(2015, 1, 1),
            },
        )
    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())
    payroll_generate(acting_user=maker, cycle=cycle)
    payment = Payment.objects.get(enrolment=enrolled[0])
    assert payment.amount == Decimal("300.00")
    assert "was 150.00" in payment.amount_note
    enrolled[0].refresh_from_db()
    assert enrolled[0].amount == Decimal("300.00")
    change = enrolled[0].events.get(kind=EnrolmentEventKind.AMOUNT)
    assert change.changes == {"amount": ["150.00", "300.00"]}
    assert change.cycle == cycle


def test_cycles_do_not_overlap_and_start_on_the_first(maker, programme):
    payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())
    with pytest.raises(ValidationError):
        payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())
    with pytest.raises(ValidationError) as problem:
        payment_cycle_create(acting_user=maker, programme=programme, period_start=datetime.date(2026, 12, 5))
    assert "first of a month" in problem.value.message_dict["period_start"][0]


def test_front_desk_cannot_run_a_payroll(samfya_officer, programme):
    with pytest.raises(PermissionDenied):
        payment_cycle_create(acting_user=samfya_officer, programme=programme, period_start=first_of_month())


def test_payroll_approval_is_maker_checker(maker, checker, programme, enrolled):
    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())
    payroll_generate(acting_user=maker, cycle=cycle)
    with pytest.raises(ValidationError) as problem:
        payroll_approve(acting_user=maker, cycle=cycle)
    assert "Maker-checker" in problem.value.message_dict["approved_by"][0]
    approved = payroll_approve(acting_user=checker, cycle=cycle)
    assert approved.status == CycleStatus.APPROVED
    assert payroll_approve(acting_user=checker, cycle=cycle).status == CycleStatus.APPROVED  # a double click


def test_payroll_approval_checks_the_budget_ceiling(maker, checker, programme, enrolled, samfya):
    programme.coverage.filter(district=samfya).update(budget=Decimal("299.99"))
    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())
    payroll_generate(acting_user=maker, cycle=cycle)
    with pytest.raises(ValidationError) as problem:
        payroll_approve(acting_user=checker, cycle=cycle)
    messages = problem.value.message_dict["budget"]
    assert any("Samfya" in m and "299.99" in m for m in messages)
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.GENERATED


def test_payment_file_has_a_control_line_that_agrees_with_the_database(maker, checker, programme, enrolled):
    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())
    payroll_generate(acting_user=maker, cycle=cycle)
    with pytest.raises(ValidationError):
        payroll_export(acting_user=maker, cycle=cycle, channel=PaymentChannel.MOBILE_MONEY)
    payroll_approve(acting_user=checker, cycle=cycle)
    name, content = payroll_export(acting_user=maker, cycle=cycle, channel=PaymentChannel.MOBILE_MONEY)
    assert name == "SCT-202611-mobile_money.csv"
    text = content.decode()
    body, control = text[: text.rstrip("\n").rfind("\n") + 1], text.rstrip("\n").rsplit("\n", 1)[1]
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["wallet_number"] for r in rows] == ["097700000", "097700001", "097700002"]
    total = sum(Decimal(r["amount"]) for r in rows)
    assert control == f"TOTAL,3,{total:.2f},{hashlib.sha256(body.encode()).hexdigest()}"
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.EXPORTED and cycle.total_amount == total
    assert payment_file(cycle=cycle, channel=PaymentChannel.BANK)[2] == 0


def test_failed_payment_is_reissued_once_in_the_next_cycle_with_the_link(maker, checker, programme, enrolled):
    november = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())
    payroll_generate(acting_user=maker, cycle=november)
    failed = Payment.objects.get(enrolment=enrolled[1])
    Payment.objects.filter(pk=failed.pk).update(status=PaymentStatus.FAILED)
    december = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month(2026, 12))
    payroll_generate(acting_user=maker, cycle=december)
    assert payments_reissue(acting_user=maker, cycle=december) == 1
    assert payments_reissue(acting_user=maker, cycle=december) == 0
    reissue = failed.reissued_as
    assert reissue.cycle == december and reissue.amount == failed.amount
    assert reissue.reference == f"SCT-202612-R{failed.pk}"
    december.refresh_from_db()
    assert december.payment_count == 4
