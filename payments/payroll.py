"""Payment cycles: creating one for a period, generating its payroll in
set-based SQL, reissuing failed payments, approving it (maker-checker, budget
ceiling) and writing the payment files for the provider.

Generation is idempotent: the unique index on (enrolment, cycle) and
`ON CONFLICT DO NOTHING` make a second run, or two at once, add nothing twice;
the cycle row lock makes two runs take turns.
"""

import csv
import datetime
import hashlib
import io
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.utils import timezone

from programmes.models import BenefitFrequency, Programme, ProgrammeDistrict, ProgrammeStatus
from spf.models import ExportKind, Role
from spf.running import RunningJob, job_claim, job_is_orphaned
from spf.services import personal_data_export_record

from .amounts import benefit_amounts_sql
from .models import (
    REISSUABLE_STATUSES,
    CycleEvent,
    CycleStatus,
    Enrolment,
    EnrolmentEvent,
    EnrolmentStatus,
    Payment,
    PaymentChannel,
    PaymentCycle,
    PaymentEvent,
    PaymentStatus,
)
from .services import acting_agency_id

C = CycleStatus

# Months a cycle of each frequency covers.
CYCLE_MONTHS = {
    BenefitFrequency.ONE_OFF: 1,
    BenefitFrequency.MONTHLY: 1,
    BenefitFrequency.BIMONTHLY: 2,
    BenefitFrequency.QUARTERLY: 3,
    BenefitFrequency.TERMLY: 4,
    BenefitFrequency.ANNUAL: 12,
}
# Cycles whose money is committed: what counts against the yearly budget.
COMMITTED_CYCLES = (C.APPROVED, C.EXPORTED, C.CLOSED)


def may_run_payroll(user, programme: Programme) -> bool:
    """The programme's agency and ministry staff run its payroll (every district: it is one file)."""
    if user is None:
        return False
    return user.is_superuser or user.role == Role.MINISTRY or acting_agency_id(user) == programme.agency_id


def _require(user, programme: Programme, what: str) -> None:
    if not may_run_payroll(user, programme):
        raise PermissionDenied(f"Only {programme.agency.name} or ministry staff can {what}.")


def _event(cycle: PaymentCycle, action: str, acting_user, **detail) -> None:
    CycleEvent.objects.create(cycle=cycle, action=action, actor=acting_user, detail=detail)


