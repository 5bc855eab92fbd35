"""Reconciliation: the provider's file applied to an exported cycle. Every row ends in one outcome,
a paid payment is final, the same file twice changes nothing, and the totals agree to the cent."""

import csv
import datetime
import io
from decimal import Decimal

import openpyxl
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Sum
from django.utils import timezone

from payments.models import (
    CycleStatus,
    Payment,
    PaymentChannel,
    PaymentEvent,
    PaymentStatus,
    Reconciliation,
    RowOutcome,
)
from payments.payroll import (
    payment_cycle_create,
    payments_reissue,
    payroll_approve,
    payroll_export,
    payroll_generate,
)
from payments.reconciliation import reconciliation_import, reconciliation_report_csv

from .makers import enrol_active, first_of_month, make_cash_programme, make_household

HEADER = ("reference", "status", "amount", "paid_at", "provider_transaction_id")
# Yesterday, as a provider writes it: local time, no zone.
PAID_AT = (timezone.localtime() - datetime.timedelta(days=1)).strftime("%Y-%m-%d %H:%M")


@pytest.fixture
def programme(agency, samfya, lunga, ministry_user):
    # An amount with cents, so that sums are checked to the cent.
    return make_cash_programme(agency=agency, districts=[samfya, lunga], ministry_user=ministry_user, formula="123.45")


def exported_cycle(*, programme, maker, checker, period_start=None):
    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=period_start or first_of_month())
    payroll_generate(acting_user=maker, cycle=cycle)
    payroll_approve(acting_user=checker, cycle=cycle)
    payroll_export(acting_user=maker, cycle=cycle, channel=PaymentChannel.MOBILE_MONEY)
    cycle.refresh_from_db()
    return cycle


@pytest.fixture
def cycle(maker, checker, programme, samfya_officer, samfya_village, lunga_officer, lunga_village):
    """November's cycle, exported: four payments of 123.45 (three in Samfya, one in Lunga)."""
    households = [
        make_household(officer=samfya_officer, village=samfya_village, last_name=name)
        for name in ("Banda", "Phiri", "Tembo")
    ] + [make_household(officer=lunga_officer, village=lunga_village, last_name="Zulu")]
    for i, household in enumerate(households):
        enrol_active(household=household, programme=programme, maker=maker, checker=checker, account_number=f"09770{i}")
    return exported_cycle(programme=programme, maker=maker, checker=checker)


def references(cycle) -> list[str]:
    return list(cycle.payments.order_by("reference").values_list("reference", flat=True))


