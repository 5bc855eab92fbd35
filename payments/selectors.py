"""Reads of enrolments and payments for the pages: one enrolment with its
history, a household's enrolments and payments, the agency's work lists, the
payment cycles with their totals and files.

Scope is decided once, in `payments.api.selectors` (`enrolments_for`,
`payments_for`, `payment_cycles_for`): every read here starts from it, so the
pages and the API show the same things to the same people.
"""

import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from programmes.models import (
    EligibilityOutcome,
    EligibilityResult,
    EnrolmentMode,
    Programme,
    ProgrammeStatus,
    TargetUnit,
)
from registry.models import Household

from .api.selectors import (
    cycle_district_ids_for,
    enrolments_for,
    payment_cycles_for,
    payments_for,
    reconciliations_for,
    user_runs_payroll_scope,
)
from .models import (
    CURRENT_STATUSES,
    REISSUABLE_STATUSES,
    CycleStatus,
    Enrolment,
    EnrolmentEvent,
    EnrolmentSource,
    EnrolmentStatus,
    Payment,
    PaymentChannel,
    PaymentCycle,
    PaymentStatus,
    Reconciliation,
)
from .payroll import cycle_totals_by_district, may_run_payroll
from .services import may_act_at_window, may_act_for_programme

E = EnrolmentStatus


def enrolment_id_from_number(number: str) -> int | None:
    """The id in a typed enrolment number ('E00000123', 'e123', '123'), or None."""
    text = (number or "").strip().upper().removeprefix("E").lstrip("-")
    return int(text) if text.isdigit() and 0 < len(text) <= 12 else None


def enrolment_for_number(*, user, number: str) -> Enrolment:
    """The enrolment a number names, within scope; Enrolment.DoesNotExist when malformed, unknown or out of scope."""
    enrolment_id = enrolment_id_from_number(number)
    if enrolment_id is None:
        raise Enrolment.DoesNotExist(f"'{number}' is not an enrolment number.")
    return (
        enrolments_for(user)
        .select_related(
            "household",
            "household__head",
            "household__village",
            "household__village__parent",
            "household__district",
            "member",
            "programme",
            "programme__agency",
            "programme__current_version",
            "district",
            "referral",
            "applied_by",
            "verified_by",
            "approved_by",
            "amount_rule_version",
        )
        .get(pk=enrolment_id)
    )


@dataclass
class AmountChange:
    at: datetime.datetime
    old: str | None
    new: str | None
    reason: str
    actor: object = None


def enrolment_detail(*, user, number: str) -> Enrolment:
    """One enrolment with its history (`timeline`), amount changes and payments, for its page."""
    enrolment = enrolment_for_number(user=user, number=number)
    enrolment.timeline = list(
        EnrolmentEvent.objects.filter(enrolment=enrolment).select_related("actor", "cycle").order_by("at", "id")
    )
    enrolment.amount_changes = [
        AmountChange(
            at=event.at,
            old=event.changes["amount"][0],
            new=event.changes["amount"][1],
            reason=event.reason
            or ("Set at approval from the benefit formula." if event.to_status == E.APPROVED else ""),
            actor=event.actor,
        )
        for event in enrolment.timeline
        if isinstance(event.changes, dict) and isinstance(event.changes.get("amount"), list)
    ]
    enrolment.payment_list = list(
        payments_for(user)
        .filter(enrolment=enrolment)
        .select_related("cycle", "reissue_of", "reissue_of__cycle", "reissued_as", "reissued_as__cycle")
        .order_by("-cycle__period_start", "-created_at")
    )
    return enrolment


# --- a household's enrolments and payments ---------------------------------------------------


@dataclass
class EnrolOption:
    """A programme the user may enrol the household in from its page, and how (window or agency)."""

    programme: Programme
    source: str
    amount: Decimal | None = None


# Payments listed on the household page: two years of monthly payments; older
# ones are on each enrolment's page.
HOUSEHOLD_PAYMENTS_SHOWN = 24


@dataclass
class HouseholdPayments:
    household: Household
    enrolments: list[Enrolment]
    payments: list[Payment]
    enrol_options: list[EnrolOption] = field(default_factory=list)
    more_payments: bool = False

    @property
    def current(self) -> list[Enrolment]:
        return [e for e in self.enrolments if e.status in CURRENT_STATUSES]


def enrol_source_for(*, user, programme: Programme, district_id: int) -> str | None:
    """How `user` would enrol a household of `district_id` in `programme`: at the window, for the agency, or not at all.

    The window enrols directly only in programmes in direct mode; the
    programme's agency (and ministry staff) enrol in any of its programmes.
    """
    if programme.enrolment_mode == EnrolmentMode.DIRECT and may_act_at_window(user, district_id):
        return EnrolmentSource.WINDOW
    if may_act_for_programme(user, programme, district_id):
        return EnrolmentSource.AGENCY
    return None