def _add_months(day: datetime.date, months: int) -> datetime.date:
    month = day.month - 1 + months
    return day.replace(year=day.year + month // 12, month=month % 12 + 1, day=1)


# --- creating a cycle ---------------------------------------------------------------------


@transaction.atomic
def payment_cycle_create(*, acting_user, programme: Programme, period_start: datetime.date) -> PaymentCycle:
    """A cycle for the period starting `period_start` (the first of a month), as long as the programme's schedule."""
    programme = (
        Programme.objects.select_for_update(of=("self",))
        .select_related("agency", "current_version")
        .get(pk=programme.pk)
    )
    _require(acting_user, programme, "create a payment cycle")
    errors: dict[str, list[str]] = {}
    if programme.status != ProgrammeStatus.ACTIVE:
        errors["programme"] = [f"{programme.name} is {programme.get_status_display().lower()}: it makes no payments."]
    elif programme.current_version is None or not programme.current_version.benefit_formula.strip():
        errors["programme"] = [f"{programme.name} has no benefit formula: there is nothing to pay."]
    if not isinstance(period_start, datetime.date):
        errors["period_start"] = ["Give the first day of the period (YYYY-MM-DD)."]
    elif period_start.day != 1:
        errors["period_start"] = [f"A period starts on the first of a month, not on {period_start:%d %B %Y}."]
    if errors:
        raise ValidationError(errors)
    months = CYCLE_MONTHS.get(programme.frequency, 1)
    period_end = _add_months(period_start, months) - datetime.timedelta(days=1)
    overlapping = programme.payment_cycles.filter(period_start__lte=period_end, period_end__gte=period_start).first()
    if overlapping is not None:
        raise ValidationError(
            {
                "period_start": [
                    f"{programme.name} already has the cycle {overlapping.label}, which covers part of this period."
                ]
            }
        )
    cycle = PaymentCycle.objects.create(
        programme=programme,
        period_start=period_start,
        period_end=period_end,
        currency=programme.currency,
        created_by=acting_user,
    )
    _event(cycle, "created", acting_user, period=cycle.label)
    return cycle


# --- generating the payroll -------------------------------------------------------------------


@dataclass
class PayrollReport:
    created: int = 0
    amounts_changed: int = 0
    without_amount: int = 0
    payment_count: int = 0
    total_amount: Decimal = Decimal("0")
    by_district: list = field(default_factory=list)


def _json_pair(key: str, old_sql: str, new_sql: str) -> str:
    if connection.vendor == "postgresql":
        return f"jsonb_build_object('{key}', jsonb_build_array({old_sql}, {new_sql}))"
    return f"json_object('{key}', json_array({old_sql}, {new_sql}))"


def _as_text(sql: str) -> str:
    """A money column as text with two decimals, the same on both databases."""
    if connection.vendor == "postgresql":
        return f"CAST({sql} AS TEXT)"
    # %% : the query goes with parameters, and Django's debug log formats it with `%`.
    return f"printf('%%.2f', {sql})"


def _lock_cycle(cycle: PaymentCycle) -> PaymentCycle:
    return (
        PaymentCycle.objects.select_for_update(of=("self",))
        .select_related("programme", "programme__agency", "programme__current_version")
        .get(pk=cycle.pk)
    )


def _refresh_totals(cycle: PaymentCycle) -> None:
    totals = cycle.payments.aggregate(count=Count("pk"), total=Sum("amount"))
    cycle.payment_count, cycle.total_amount = totals["count"], totals["total"] or Decimal("0")


@transaction.atomic
def payroll_generate(*, acting_user, cycle: PaymentCycle, reference_date: datetime.date | None = None) -> PayrollReport:
    """One payment per active enrolment of the programme, its amount from the formula on current data.

    Set-based: the amounts are one query over the enrolled households, the
    payments one INSERT ... SELECT. Safe to run again until the payroll is
    approved (it adds the enrolments activated since); an enrolment whose
    amount changed gets an event saying so, and its payment says why.
    """
    cycle = _lock_cycle(cycle)
    programme = cycle.programme
    _require(acting_user, programme, "generate a payroll")
    if cycle.status not in (C.CREATED, C.GENERATED):
        raise ValidationError(
            {
                "status": [
                    f"The payroll of {cycle} is {cycle.get_status_display().lower()}: it can no longer be generated."
                ]
            }
        )
    reference_date = reference_date or cycle.period_start
    now = timezone.now()
    report = PayrollReport()
    active = Enrolment.objects.filter(
        programme=programme, status=EnrolmentStatus.ACTIVE, activated_at__date__lte=cycle.period_end
    )
    amounts = benefit_amounts_sql(programme=programme, enrolments=active, reference_date=reference_date)
    if amounts is None:
        raise ValidationError({"programme": [f"{programme.name} has no benefit formula: there is nothing to pay."]})
    temp = f"payroll_amounts_{uuid.uuid4().hex[:12]}"
    enrolment_table, payment_table = Enrolment._meta.db_table, Payment._meta.db_table
    prefix = f"{programme.code}-{cycle.period_start:%Y%m}-"
    active_sql, active_params = active.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One big query run once: compiling it costs more than it saves.
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(f"CREATE TEMPORARY TABLE {temp} AS {amounts[0]}", amounts[1])
        cursor.execute(
            f"CREATE INDEX ON {temp} (enrolment_id)"
            if connection.vendor == "postgresql"
            else f"CREATE INDEX {temp}_i ON {temp} (enrolment_id)"
        )
        new_amount = "COALESCE(a.amount, e.amount)"
        changed = "(a.amount IS NOT NULL AND (e.amount IS NULL OR a.amount <> e.amount))"
        cursor.execute(
            f"INSERT INTO {payment_table} (cycle_id, enrolment_id, household_id, district_id, programme_id, reference, "
            f"amount, currency, amount_note, channel, account_number, account_name, pay_point, status, reissue_of_id, "
            f"paid_amount, paid_at, provider_transaction_id, status_note, reconciled_at, created_at, dispute_note) "
            f"SELECT %s, e.id, e.household_id, e.district_id, e.programme_id, %s || CAST(e.id AS TEXT), "
            f"{new_amount}, e.currency, "
            f"CASE WHEN a.amount IS NULL THEN %s WHEN {changed} THEN %s || COALESCE({_as_text('e.amount')}, 'none') || ')' "
            f"ELSE '' END, "
            f"e.channel, e.account_number, e.account_name, e.pay_point, %s, NULL, NULL, NULL, '', '', NULL, %s, '' "
            f"FROM {enrolment_table} e LEFT JOIN {temp} a ON a.enrolment_id = e.id "
            f"WHERE e.id IN ({active_sql}) AND {new_amount} > 0 "
            f"ON CONFLICT (enrolment_id, cycle_id) WHERE reissue_of_id IS NULL DO NOTHING",
            [
                cycle.pk,
                prefix,
                "The formula needs information this household lacks: the last amount is kept.",
                "Recalculated from current data (was ",
                PaymentStatus.PENDING,
                now,
                *active_params,
            ],
        )
        report.created = cursor.rowcount
        cursor.execute(
            f"SELECT COUNT(*) FROM {enrolment_table} e LEFT JOIN {temp} a ON a.enrolment_id = e.id "
            # No amount now nor a last one (NULL) counts too: that enrolment gets no payment either.
            f"WHERE e.id IN ({active_sql}) AND NOT (COALESCE({new_amount}, 0) > 0)",
            active_params,
        )
        report.without_amount = cursor.fetchone()[0]
        # The enrolments whose amount changed: their history says so, then they take the new amount.
        version_id = programme.current_version_id
        cursor.execute(
            f"INSERT INTO {EnrolmentEvent._meta.db_table} (enrolment_id, kind, from_status, to_status, actor_id, reason, "
            f"changes, idempotency_key, cycle_id, at) "
            f"SELECT e.id, 'amount', '', '', %s, %s, {_json_pair('amount', _as_text('e.amount'), _as_text('a.amount'))}, "
            # The amounts' table holds the active enrolments only: joining it is the filter.
            f"'', %s, %s FROM {enrolment_table} e JOIN {temp} a ON a.enrolment_id = e.id WHERE {changed}",
            [
                acting_user.pk if acting_user else None,
                f"Recalculated for {cycle} from current data (rule version {programme.current_version.number}).",
                cycle.pk,
                now,
            ],
        )
        report.amounts_changed = cursor.rowcount
        if report.amounts_changed:
            cursor.execute(
                f"UPDATE {enrolment_table} SET amount = (SELECT a.amount FROM {temp} a WHERE a.enrolment_id = {enrolment_table}.id), "
                f"amount_rule_version_id = %s, updated_at = %s "
                f"WHERE id IN (SELECT e.id FROM {enrolment_table} e JOIN {temp} a ON a.enrolment_id = e.id "
                f"WHERE {changed})",
                [version_id, now],
            )
        _payment_events_for_new(
            cursor, cycle=cycle, acting_user=acting_user, now=now, reason="Generated in the payroll."
        )
        cursor.execute(f"DROP TABLE {temp}")
    _refresh_totals(cycle)
    first = cycle.status == C.CREATED
    cycle.status, cycle.generated_by, cycle.generated_at = C.GENERATED, acting_user, now
    cycle.save()
    report.payment_count, report.total_amount = cycle.payment_count, cycle.total_amount
    report.by_district = cycle_totals_by_district(cycle=cycle)
    _event(
        cycle,
        "generated" if first else "regenerated",
        acting_user,
        created=report.created,
        amounts_changed=report.amounts_changed,
        without_amount=report.without_amount,
        payment_count=report.payment_count,
        total_amount=f"{report.total_amount:.2f}",
    )
    return report


def _payment_events_for_new(cursor, *, cycle: PaymentCycle, acting_user, now: datetime.datetime, reason: str) -> None:
    cursor.execute(
        f"INSERT INTO {PaymentEvent._meta.db_table} (payment_id, from_status, to_status, actor_id, reconciliation_id, reason, at) "
        f"SELECT id, '', %s, %s, NULL, %s, %s FROM {Payment._meta.db_table} WHERE cycle_id = %s AND created_at = %s",
        [PaymentStatus.PENDING, acting_user.pk if acting_user else None, reason, now, cycle.pk, now],
    )


@transaction.atomic
def payments_reissue(*, acting_user, cycle: PaymentCycle, payment_ids: list[int] | None = None) -> int:
    """Pay again, in `cycle`, the failed and unclaimed payments of earlier cycles of the programme.

    Each reissue links to the payment it replaces (at most one reissue each, a
    unique index); the enrolment must still be active, and its current payment
    details are used (the reason for a failure is often a wrong account).
    `payment_ids` narrows to those payments. Returns how many were reissued.
    """
    cycle = _lock_cycle(cycle)
    programme = cycle.programme
    _require(acting_user, programme, "reissue payments")
    if cycle.status not in (C.CREATED, C.GENERATED):
        raise ValidationError(
            {
                "status": [
                    f"The payroll of {cycle} is {cycle.get_status_display().lower()}: reissue into a cycle not yet approved."
                ]
            }
        )
    candidates = Payment.objects.filter(
        programme=programme,
        status__in=REISSUABLE_STATUSES,
        cycle__period_start__lt=cycle.period_start,
        enrolment__status=EnrolmentStatus.ACTIVE,
        reissued_as__isnull=True,
    )
    if payment_ids is not None:
        candidates = candidates.filter(pk__in=payment_ids)
    ids_sql, ids_params = candidates.order_by().values("pk").query.sql_with_params()
    now = timezone.now()
    prefix = f"{programme.code}-{cycle.period_start:%Y%m}-R"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Payment._meta.db_table} (cycle_id, enrolment_id, household_id, district_id, programme_id, "
            f"reference, amount, currency, amount_note, channel, account_number, account_name, pay_point, status, "
            f"reissue_of_id, paid_amount, paid_at, provider_transaction_id, status_note, reconciled_at, created_at, "
            f"dispute_note) "
            f"SELECT %s, p.enrolment_id, p.household_id, p.district_id, p.programme_id, %s || CAST(p.id AS TEXT), "
            f"p.amount, p.currency, 'Reissue of ' || p.reference, e.channel, e.account_number, e.account_name, "
            f"e.pay_point, %s, p.id, NULL, NULL, '', '', NULL, %s, '' "
            f"FROM {Payment._meta.db_table} p JOIN {Enrolment._meta.db_table} e ON e.id = p.enrolment_id "
            f"WHERE p.id IN ({ids_sql}) ON CONFLICT (reissue_of_id) DO NOTHING",
            [cycle.pk, prefix, PaymentStatus.PENDING, now, *ids_params],
        )
        reissued = cursor.rowcount
        if reissued:
            _payment_events_for_new(
                cursor,
                cycle=cycle,
                acting_user=acting_user,
                now=now,
                reason="Reissue of a failed or unclaimed payment.",
            )
    if reissued:
        _refresh_totals(cycle)
        cycle.save()
        _event(cycle, "reissued", acting_user, count=reissued)
    return reissued


