"""The demo's enrolments and payments: every page of the payments part has
something real to show.

For each demo programme with a benefit formula, a share of the eligible demo
households is enrolled (applied and verified by the agency's demo officer,
approved and activated by a second officer of the agency, `checker_<code>`:
maker-checker needs two people), then three past payment cycles are run
through the real payroll services: created, generated, approved by the other
officer, exported, and reconciled from a provider's file in which most
payments are paid and a few failed or unclaimed (the next cycle reissues
them). Between cycles a few enrolments are suspended, reinstated or ended, a
few recent applications wait at each step of the work lists, and a few
enrolments of households no longer eligible wait for a review.

Deterministic: who is enrolled, how they are paid and what the provider
reports are functions of the household number and the cycle (`zlib.crc32`),
and the cycles are the last periods before the month the demo is first seeded
(as the demo's referrals and grievances count back from that day, so the
dashboard's year shows them). Idempotent: a household with any enrolment in
the programme is not enrolled again, a programme's cycles keep the months of
its first cycle, and a cycle that exists is not run again, so seeding twice
adds nothing.

The bulk of the enrolments (already active before the first cycle) is written
straight to the tables, as the registry demo writes its households: through the
services they would take minutes at a national scale. The values are those the
services write (the amount from the formula in the same SQL, one history row
per step with its actor). Everything after, a few dozen changes, goes through
the services.
"""

import csv
import datetime
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from programmes.models import EligibilityOutcome, EligibilityResult, Programme, ProgrammeStatus, TargetUnit
from registry.countries import current_country
from registry.demo import REFERENCE_DATE
from registry.models import Household, HouseholdStatus, Location, LocationLevel
from spf.models import Role, User

from .amounts import benefit_amounts_sql
from .models import (
    Enrolment,
    EnrolmentEvent,
    EnrolmentSource,
    EnrolmentStatus,
    ExitReason,
    PaymentChannel,
    PaymentCycle,
    PaymentStatus,
)
from .payroll import (
    CYCLE_MONTHS,
    payment_cycle_create,
    payments_reissue,
    payroll_approve,
    payroll_export,
    payroll_generate,
)
from .services import (
    enrolment_apply,
    enrolment_transition,
    enrolments_flag_lost_eligibility,
)

E = EnrolmentStatus

# Share of the eligible households whose benefit amount is known that the demo
# enrols, in percent: enough that the payroll, its totals by district and the
# work lists look like a district's, few enough that many eligible households
# still show the gap (eligible, not enrolled) the committee looks at. A
# household whose amount is not known (the formula lacks information) could not
# be approved, so it is not enrolled.
ENROLLED_PERCENT = 60
# Share, after those, left as recent applications waiting in the work lists.
WAITING_PERCENT = 10
# At most this many enrolled per district, and never more than this share of a
# district's capacity: room is left for the places a demo user approves.
MAX_PER_DISTRICT = 1000
CAPACITY_SHARE = Decimal("0.8")
# Households no longer eligible but enrolled (they qualified when enrolled), per
# thousand of those not eligible: a handful on the review list.
REVIEW_PER_MILLE = 3
# Recent applications left at each step of the work lists (applied, verified, approved).
WAITING_PER_STEP = 6
WAITING = WAITING_PER_STEP * 3
# The past cycles: this many periods, the last before the month the demo is seeded.
CYCLES = 3
# What the provider reports, in percent of the payments of a cycle: the rest are paid.
FAILED_PERCENT = 3
UNCLAIMED_PERCENT = 3
# Enrolments written per INSERT.
BATCH = 2000

# Pay points for cash, by ward: the ward office where the household collects.
PAY_POINT = "{ward} ward pay point"


@dataclass
class DemoPaymentsReport:
    enrolments: int = 0
    cycles: int = 0
    payments: int = 0
    users: list = field(default_factory=list)

    def words(self) -> str:
        if not (self.enrolments or self.cycles):
            return "Payments: demo enrolments and cycles already seeded; nothing added."
        return (
            f"Payments: {self.enrolments:,} enrolments and {self.cycles} past payment cycles "
            f"({self.payments:,} payments, reconciled)."
        )