def enrol_options(
    *,
    user,
    household: Household,
    eligible: list[tuple[Programme, Decimal | None]] | None = None,
    enrolments: list[Enrolment] | None = None,
) -> list[EnrolOption]:
    """The programmes the household is eligible for and `user` may enrol it in now (not already enrolled).

    `eligible` is (programme, estimated amount) from the household page's
    panel, and `enrolments` the household's enrolments the user sees, when the
    page has them, so it asks nothing twice. (The enrolments the user sees are
    enough: a user sees every enrolment of the programmes it may enrol in.)
    """
    if user is None or not user.is_authenticated or household.status != "active":
        return []
    if eligible is None:
        eligible = [
            (result.programme, result.amount)
            for result in EligibilityResult.objects.filter(
                household=household,
                outcome=EligibilityOutcome.ELIGIBLE,
                programme__status=ProgrammeStatus.ACTIVE,
                programme__coverage__district_id=household.district_id,
            )
            .select_related("programme", "programme__agency")
            .order_by("programme__name")
        ]
    if not eligible:
        return []
    if enrolments is None:
        enrolments = list(enrolments_for(user).filter(household=household, status__in=CURRENT_STATUSES))
    enrolled = {e.programme_id for e in enrolments if e.member_id is None and e.status in CURRENT_STATUSES}
    options = []
    for programme, amount in eligible:
        if programme.target_unit == TargetUnit.HOUSEHOLD and programme.pk in enrolled:
            continue
        source = enrol_source_for(user=user, programme=programme, district_id=household.district_id)
        if source is not None:
            options.append(EnrolOption(programme=programme, source=source, amount=amount))
    return options


def household_payments(
    *, user, household: Household, eligible: list[tuple[Programme, Decimal | None]] | None = None
) -> HouseholdPayments:
    """What the household page shows of enrolments and payments: two queries whatever the history, one without.

    Payments are scoped as the enrolments they pay: with no enrolment the user
    sees, there is no payment to look for."""
    enrolments = list(
        enrolments_for(user)
        .filter(household=household)
        .select_related("programme", "programme__agency", "member")
        .order_by("-created_at", "-id")
    )
    payments = []
    if enrolments:
        payments = list(
            payments_for(user)
            .filter(household=household)
            .select_related("cycle", "programme", "reissue_of", "reissued_as", "enrolment__member")
            .order_by("-cycle__period_start", "-created_at", "-id")[: HOUSEHOLD_PAYMENTS_SHOWN + 1]
        )
    return HouseholdPayments(
        household=household,
        enrolments=enrolments,
        payments=payments[:HOUSEHOLD_PAYMENTS_SHOWN],
        more_payments=len(payments) > HOUSEHOLD_PAYMENTS_SHOWN,
        enrol_options=enrol_options(user=user, household=household, eligible=eligible, enrolments=enrolments),
    )


def enrolment_from_referral(*, referral) -> Enrolment | None:
    """The enrolment made from this referral, if any (the latest)."""
    return Enrolment.objects.filter(referral=referral).order_by("-created_at", "-id").first()


# --- the agency's work lists -------------------------------------------------------------------


class WorkTab:
    VERIFY = "verify"
    APPROVE = "approve"
    ACTIVATE = "activate"
    REVIEW = "review"

    # In the order the page shows them, with the words on each tab.
    CHOICES = (
        (VERIFY, "To verify"),
        (APPROVE, "To approve"),
        (ACTIVATE, "Approved, to activate"),
        (REVIEW, "Flagged for review"),
    )


@dataclass
class WorkLists:
    enrolments: QuerySet[Enrolment]
    counts: dict[str, int]
    # Waiting for approval, but this user applied for or verified them: a colleague must approve.
    waiting_for_colleague: int = 0


def _work_filter(tab: str, user) -> Q:
    return {
        WorkTab.VERIFY: Q(status=E.APPLIED),
        WorkTab.APPROVE: Q(status=E.VERIFIED) & ~Q(applied_by=user) & ~Q(verified_by=user),
        WorkTab.ACTIVATE: Q(status=E.APPROVED),
        WorkTab.REVIEW: Q(review_since__isnull=False, status__in=CURRENT_STATUSES),
    }[tab]