# --- approving ----------------------------------------------------------------------------------


def cycle_totals_by_district(*, cycle: PaymentCycle) -> list[dict]:
    """Per district: payments, amount, and how many are pending, paid, failed or unclaimed."""
    rows = (
        cycle.payments.values("district_id", "district__name")
        .annotate(
            count=Count("pk"),
            total=Sum("amount"),
            paid=Count("pk", filter=Q(status=PaymentStatus.PAID)),
            paid_total=Sum("paid_amount", filter=Q(status=PaymentStatus.PAID)),
            failed=Count("pk", filter=Q(status=PaymentStatus.FAILED)),
            unclaimed=Count("pk", filter=Q(status=PaymentStatus.UNCLAIMED)),
            pending=Count("pk", filter=Q(status=PaymentStatus.PENDING)),
        )
        .order_by("district__name")
    )
    return [
        {
            "district_id": row["district_id"],
            "district": row["district__name"],
            "count": row["count"],
            "total": row["total"] or Decimal("0"),
            "paid": row["paid"],
            "paid_total": row["paid_total"] or Decimal("0"),
            "failed": row["failed"],
            "unclaimed": row["unclaimed"],
            "pending": row["pending"],
        }
        for row in rows
    ]


def _budget_problems(cycle: PaymentCycle) -> list[str]:
    """Districts whose yearly budget this payroll would exceed, in words; the coverage rows are locked."""
    coverage = {
        row.district_id: row
        for row in ProgrammeDistrict.objects.select_for_update()
        .filter(programme=cycle.programme, budget__isnull=False)
        .select_related("district")
        .order_by("pk")
    }
    if not coverage:
        return []
    this_cycle = {
        row["district_id"]: row["total"] or Decimal("0")
        for row in cycle.payments.filter(district_id__in=coverage).values("district_id").annotate(total=Sum("amount"))
    }
    committed = {
        row["district_id"]: row["total"] or Decimal("0")
        for row in Payment.objects.filter(
            programme=cycle.programme,
            district_id__in=coverage,
            cycle__status__in=COMMITTED_CYCLES,
            cycle__period_start__year=cycle.period_start.year,
        )
        .exclude(status__in=REISSUABLE_STATUSES)
        .values("district_id")
        .annotate(total=Sum("amount"))
    }
    problems = []
    for district_id, amount in sorted(this_cycle.items()):
        row = coverage[district_id]
        spent = committed.get(district_id, Decimal("0"))
        if spent + amount > row.budget:
            problems.append(
                f"{row.district.name}: this payroll is {cycle.currency} {amount:,.2f}, {cycle.currency} {spent:,.2f} "
                f"is already committed in {cycle.period_start.year}, and the budget is {cycle.currency} {row.budget:,.2f}."
            )
    return problems