def _bucket(text: str, salt: str) -> int:
    """0..99, a pure function of the text: the same household lands in the same bucket on every run."""
    return zlib.crc32(f"{salt}:{text}".encode()) % 100


def _per_mille(text: str, salt: str) -> int:
    return zlib.crc32(f"{salt}:review:{text}".encode()) % 1000


def _digits(text: str, salt: str, count: int) -> str:
    return f"{zlib.crc32(f'{salt}:{text}'.encode()):010d}"[-count:]


def _months_after(day: datetime.date, months: int) -> datetime.date:
    month = day.month - 1 + months
    return datetime.date(day.year + month // 12, month % 12 + 1, 1)


def _local(day: datetime.date, hour: int = 9) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour)))


def demo_checkers_ensure(*, agencies, password: str | None = None) -> list[User]:
    """A second programme officer per agency, `checker_<agency code>`: maker-checker needs two people."""
    password = password or settings.DEMO_PASSWORD
    districts = list(Location.objects.filter(level=LocationLevel.DISTRICT, code__in=current_country().demo_districts))
    checkers = []
    for agency in agencies:
        user, created = User.objects.get_or_create(
            username=f"checker_{agency.code.lower()}",
            defaults={"role": Role.PROGRAMME_OFFICER, "agency": agency},
        )
        if created:
            user.set_password(password)
        user.role, user.agency = Role.PROGRAMME_OFFICER, agency
        user.save()
        user.districts.set(districts)
        checkers.append(user)
    return checkers


def _payment_details(number: str, ward: str) -> dict:
    bucket = _bucket(number, "channel")
    if bucket < 45:
        return {"channel": PaymentChannel.MOBILE_MONEY, "account_number": "097" + _digits(number, "wallet", 7)}
    if bucket < 60:
        return {"channel": PaymentChannel.BANK, "account_number": "6" + _digits(number, "bank", 9)}
    return {"channel": PaymentChannel.CASH, "pay_point": PAY_POINT.format(ward=ward)}


def _candidates(programme: Programme, districts: list[Location]) -> Iterator[dict]:
    """The programme's assessed demo households with no enrolment in it, with what the demo needs of each.

    Streamed: at a million households the caller keeps only the few it picks."""
    rows = (
        EligibilityResult.objects.filter(
            programme=programme,
            household__district__in=districts,
            household__status=HouseholdStatus.ACTIVE,
        )
        .exclude(household__enrolments__programme=programme)
        .values(
            "outcome",
            "amount",
            "household_id",
            "household__number",
            "household__district_id",
            "household__village__parent__name",
            "household__head__first_name",
            "household__head__middle_name",
            "household__head__last_name",
        )
        .order_by("household__number")
    )
    return (
        {
            "outcome": row["outcome"],
            "amount_known": row["amount"] is not None,
            "household_id": row["household_id"],
            "number": row["household__number"],
            "district_id": row["household__district_id"],
            "ward": row["household__village__parent__name"] or "",
            "head": " ".join(
                part
                for part in (
                    row["household__head__first_name"],
                    row["household__head__middle_name"],
                    row["household__head__last_name"],
                )
                if part
            ),
        }
        for row in rows.iterator(chunk_size=BATCH)
    )


def _district_room(programme: Programme) -> dict[int, int]:
    """How many more the demo may enrol in each district: its cap, less the places already held."""
    room = {}
    held = {
        row["district_id"]: row["n"]
        for row in Enrolment.objects.filter(programme=programme, status__in=(E.APPROVED, E.ACTIVE, E.SUSPENDED))
        .values("district_id")
        .annotate(n=Count("pk"))
    }
    for coverage in programme.coverage.all():
        cap = MAX_PER_DISTRICT
        if coverage.capacity is not None:
            cap = min(cap, int(coverage.capacity * CAPACITY_SHARE))
        room[coverage.district_id] = max(0, cap - held.get(coverage.district_id, 0))
    return room