def enrolment_work(*, user, tab: str = WorkTab.VERIFY, programme_code: str = "") -> WorkLists:
    """The enrolments waiting on `user`'s agency (or, for the window, on its verification), scoped.

    Approval excludes the enrolments the user applied for or verified
    (maker-checker); how many of those wait for a colleague is counted apart.
    Window users (front desk) only verify: the other lists are empty for them.
    """
    scoped = enrolments_for(user)
    if programme_code:
        scoped = scoped.filter(programme__code=programme_code)
    window_only = not (user.sees_every_district or user.agency_id)
    if window_only:
        scoped = scoped.filter(status=E.APPLIED) if user.can_edit_registry else scoped.none()
    counts = scoped.order_by().aggregate(
        **{key: Count("pk", filter=_work_filter(key, user)) for key, _ in WorkTab.CHOICES},
        waiting_for_colleague=Count("pk", filter=Q(status=E.VERIFIED) & (Q(applied_by=user) | Q(verified_by=user))),
    )
    waiting = counts.pop("waiting_for_colleague")
    rows = (
        scoped.filter(_work_filter(tab, user))
        .select_related(
            "household",
            "household__head",
            "household__village",
            "household__village__parent",
            "programme",
            "member",
            "applied_by",
            "verified_by",
        )
        .order_by("review_since" if tab == WorkTab.REVIEW else "applied_at", "id")
    )
    return WorkLists(enrolments=rows, counts=counts, waiting_for_colleague=waiting)


def work_programmes(*, user) -> list[Programme]:
    """The programmes the work page can narrow to: the agency's for its officers, every active one otherwise."""
    programmes = Programme.objects.exclude(status=ProgrammeStatus.DRAFT).select_related("agency").order_by("name")
    if user.agency_id and not user.sees_every_district:
        programmes = programmes.filter(agency_id=user.agency_id)
    return list(programmes)


# --- payment cycles -----------------------------------------------------------------------------


@dataclass
class ProgrammeCycles:
    programme: Programme
    cycles: list[PaymentCycle]
    may_run: bool


def payment_programmes_for(user) -> QuerySet[Programme]:
    """Programmes with a benefit formula whose cycles `user` sees: those that pay money."""
    programmes = (
        Programme.objects.exclude(status=ProgrammeStatus.DRAFT)
        .filter(current_version__isnull=False)
        .exclude(current_version__benefit_formula="")
        .select_related("agency", "current_version")
        .order_by("name")
    )
    if user.sees_every_district:
        return programmes
    if user.role == "programme_officer":
        return programmes.filter(agency_id=user.agency_id) if user.agency_id else programmes.none()
    return programmes.filter(coverage__district_id__in=cycle_visible_district_ids(user)).distinct()


def cycle_visible_district_ids(user) -> list[int]:
    ids = cycle_district_ids_for(user)
    return [] if ids is None else ids


# Cycles listed per programme on the cycles page: two years of monthly payments.
CYCLES_SHOWN = 24


def cycles_by_programme(*, user) -> list[ProgrammeCycles]:
    """Each programme the user sees with its latest cycles, newest first."""
    programmes = list(payment_programmes_for(user))
    district_ids = cycle_district_ids_for(user)

    def within(condition: Q | None = None) -> Q | None:
        # Window users count the payments of their districts only, as on the cycle's page.
        scope = None if district_ids is None else Q(payments__district_id__in=district_ids)
        parts = [part for part in (scope, condition) if part is not None]
        return parts[0] & parts[1] if len(parts) == 2 else (parts[0] if parts else None)

    cycles = (
        payment_cycles_for(user)
        .filter(programme__in=programmes)
        .select_related("generated_by", "approved_by")
        .annotate(
            shown_count=Count("payments", filter=within()),
            shown_total=Sum("payments__amount", filter=within()),
            paid=Count("payments", filter=within(Q(payments__status=PaymentStatus.PAID))),
            failed=Count("payments", filter=within(Q(payments__status__in=REISSUABLE_STATUSES))),
        )
        .order_by("programme_id", "-period_start")
    )
    by_programme: dict[int, list[PaymentCycle]] = {}
    for cycle in cycles:
        shown = by_programme.setdefault(cycle.programme_id, [])
        if len(shown) < CYCLES_SHOWN:
            shown.append(cycle)
    return [
        ProgrammeCycles(
            programme=programme, cycles=by_programme.get(programme.pk, []), may_run=may_run_payroll(user, programme)
        )
        for programme in programmes
    ]


def cycle_for(*, user, cycle_id: int) -> PaymentCycle:
    """A cycle the user sees, with its programme; PaymentCycle.DoesNotExist otherwise."""
    return (
        payment_cycles_for(user)
        .select_related(
            "programme",
            "programme__agency",
            "programme__current_version",
            "created_by",
            "generated_by",
            "approved_by",
            "exported_by",
        )
        .get(pk=cycle_id)
    )