@transaction.atomic
def payroll_approve(*, acting_user, cycle: PaymentCycle, idempotency_key: str = "") -> PaymentCycle:
    """Approve a generated payroll: someone other than whoever generated it, within every district's budget.

    An approved payroll asked to be approved again (a double click, two checkers at once) is
    returned as it is, `repeated`: approved once, by whoever came first."""
    cycle = _lock_cycle(cycle)
    _require(acting_user, cycle.programme, "approve a payroll")
    cycle.repeated = cycle.status == C.APPROVED
    if cycle.repeated:
        return cycle
    if cycle.status != C.GENERATED:
        raise ValidationError(
            {
                "status": [
                    f"The payroll of {cycle} is {cycle.get_status_display().lower()}; only a generated payroll can be approved."
                ]
            }
        )
    if acting_user.pk == cycle.generated_by_id:
        raise ValidationError(
            {"approved_by": ["Maker-checker: you generated this payroll, so someone else must approve it."]}
        )
    if cycle.payment_count == 0:
        raise ValidationError({"status": [f"The payroll of {cycle} has no payments to approve."]})
    problems = _budget_problems(cycle)
    if problems:
        raise ValidationError({"budget": ["This payroll would exceed the yearly budget.", *problems]})
    cycle.status, cycle.approved_by, cycle.approved_at = C.APPROVED, acting_user, timezone.now()
    cycle.save()
    _event(cycle, "approved", acting_user, payment_count=cycle.payment_count, total_amount=f"{cycle.total_amount:.2f}")
    return cycle