def _enrol_active_in_bulk(
    *, programme: Programme, chosen: list[dict], maker: User, checker: User, before: datetime.date
) -> int:
    """Write active enrolments for `chosen` with the history the services would write; returns how many."""
    if not chosen:
        return 0
    enrolments = []
    for row in chosen:
        applied = _local(before - datetime.timedelta(days=40 + _bucket(row["number"], "applied") % 20))
        enrolments.append(
            Enrolment(
                household_id=row["household_id"],
                programme=programme,
                district_id=row["district_id"],
                status=E.ACTIVE,
                source=EnrolmentSource.AGENCY,
                currency=programme.currency,
                account_name=row["head"][:160],
                applied_at=applied,
                applied_by=maker,
                verified_at=applied + datetime.timedelta(days=2),
                verified_by=maker,
                approved_at=applied + datetime.timedelta(days=9),
                approved_by=checker,
                activated_at=applied + datetime.timedelta(days=10),
                amount_rule_version=programme.current_version,
                created_at=applied,
                **_payment_details(row["number"], row["ward"]),
            )
        )
    created = Enrolment.objects.bulk_create(enrolments, batch_size=BATCH)
    ids = [e.pk for e in created]
    # The amount from the formula, as approval sets it: one query for all of them.
    query = benefit_amounts_sql(
        programme=programme, enrolments=Enrolment.objects.filter(pk__in=ids), reference_date=before
    )
    with connection.cursor() as cursor:
        cursor.execute(*query)
        amounts = {pk: amount for pk, amount in cursor.fetchall()}
    # A household whose formula lacks information could not have been approved: not enrolled.
    without = [pk for pk in ids if amounts.get(pk) is None or Decimal(str(amounts[pk])) <= 0]
    Enrolment.objects.filter(pk__in=without).delete()
    kept = [e for e in created if e.pk not in set(without)]
    for enrolment in kept:
        enrolment.amount = Decimal(str(amounts[enrolment.pk])).quantize(Decimal("0.01"))
    Enrolment.objects.bulk_update(kept, ["amount"], batch_size=BATCH)
    events = []
    for e in kept:
        events += [
            EnrolmentEvent(enrolment=e, to_status=E.APPLIED, actor=maker, at=e.applied_at),
            EnrolmentEvent(enrolment=e, from_status=E.APPLIED, to_status=E.VERIFIED, actor=maker, at=e.verified_at),
            EnrolmentEvent(
                enrolment=e,
                from_status=E.VERIFIED,
                to_status=E.APPROVED,
                actor=checker,
                changes={"amount": [None, f"{e.amount:.2f}"]},
                at=e.approved_at,
            ),
            EnrolmentEvent(enrolment=e, from_status=E.APPROVED, to_status=E.ACTIVE, actor=checker, at=e.activated_at),
        ]
    EnrolmentEvent.objects.bulk_create(events, batch_size=BATCH)
    return len(kept)