@dataclass
class ChannelFile:
    channel: str
    label: str
    pending: int
    total: Decimal


@dataclass
class CycleOverview:
    cycle: PaymentCycle
    totals: list[dict]
    grand: dict
    whole: bool
    may_run: bool
    files: list[ChannelFile]
    reissuable: int
    events: list
    reconciliations: list[Reconciliation]
    status_counts: dict[str, int]


def _reissuable(cycle: PaymentCycle) -> QuerySet[Payment]:
    """What `payments.payroll.payments_reissue` would take into this cycle: the same filter, to count it."""
    return Payment.objects.filter(
        programme_id=cycle.programme_id,
        status__in=REISSUABLE_STATUSES,
        cycle__period_start__lt=cycle.period_start,
        enrolment__status=E.ACTIVE,
        reissued_as__isnull=True,
    )


def cycle_overview(*, user, cycle: PaymentCycle) -> CycleOverview:
    """The cycle page: totals by district (the user's districts, or all for those who run it), files, history."""
    district_ids = cycle_district_ids_for(user)
    totals = cycle_totals_by_district(cycle=cycle)
    if district_ids is not None:
        totals = [row for row in totals if row["district_id"] in district_ids]
    grand = {
        key: sum((row[key] for row in totals), Decimal("0") if key in ("total", "paid_total") else 0)
        for key in ("count", "total", "paid", "paid_total", "failed", "unclaimed", "pending")
    }
    may_run = may_run_payroll(user, cycle.programme)
    files = []
    if may_run:
        pending = {
            row["channel"]: row
            for row in cycle.payments.filter(status=PaymentStatus.PENDING)
            .values("channel")
            .annotate(count=Count("pk"), total=Sum("amount"))
        }
        files = [
            ChannelFile(
                channel=value,
                label=label,
                pending=pending.get(value, {}).get("count", 0),
                total=pending.get(value, {}).get("total") or Decimal("0"),
            )
            for value, label in PaymentChannel.choices
        ]
    reissuable = (
        _reissuable(cycle).count() if may_run and cycle.status in (CycleStatus.CREATED, CycleStatus.GENERATED) else 0
    )
    events = list(cycle.events.select_related("actor").order_by("at", "id")) if user_runs_payroll_scope(user) else []
    reconciliations = list(
        reconciliations_for(user).filter(cycle=cycle).select_related("uploaded_by").order_by("-uploaded_at", "-id")
    )
    status_counts = dict(
        payments_for(user).filter(cycle=cycle).values_list("status").annotate(count=Count("pk")).order_by()
    )
    return CycleOverview(
        cycle=cycle,
        totals=totals,
        grand=grand,
        whole=district_ids is None,
        may_run=may_run,
        files=files,
        reissuable=reissuable,
        events=events,
        reconciliations=reconciliations,
        status_counts=status_counts,
    )


def cycle_payments(*, user, cycle: PaymentCycle, status: str = "", query: str = "") -> QuerySet[Payment]:
    """The cycle's payments the user may see, narrowed by status or a reference / household number."""
    payments = payments_for(user).filter(cycle=cycle)
    if status:
        payments = payments.filter(status=status)
    query = (query or "").strip()
    if query:
        payments = payments.filter(Q(reference__iexact=query) | Q(household__number__iexact=query))
    # In the order the payroll made them: by enrolment, each reissue after.
    return payments.select_related("household", "district", "reissue_of", "reissued_as").order_by("enrolment_id", "id")


def reconciliation_for(*, user, reconciliation_id: int) -> Reconciliation:
    """A provider's file the user may see; Reconciliation.DoesNotExist otherwise."""
    return reconciliations_for(user).select_related("cycle", "cycle__programme").get(pk=reconciliation_id)


__all__ = [
    "AmountChange",
    "ChannelFile",
    "CycleOverview",
    "EnrolOption",
    "HouseholdPayments",
    "ProgrammeCycles",
    "WorkLists",
    "WorkTab",
    "cycle_district_ids_for",
    "cycle_for",
    "cycle_overview",
    "cycle_payments",
    "cycles_by_programme",
    "enrol_options",
    "enrol_source_for",
    "enrolment_detail",
    "enrolment_for_number",
    "enrolment_from_referral",
    "enrolment_id_from_number",
    "enrolment_work",
    "enrolments_for",
    "household_payments",
    "payment_cycles_for",
    "payment_programmes_for",
    "payments_for",
    "reconciliation_for",
    "work_programmes",
]