# --- payment files -------------------------------------------------------------------------------

# One layout per channel: what the provider needs to pay, nothing more.
FILE_LAYOUTS = {
    PaymentChannel.BANK: ("reference", "account_name", "account_number", "amount", "currency"),
    PaymentChannel.MOBILE_MONEY: ("reference", "wallet_number", "account_name", "amount", "currency"),
    PaymentChannel.CASH: ("reference", "pay_point", "recipient_name", "household_number", "amount", "currency"),
}
# Rows fetched per round trip when writing a file of a national payroll.
FILE_CHUNK = 5000


def _file_row(channel: str, payment: dict) -> list[str]:
    amount = f"{payment['amount']:.2f}"
    if channel == PaymentChannel.BANK:
        return [payment["reference"], payment["account_name"], payment["account_number"], amount, payment["currency"]]
    if channel == PaymentChannel.MOBILE_MONEY:
        return [payment["reference"], payment["account_number"], payment["account_name"], amount, payment["currency"]]
    return [
        payment["reference"],
        payment["pay_point"],
        payment["account_name"],
        payment["household__number"],
        amount,
        payment["currency"],
    ]


def payment_file(*, cycle: PaymentCycle, channel: str) -> tuple[str, bytes, int, Decimal]:
    """The CSV the provider pays from: (file name, content, rows, total).

    The pending payments of the cycle for one channel, in reference order,
    then a control line: TOTAL, the number of payments, their sum, and the
    SHA-256 of the lines above it, so the provider can check nothing was lost
    or changed on the way.

    Cells are written as they are, not through spf.exports.safe_cell: the file is
    read field by field by the provider's system, not opened as a report, a wallet
    number may rightly start with "+", and a quote added to a name or a number
    would pay someone else (docs/payments.md).
    """
    if channel not in FILE_LAYOUTS:
        raise ValidationError({"channel": [f"Channel must be one of {', '.join(FILE_LAYOUTS)}."]})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FILE_LAYOUTS[channel])
    count, total = 0, Decimal("0")
    payments = (
        cycle.payments.filter(channel=channel, status=PaymentStatus.PENDING)
        .order_by("reference")
        .values("reference", "account_name", "account_number", "pay_point", "amount", "currency", "household__number")
    )
    for payment in payments.iterator(chunk_size=FILE_CHUNK):
        writer.writerow(_file_row(channel, payment))
        count += 1
        total += payment["amount"]
    body = out.getvalue()
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    content = body + f"TOTAL,{count},{total:.2f},{digest}\n"
    name = f"{cycle.programme.code}-{cycle.period_start:%Y%m}-{channel}.csv"
    return name, content.encode("utf-8"), count, total