def _provider_file(cycle: PaymentCycle, exported: list[bytes]) -> bytes:
    """What the provider sends back for the payment files it was sent: most paid, a few failed or unclaimed."""
    payments = [
        (row[0], row[-2])
        for content in exported
        for row in list(csv.reader(io.StringIO(content.decode("utf-8"))))[1:]
        if row and row[0] != "TOTAL"
    ]
    # Which payments fail is a function of whose they are (the household, the cycle, a reissue or
    # not), not of their references, which carry ids another database numbers differently: ranked by
    # a hash, the first few fail and the next few are not collected (at least one of each in a payroll
    # of ten or more).
    whose = {
        reference: f"{number}:{cycle.period_start}:{'reissue' if reissue_of else ''}"
        for reference, number, reissue_of in cycle.payments.values_list("reference", "household__number", "reissue_of")
    }
    ranked = sorted(reference for reference, _amount in payments)
    ranked.sort(key=lambda reference: (zlib.crc32(f"provider:{whose[reference]}".encode()), whose[reference]))
    share = max(1, len(ranked) * FAILED_PERCENT // 100) if len(ranked) >= 10 else 0
    failed = set(ranked[:share])
    unclaimed = set(ranked[share : share + max(share, len(ranked) * UNCLAIMED_PERCENT // 100)])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["reference", "status", "amount", "paid_at", "transaction_id"])
    for reference, amount in payments:
        bucket = _bucket(whose[reference], "provider")
        paid_on = cycle.period_start + datetime.timedelta(days=5 + bucket % 15)
        if reference in failed:
            writer.writerow([reference, "failed", "0", "", ""])
        elif reference in unclaimed:
            writer.writerow([reference, "unclaimed", "0", "", ""])
        else:
            moment = datetime.datetime.combine(paid_on, datetime.time(10 + bucket % 6, bucket % 60))
            writer.writerow(
                [reference, "paid", amount, moment.isoformat(sep=" "), "TX" + _digits(whose[reference], "tx", 9)]
            )
    return out.getvalue().encode("utf-8")


def _run_cycle(*, programme: Programme, period_start: datetime.date, maker: User, checker: User) -> PaymentCycle:
    """One past cycle through the real services: create, reissue, generate, approve, export, reconcile."""
    from .reconciliation import reconciliation_import

    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=period_start)
    payments_reissue(acting_user=maker, cycle=cycle)
    if not payroll_generate(acting_user=maker, cycle=cycle).payment_count:
        return cycle  # nobody to pay (no amount known): the cycle waits, generated
    cycle = payroll_approve(acting_user=checker, cycle=cycle)
    exported = []
    for channel in PaymentChannel.values:
        if cycle.payments.filter(channel=channel, status=PaymentStatus.PENDING).exists():
            _name, content = payroll_export(acting_user=maker, cycle=cycle, channel=channel)
            exported.append(content)
    if exported:
        reconciliation_import(
            acting_user=maker,
            cycle=cycle,
            file_name=f"{programme.code}-{period_start:%Y%m}-provider.csv",
            content=_provider_file(cycle, exported),
        )
    cycle.refresh_from_db()
    return cycle


def _by_bucket(enrolments, salt: str, count: int) -> list[Enrolment]:
    ranked = sorted(enrolments, key=lambda e: (_bucket(e.household.number, salt), e.household.number))
    return ranked[:count]


def _between_cycles(*, programme: Programme, after_cycle: int, checker: User) -> None:
    """What happens to a caseload between two payments: a few suspended, one reinstated, a few leave."""
    active = list(
        Enrolment.objects.filter(programme=programme, status=E.ACTIVE, review_since__isnull=True).select_related(
            "household"
        )
    )
    if after_cycle == 1:
        for enrolment in _by_bucket(active, "suspend", 3):
            enrolment_transition(
                enrolment=enrolment,
                to_status=E.SUSPENDED,
                acting_user=checker,
                reason="Not found at the pay point twice; suspended until the household is seen at the office.",
            )
    elif after_cycle == 2:
        suspended = list(Enrolment.objects.filter(programme=programme, status=E.SUSPENDED).select_related("household"))
        for enrolment in _by_bucket(suspended, "reinstate", 1):
            enrolment_transition(
                enrolment=enrolment,
                to_status=E.ACTIVE,
                acting_user=checker,
                reason="The head came to the office with the household's documents.",
            )
        for enrolment, exit_reason, note in zip(
            _by_bucket(active, "exit", 2),
            (ExitReason.MOVED, ExitReason.GRADUATED),
            ("Moved to the Copperbelt to join relatives.", "The head found regular work at the sugar estate."),
            strict=False,
        ):
            enrolment_transition(
                enrolment=enrolment, to_status=E.EXITED, acting_user=checker, reason=note, exit_reason=exit_reason
            )


def _waiting_applications(*, programme: Programme, rows: list[dict], maker: User, checker: User) -> int:
    """Recent applications through the services, left at each step: to verify, to approve, to activate."""
    made = 0
    steps = (E.APPLIED, E.VERIFIED, E.APPROVED)
    for index, row in enumerate(rows[:WAITING]):
        stop = steps[index % len(steps)]
        details = _payment_details(row["number"], row["ward"])
        enrolment = enrolment_apply(
            acting_user=maker,
            household=Household.objects.get(pk=row["household_id"]),
            programme=programme,
            source=EnrolmentSource.AGENCY,
            reason="Found eligible at the one-stop shop; confirmed by the agency's visit.",
            **details,
        )
        if stop in (E.VERIFIED, E.APPROVED):
            enrolment = enrolment_transition(enrolment=enrolment, to_status=E.VERIFIED, acting_user=maker)
        if stop == E.APPROVED:
            try:
                enrolment_transition(enrolment=enrolment, to_status=E.APPROVED, acting_user=checker)
            except ValidationError:
                pass  # the formula lacks information: it waits, verified, for the record to be completed

        made += 1
    return made


def _demo_programmes() -> list[Programme]:
    programmes = (
        Programme.objects.filter(status=ProgrammeStatus.ACTIVE, current_version__isnull=False)
        .exclude(current_version__benefit_formula="")
        .select_related("agency", "current_version")
        .order_by("code")
    )
    # Programmes that serve one person enrol a chosen member: the demo keeps to households.
    return [p for p in programmes if p.target_unit == TargetUnit.HOUSEHOLD]


@transaction.atomic
def demo_payments_ensure(*, password: str | None = None, today: datetime.date | None = None) -> DemoPaymentsReport:
    """Enrolments and three past, reconciled payment cycles for each demo programme with a formula (see the module)."""
    today = today or timezone.localdate()
    report = DemoPaymentsReport()
    programmes = _demo_programmes()
    if not programmes:
        return report
    agencies = {p.agency_id: p.agency for p in programmes}
    checkers = {c.agency_id: c for c in demo_checkers_ensure(agencies=agencies.values(), password=password)}
    report.users = list(checkers.values())
    districts = list(Location.objects.filter(level=LocationLevel.DISTRICT, code__in=current_country().demo_districts))
    for programme in programmes:
        months = CYCLE_MONTHS.get(programme.frequency, 1)
        first = programme.payment_cycles.order_by("period_start").values_list("period_start", flat=True).first()
        # Never before the households were registered (the registry demo's reference date).
        first_period = first or max(
            _months_after(today.replace(day=1), -months * CYCLES), REFERENCE_DATE.replace(day=1)
        )
        maker = User.objects.filter(username=f"officer_{programme.agency.code.lower()}").first()
        checker = checkers[programme.agency_id]
        if maker is None:
            continue
        candidates = _candidates(programme, districts)
        room = _district_room(programme)
        chosen, waiting = [], []
        for row in candidates:
            bucket = _bucket(row["number"], programme.code)
            if row["outcome"] == EligibilityOutcome.ELIGIBLE:
                if bucket < ENROLLED_PERCENT and row["amount_known"] and room.get(row["district_id"], 0) > 0:
                    chosen.append(row)
                    room[row["district_id"]] -= 1
                elif ENROLLED_PERCENT <= bucket < ENROLLED_PERCENT + WAITING_PERCENT and len(waiting) < WAITING:
                    waiting.append(row)
            elif (
                row["outcome"] == EligibilityOutcome.NOT_ELIGIBLE
                and _per_mille(row["number"], programme.code) < REVIEW_PER_MILLE
            ):
                # Enrolled when it qualified; its situation has changed since.
                chosen.append(row)
        report.enrolments += _enrol_active_in_bulk(
            programme=programme, chosen=chosen, maker=maker, checker=checker, before=first_period
        )
        cycles_before = report.cycles
        for number in range(CYCLES):
            period_start = _months_after(first_period, months * number)
            if programme.payment_cycles.filter(period_start=period_start).exists():
                continue
            if not Enrolment.objects.filter(programme=programme, status=E.ACTIVE).exists():
                break  # a population too small to enrol anyone: nothing to pay yet
            if number:
                _between_cycles(programme=programme, after_cycle=number, checker=checker)
            cycle = _run_cycle(programme=programme, period_start=period_start, maker=maker, checker=checker)
            report.cycles += 1
            report.payments += cycle.payment_count
        if report.cycles > cycles_before:
            # Applications made since the last cycle: once, with the cycles (a second run makes none).
            report.enrolments += _waiting_applications(programme=programme, rows=waiting, maker=maker, checker=checker)
    enrolments_flag_lost_eligibility()
    return report


# Accepted demo referrals the agency enrols per district and programme (the last step of a referral:
# enrolment closes it as completed). A few: the work lists, the household page and the dashboard's
# coverage show the loop closed for every programme, not only the paying ones enrolled in bulk above.
FROM_REFERRALS_PER_DISTRICT = 1
REFERRAL_KEY = "demo:from-referral"


def demo_enrolments_from_referrals(*, password: str | None = None) -> DemoPaymentsReport:
    """Enrol, through the services, a few households whose demo referral to a programme was
    accepted: applied from the referral and verified by the agency's officer, approved and activated by
    its checker; activation completes the referral. The most recently accepted first (they were
    accepted weeks ago and are enrolled now). Idempotent: a district and programme with an enrolment
    applied under `REFERRAL_KEY` is left alone. The report counts the enrolments applied for and holds
    the agencies' checkers."""
    from referrals.models import Referral, ReferralEvent, ReferralStatus

    report = DemoPaymentsReport()
    # Every programme for households, paying or not: an in-kind programme's enrolment holds a place too.
    programmes = [
        p
        for p in Programme.objects.filter(status=ProgrammeStatus.ACTIVE, current_version__isnull=False)
        .select_related("agency")
        .order_by("code")
        if p.target_unit == TargetUnit.HOUSEHOLD
    ]
    if not programmes:
        return report
    agencies = {p.agency_id: p.agency for p in programmes}
    checkers = {c.agency_id: c for c in demo_checkers_ensure(agencies=agencies.values(), password=password)}
    report.users = list(checkers.values())
    districts = Location.objects.filter(level=LocationLevel.DISTRICT, code__in=current_country().demo_districts)
    for programme in programmes:
        maker = User.objects.filter(username=f"officer_{programme.agency.code.lower()}").first()
        checker = checkers[programme.agency_id]
        if maker is None:
            continue
        for district in districts.order_by("code"):
            done = Enrolment.objects.filter(
                programme=programme, district=district, events__idempotency_key=REFERRAL_KEY
            ).exists()
            if done:
                continue
            accepted = (
                Referral.objects.filter(
                    programme=programme,
                    district=district,
                    status=ReferralStatus.ACCEPTED,
                    member__isnull=True,
                    pk__in=ReferralEvent.objects.filter(idempotency_key="demo:accepted").values("referral_id"),
                )
                .select_related("household", "household__village__parent")
                .order_by("-sent_at", "-pk")[:FROM_REFERRALS_PER_DISTRICT]
            )
            for referral in accepted:
                report.enrolments += _enrol_from_referral(referral, programme=programme, maker=maker, checker=checker)
    return report


@transaction.atomic
def _enrol_from_referral(referral, *, programme: Programme, maker: User, checker: User) -> int:
    household = referral.household
    ward = household.village.parent.name if household.village.parent else ""
    try:
        enrolment = enrolment_apply(
            acting_user=maker,
            household=household,
            programme=programme,
            referral=referral,
            source=EnrolmentSource.REFERRAL,
            reason=f"From referral {referral.number}, accepted after the agency's visit.",
            idempotency_key=REFERRAL_KEY,
            **_payment_details(household.number, ward),
        )
    except ValidationError:
        return 0  # already enrolled by other means: the referral stays accepted
    enrolment = enrolment_transition(enrolment=enrolment, to_status=E.VERIFIED, acting_user=maker)
    try:
        enrolment = enrolment_transition(enrolment=enrolment, to_status=E.APPROVED, acting_user=checker)
    except ValidationError:
        return 1  # no place left, or the amount lacks information: it waits, verified
    enrolment_transition(enrolment=enrolment, to_status=E.ACTIVE, acting_user=checker)
    return 1