def provider_file(rows, header=HEADER, delimiter=",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def paid(reference, amount="123.45", transaction="TX-1", at=PAID_AT):
    return (reference, "paid", amount, at, transaction)


def outcomes(reconciliation) -> dict[int, str]:
    return dict(reconciliation.rows.values_list("line", "outcome"))


def messages(reconciliation) -> dict[int, str]:
    return dict(reconciliation.rows.values_list("line", "message"))


def test_a_paid_row_records_the_amount_time_transaction_and_who(cycle, maker):
    first = references(cycle)[0]
    reconciliation = reconciliation_import(
        acting_user=maker,
        cycle=cycle,
        file_name="airtel-nov.csv",
        content=provider_file([paid(first, transaction="AM123")]),
    )
    assert outcomes(reconciliation) == {2: RowOutcome.APPLIED}
    payment = Payment.objects.get(reference=first)
    assert payment.status == PaymentStatus.PAID
    assert payment.paid_amount == Decimal("123.45")
    assert timezone.localtime(payment.paid_at).strftime("%Y-%m-%d %H:%M") == PAID_AT
    assert payment.provider_transaction_id == "AM123"
    assert payment.reconciled_at is not None
    event = payment.events.get(to_status=PaymentStatus.PAID)
    assert (event.from_status, event.actor, event.reconciliation) == (PaymentStatus.PENDING, maker, reconciliation)
    assert "airtel-nov.csv, line 2" in event.reason
    assert reconciliation.uploaded_by == maker
    assert (reconciliation.rows_total, reconciliation.rows_applied, reconciliation.rows_rejected) == (1, 1, 0)


def test_failed_and_unclaimed_rows_are_recorded_and_can_be_reissued_later(cycle, maker):
    first, second, *_ = references(cycle)
    reconciliation = reconciliation_import(
        acting_user=maker,
        cycle=cycle,
        file_name="nov.csv",
        content=provider_file([(first, "FAILED", "0", "", "TX-F"), (second, "unclaimed", "123.45", PAID_AT, "")]),
    )
    assert outcomes(reconciliation) == {2: RowOutcome.APPLIED, 3: RowOutcome.APPLIED}
    failed = Payment.objects.get(reference=first)
    assert (failed.status, failed.paid_amount, failed.paid_at) == (PaymentStatus.FAILED, None, None)
    assert Payment.objects.get(reference=second).status == PaymentStatus.UNCLAIMED
    december = payment_cycle_create(acting_user=maker, programme=cycle.programme, period_start=first_of_month(2026, 12))
    assert payments_reissue(acting_user=maker, cycle=december) == 2


def test_importing_the_same_file_twice_changes_nothing(cycle, maker):
    content = provider_file([paid(ref, transaction=f"TX-{i}") for i, ref in enumerate(references(cycle))])
    first = reconciliation_import(acting_user=maker, cycle=cycle, file_name="nov.csv", content=content)
    paid_before = list(Payment.objects.filter(cycle=cycle).order_by("pk").values("pk", "paid_at", "reconciled_at"))
    again = reconciliation_import(acting_user=maker, cycle=cycle, file_name="nov.csv", content=content)
    assert first.rows_applied == 4
    assert (again.rows_applied, again.rows_unchanged, again.rows_rejected) == (0, 4, 0)
    assert set(outcomes(again).values()) == {RowOutcome.UNCHANGED}
    assert again.summary["same_file_as"] == [first.pk]
    assert list(Payment.objects.filter(cycle=cycle).order_by("pk").values("pk", "paid_at", "reconciled_at")) == (
        paid_before
    )
    assert PaymentEvent.objects.filter(payment__cycle=cycle, to_status=PaymentStatus.PAID).count() == 4


def test_a_paid_payment_is_never_paid_twice_nor_unpaid(cycle, maker):
    first = references(cycle)[0]
    reconciliation_import(acting_user=maker, cycle=cycle, file_name="a.csv", content=provider_file([paid(first)]))
    later = reconciliation_import(
        acting_user=maker,
        cycle=cycle,
        file_name="b.csv",
        content=provider_file([paid(first, transaction="TX-OTHER"), (first, "failed", "", "", "")]),
    )
    # The two rows also share a reference: a file that contradicts itself applies nothing.
    assert set(outcomes(later).values()) == {RowOutcome.DUPLICATE_ROW}
    once_more = reconciliation_import(
        acting_user=maker, cycle=cycle, file_name="c.csv", content=provider_file([paid(first, transaction="TX-OTHER")])
    )
    unpaid = reconciliation_import(
        acting_user=maker, cycle=cycle, file_name="d.csv", content=provider_file([(first, "failed", "", "", "")])
    )
    assert outcomes(once_more) == {2: RowOutcome.ALREADY_PAID}
    assert "TX-1" in messages(once_more)[2]
    assert outcomes(unpaid) == {2: RowOutcome.ALREADY_PAID}
    assert "final" in messages(unpaid)[2]
    payment = Payment.objects.get(reference=first)
    assert (payment.status, payment.provider_transaction_id) == (PaymentStatus.PAID, "TX-1")
    assert payment.events.filter(to_status=PaymentStatus.PAID).count() == 1


def test_a_failed_payment_collected_later_becomes_paid_but_not_unclaimed(cycle, maker):
    first = references(cycle)[0]
    reconciliation_import(
        acting_user=maker, cycle=cycle, file_name="a.csv", content=provider_file([(first, "failed", "", "", "")])
    )
    unclaimed = reconciliation_import(
        acting_user=maker, cycle=cycle, file_name="b.csv", content=provider_file([(first, "unclaimed", "", "", "")])
    )
    assert outcomes(unclaimed) == {2: RowOutcome.INVALID}
    assert messages(unclaimed)[2].startswith("status: the payment is already failed")
    collected = reconciliation_import(
        acting_user=maker, cycle=cycle, file_name="c.csv", content=provider_file([paid(first)])
    )
    assert outcomes(collected) == {2: RowOutcome.APPLIED}
    assert "collected after being reported failed" in messages(collected)[2]
    payment = Payment.objects.get(reference=first)
    assert payment.status == PaymentStatus.PAID
    assert list(payment.events.values_list("from_status", "to_status")) == [
        ("", PaymentStatus.PENDING),
        (PaymentStatus.PENDING, PaymentStatus.FAILED),
        (PaymentStatus.FAILED, PaymentStatus.PAID),
    ]


def test_a_reissued_payment_collected_after_all_points_at_its_reissue(cycle, maker):
    first = references(cycle)[0]
    reconciliation_import(
        acting_user=maker, cycle=cycle, file_name="a.csv", content=provider_file([(first, "unclaimed", "", "", "")])
    )
    december = payment_cycle_create(acting_user=maker, programme=cycle.programme, period_start=first_of_month(2026, 12))
    payments_reissue(acting_user=maker, cycle=december)
    collected = reconciliation_import(
        acting_user=maker, cycle=cycle, file_name="b.csv", content=provider_file([paid(first)])
    )
    assert outcomes(collected) == {2: RowOutcome.APPLIED}
    reissue = Payment.objects.get(reissue_of__reference=first)
    assert f"reissued as {reissue.reference}" in messages(collected)[2]


def test_every_other_outcome_with_its_reason(cycle, maker, checker, programme):
    first, second, third, fourth = references(cycle)
    december = exported_cycle(programme=programme, maker=maker, checker=checker, period_start=first_of_month(2026, 12))
    elsewhere = references(december)[0]
    content = provider_file(
        [
            paid(first),  # 2 applied
            paid(first),  # 3 the same row again
            paid(second, amount="120.00"),  # 4 amount mismatch
            paid("SCT-209901-1"),  # 5 unknown
            paid(elsewhere),  # 6 a payment of December
            (third, "paid", "1,50", PAID_AT, "TX"),  # 7 decimal comma
            (third, "paid", "abc", PAID_AT, "TX"),  # 8 not a number
            (third, "pending", "123.45", PAID_AT, "TX"),  # 9 not a status
            ("", "paid", "123.45", PAID_AT, "TX"),  # 10 no reference
            (third, "paid", "123.45", "15/11/2026", "TX"),  # 11 not an ISO date
            (third, "paid", "123.45", "", "TX"),  # 12 paid without a time
            (third, "paid", "123.455", PAID_AT, "TX"),  # 13 three decimals
            (fourth, "paid", "123.45", "2099-01-01 10:00", "TX"),  # 14 in the future
        ]
    )
    reconciliation = reconciliation_import(acting_user=maker, cycle=cycle, file_name="nov.csv", content=content)
    assert outcomes(reconciliation) == {
        2: RowOutcome.APPLIED,
        3: RowOutcome.DUPLICATE_ROW,
        4: RowOutcome.AMOUNT_MISMATCH,
        5: RowOutcome.UNKNOWN_REFERENCE,
        6: RowOutcome.UNKNOWN_REFERENCE,
        **dict.fromkeys(range(7, 15), RowOutcome.INVALID),
    }
    said = messages(reconciliation)
    assert "same as line 2" in said[3]
    assert said[4] == "amount: the file says 120.00, the payment is 123.45: not applied."
    assert "not of this cycle" in said[6] and "2026-12-01" in said[6]
    assert said[7].startswith("amount: '1,50' is not an amount")
    assert said[8].startswith("amount: 'abc' is not an amount")
    assert said[9] == "status: 'pending' is not one of paid, failed, unclaimed."
    assert said[10].startswith("reference: empty")
    assert said[11].startswith("paid_at: '15/11/2026' is not a date and time")
    assert said[12].startswith("paid_at: empty")
    assert said[13].startswith("amount: '123.455'")
    assert said[14].startswith("paid_at:") and "future" in said[14]
    assert Payment.objects.get(reference=second).status == PaymentStatus.PENDING
    assert Payment.objects.get(reference=third).status == PaymentStatus.PENDING
    assert reconciliation.summary["outcomes"] == {
        RowOutcome.APPLIED: 1,
        RowOutcome.UNCHANGED: 0,
        RowOutcome.UNKNOWN_REFERENCE: 2,
        RowOutcome.AMOUNT_MISMATCH: 1,
        RowOutcome.ALREADY_PAID: 0,
        RowOutcome.DUPLICATE_ROW: 1,
        RowOutcome.INVALID: 8,
    }
    assert (reconciliation.rows_total, reconciliation.rows_applied, reconciliation.rows_rejected) == (13, 1, 12)


def test_whole_amounts_are_read_exactly(cycle, maker):
    first, second, *_ = references(cycle)
    Payment.objects.filter(reference__in=[first, second]).update(amount=Decimal("150.00"))
    reconciliation = reconciliation_import(
        acting_user=maker,
        cycle=cycle,
        file_name="nov.csv",
        content=provider_file([paid(first, amount="150"), paid(second, amount="150.0")]),
    )
    assert set(outcomes(reconciliation).values()) == {RowOutcome.APPLIED}


def test_a_file_without_a_column_is_refused_naming_it(cycle, maker):
    content = provider_file([(references(cycle)[0], "123.45", PAID_AT)], header=("reference", "amount", "paid_at"))
    with pytest.raises(ValidationError) as problem:
        reconciliation_import(acting_user=maker, cycle=cycle, file_name="nov.csv", content=content)
    assert "no status column" in problem.value.message_dict["file"][0]
    assert not Reconciliation.objects.exists()


def test_a_file_that_is_neither_csv_nor_excel_is_refused(cycle, maker):
    with pytest.raises(ValidationError) as problem:
        reconciliation_import(acting_user=maker, cycle=cycle, file_name="nov.pdf", content=b"%PDF-1.4")
    assert "CSV" in problem.value.message_dict["file"][0]


def test_the_providers_own_column_names_and_semicolons_are_understood(cycle, maker):
    first = references(cycle)[0]
    content = provider_file(
        [(first, "Successful", "123.45", PAID_AT, "MP-77")],
        header=("Payment Reference", "Transaction Status", "Amount Paid", "Date Paid", "Transaction ID"),
        delimiter=";",
    )
    reconciliation = reconciliation_import(acting_user=maker, cycle=cycle, file_name="nov.csv", content=content)
    assert outcomes(reconciliation) == {2: RowOutcome.APPLIED}
    assert Payment.objects.get(reference=first).provider_transaction_id == "MP-77"


def test_messages_name_the_column_as_the_file_does(cycle, maker):
    content = provider_file(
        [(references(cycle)[0], "paid", "12,00", PAID_AT, "X")],
        header=("Ref", "Status", "Amount Paid", "Paid On", "Receipt"),
    )
    reconciliation = reconciliation_import(acting_user=maker, cycle=cycle, file_name="nov.csv", content=content)
    assert messages(reconciliation)[2].startswith("Amount Paid: '12,00' is not an amount")


def test_an_excel_file_is_read_with_its_numbers_and_dates(cycle, maker):
    first, second, *_ = references(cycle)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(list(HEADER))
    yesterday = (timezone.localtime() - datetime.timedelta(days=1)).replace(tzinfo=None, microsecond=0)
    sheet.append([first, "paid", 123.45, yesterday, "XL-1"])
    sheet.append([second, "failed", None, None, None])
    sheet.append([None, None, None, None, None])  # an empty row Excel keeps: not a row
    out = io.BytesIO()
    workbook.save(out)
    reconciliation = reconciliation_import(acting_user=maker, cycle=cycle, file_name="nov.xlsx", content=out.getvalue())
    assert outcomes(reconciliation) == {2: RowOutcome.APPLIED, 3: RowOutcome.APPLIED}
    payment = Payment.objects.get(reference=first)
    assert payment.paid_amount == Decimal("123.45")
    assert timezone.localtime(payment.paid_at).replace(tzinfo=None) == yesterday


def test_totals_in_the_file_the_database_and_the_report_agree_to_the_cent(cycle, maker):
    refs = references(cycle)
    rows = [paid(ref, transaction=f"TX-{i}") for i, ref in enumerate(refs[:3])] + [(refs[3], "failed", "", "", "")]
    content = provider_file(rows)
    file_total = sum(Decimal(row[2]) for row in rows if row[1] == "paid")
    reconciliation = reconciliation_import(acting_user=maker, cycle=cycle, file_name="nov.csv", content=content)
    database_total = Payment.objects.filter(cycle=cycle, status=PaymentStatus.PAID).aggregate(t=Sum("paid_amount"))["t"]
    report = list(csv.DictReader(io.StringIO(reconciliation_report_csv(reconciliation=reconciliation).decode())))
    report_total = sum(Decimal(r["amount"]) for r in report if r["outcome"] == "applied" and r["status"] == "paid")
    assert file_total == database_total == report_total == Decimal("370.35")
    summary = reconciliation.summary
    assert (
        summary["file"]["paid_total"] == summary["applied"]["paid_total"] == summary["cycle"]["paid_total"] == "370.35"
    )
    assert summary["currency"] == "ZMW"
    assert (summary["cycle"]["paid"], summary["cycle"]["failed"], summary["cycle"]["pending"]) == (3, 1, 0)


def test_the_report_has_one_line_per_row_and_runs_no_formula(cycle, maker):
    first = references(cycle)[0]
    content = provider_file([paid(first), ("=HYPERLINK(1)", "paid", "1", PAID_AT, "@x")])
    reconciliation = reconciliation_import(acting_user=maker, cycle=cycle, file_name="nov.csv", content=content)
    report = list(csv.reader(io.StringIO(reconciliation_report_csv(reconciliation=reconciliation).decode())))
    assert report[0] == [
        "line",
        "reference",
        "status",
        "amount",
        "paid_at",
        "provider_transaction_id",
        "outcome",
        "message",
    ]
    assert [row[0] for row in report[1:]] == ["2", "3"]
    assert report[1][6] == "applied" and report[1][7] == "Paid: recorded."
    assert report[2][1] == "'=HYPERLINK(1)" and report[2][5] == "'@x"


def test_the_cycle_closes_when_no_payment_is_pending(cycle, maker):
    refs = references(cycle)
    partly = reconciliation_import(
        acting_user=maker, cycle=cycle, file_name="a.csv", content=provider_file([paid(r) for r in refs[:3]])
    )
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.EXPORTED and partly.summary["cycle"]["pending"] == 1
    reconciliation_import(
        acting_user=maker, cycle=cycle, file_name="b.csv", content=provider_file([(refs[3], "unclaimed", "", "", "")])
    )
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.CLOSED and cycle.closed_at is not None
    closed = cycle.events.get(action="closed")
    assert closed.actor == maker and closed.detail["paid"] == 3 and closed.detail["paid_total"] == "370.35"
    assert cycle.events.filter(action="reconciled").count() == 2
    # Still open to a late collection, and to the same file again.
    late = reconciliation_import(
        acting_user=maker, cycle=cycle, file_name="c.csv", content=provider_file([paid(refs[3])])
    )
    assert late.rows_applied == 1
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.CLOSED


def test_a_cycle_not_yet_exported_cannot_be_reconciled(maker, checker, programme, samfya_officer, samfya_village):
    enrol_active(household=make_household(officer=samfya_officer, village=samfya_village), programme=programme,
                 maker=maker, checker=checker)  # fmt: skip
    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())
    payroll_generate(acting_user=maker, cycle=cycle)
    payroll_approve(acting_user=checker, cycle=cycle)
    content = provider_file([paid(references(cycle)[0])])
    with pytest.raises(ValidationError) as problem:
        reconciliation_import(acting_user=maker, cycle=cycle, file_name="nov.csv", content=content)
    assert "export its payment file" in problem.value.message_dict["status"][0]
    assert Payment.objects.get(cycle=cycle).status == PaymentStatus.PENDING


def test_front_desk_cannot_reconcile_a_programmes_payments(cycle, samfya_officer):
    with pytest.raises(PermissionDenied):
        reconciliation_import(
            acting_user=samfya_officer,
            cycle=cycle,
            file_name="nov.csv",
            content=provider_file([paid(references(cycle)[0])]),
        )
    assert not Payment.objects.filter(cycle=cycle, status=PaymentStatus.PAID).exists()