@transaction.atomic
def payroll_export(*, acting_user, cycle: PaymentCycle, channel: str) -> tuple[str, bytes]:
    """The payment file for one channel; the cycle is marked sent to the provider. Each export is recorded."""
    cycle = _lock_cycle(cycle)
    _require(acting_user, cycle.programme, "export a payment file")
    if cycle.status not in (C.APPROVED, C.EXPORTED):
        raise ValidationError(
            {
                "status": [
                    f"The payroll of {cycle} is {cycle.get_status_display().lower()}; approve it before exporting."
                ]
            }
        )
    name, content, count, total = payment_file(cycle=cycle, channel=channel)
    if cycle.status == C.APPROVED:
        cycle.status, cycle.exported_by, cycle.exported_at = C.EXPORTED, acting_user, timezone.now()
        cycle.save()
    _event(
        cycle,
        "exported",
        acting_user,
        channel=channel,
        rows=count,
        total=f"{total:.2f}",
        sha256=hashlib.sha256(content).hexdigest(),
    )
    personal_data_export_record(
        user=acting_user,
        kind=ExportKind.PAYMENT_FILE,
        what=f"{cycle}: payment file for {channel}, {count:,} payments, {total:.2f} {cycle.currency}",
        file_name=name,
        rows=count,
    )
    return name, content


# --- generating in the background (the admin's action over many cycles) --------------------------------------

# A request is a cycle event, written with its outbox job; it is answered by the next of these after it.
GENERATION_QUEUED = "generation_queued"
GENERATION_REFUSED = "generation_refused"
GENERATION_ANSWERED = ("generated", "regenerated", GENERATION_REFUSED)
# A request this old, unanswered, that no worker is generating and whose job does not wait in the outbox
# lost its worker or its message: it is queued again. Generating 200,000 payments takes about 10 s
# (docs/benchmarks.md); ten minutes is far beyond a generation still under way or waiting its turn.
PAYROLL_REQUEST_LOST_AFTER = datetime.timedelta(minutes=10)


def _unanswered(requests):
    answered = CycleEvent.objects.filter(cycle=OuterRef("cycle"), action__in=GENERATION_ANSWERED, pk__gt=OuterRef("pk"))
    return requests.filter(action=GENERATION_QUEUED).exclude(Exists(answered))


@transaction.atomic
def payroll_generate_queue(*, acting_user, cycle: PaymentCycle) -> CycleEvent:
    """Have a worker generate the payroll: checked now as `payroll_generate` would, done by `payroll_generate_queued`.

    Returns the request (a cycle event: who asked, when). A request still unanswered is returned as it is:
    asking twice queues one generation.
    """
    from spf.outbox import job_queue

    from .tasks import payroll_generate_cycle

    cycle = _lock_cycle(cycle)
    _require(acting_user, cycle.programme, "generate a payroll")
    if cycle.status not in (C.CREATED, C.GENERATED):
        raise ValidationError(
            {
                "status": [
                    f"The payroll of {cycle} is {cycle.get_status_display().lower()}: it can no longer be generated."
                ]
            }
        )
    waiting = _unanswered(cycle.events.all()).order_by("pk").first()
    if waiting is not None:
        return waiting
    request = CycleEvent.objects.create(cycle=cycle, action=GENERATION_QUEUED, actor=acting_user)
    job_queue(task=payroll_generate_cycle, args=[cycle.pk, request.pk])
    return request


def payroll_generate_queued(*, cycle_id: int, request_id: int) -> str:
    """A worker answers a request of `payroll_generate_queue`; safe to run twice, says what it did.

    A request already answered (generated since, by this or by hand, or refused) is left alone. The
    generation is one transaction: a worker killed during it leaves nothing, and the request unanswered
    for the message to come back (Redis's visibility timeout) or `payroll_requests_resume` to queue it.
    """
    with job_claim(RunningJob.PAYROLL_GENERATION, cycle_id) as claimed:
        if not claimed:
            return "skipped: another worker is generating this payroll"
        with transaction.atomic():
            cycle = PaymentCycle.objects.select_for_update(of=("self",)).filter(pk=cycle_id).first()
            request = CycleEvent.objects.select_related("actor").filter(pk=request_id, cycle_id=cycle_id).first()
            if cycle is None or request is None:
                return "skipped: no such request"
            if not _unanswered(CycleEvent.objects.filter(pk=request_id)).exists():
                return "skipped: already answered"
            try:
                report = payroll_generate(acting_user=request.actor, cycle=cycle)
            except (ValidationError, PermissionDenied) as problem:
                why = "; ".join(problem.messages) if isinstance(problem, ValidationError) else str(problem)
                _event(cycle, GENERATION_REFUSED, request.actor, request=request_id, reason=why)
                return f"refused: {why}"
    return f"generated: {report.payment_count} payments"


def payroll_requests_resume(*, now: datetime.datetime | None = None) -> list[int]:
    """Queue again the requests that lost their worker or their message; returns their ids (docs/operations.md)."""
    from spf.outbox import job_is_waiting, job_queue

    from .tasks import payroll_generate_cycle

    now = now or timezone.now()
    requests = _unanswered(CycleEvent.objects.all()).filter(
        at__lt=now - PAYROLL_REQUEST_LOST_AFTER, cycle__status__in=(C.CREATED, C.GENERATED)
    )
    lost = []
    for request_id, cycle_id in requests.order_by("pk").values_list("pk", "cycle_id"):
        if not job_is_orphaned(RunningJob.PAYROLL_GENERATION, cycle_id):
            continue
        if job_is_waiting(task=payroll_generate_cycle, args=[cycle_id, request_id]):
            continue
        job_queue(task=payroll_generate_cycle, args=[cycle_id, request_id])
        lost.append(request_id)
    return lost


__all__ = [
    "CYCLE_MONTHS",
    "FILE_LAYOUTS",
    "PayrollReport",
    "cycle_totals_by_district",
    "may_run_payroll",
    "payment_cycle_create",
    "payment_file",
    "payments_reissue",
    "payroll_approve",
    "payroll_export",
    "payroll_generate",
    "payroll_generate_queue",
    "payroll_generate_queued",
    "payroll_requests_resume",
]
