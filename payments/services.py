"""Every write to an enrolment: applying, the one state machine with its
maker-checker approval, payment details, and the review when eligibility is lost.

Each change is one transaction that records who, when and why
(`EnrolmentEvent`). Payroll and payment files are in `payments.payroll`;
reconciliation in `payments.reconciliation`.
"""

import datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Sum
from django.utils import timezone

from programmes.models import (
    BenefitFrequency,
    EligibilityOutcome,
    EligibilityResult,
    EnrolmentMode,
    Programme,
    ProgrammeDistrict,
    ProgrammeStatus,
    TargetUnit,
)
from referrals.models import Referral, ReferralStatus
from registry.models import Household, HouseholdStatus, Member, MemberStatus
from spf.models import Role
from spf.scope import user_may_see_district

from .amounts import benefit_amounts
from .models import (
    CURRENT_STATUSES,
    PLACE_STATUSES,
    Enrolment,
    EnrolmentEvent,
    EnrolmentEventKind,
    EnrolmentSource,
    EnrolmentStatus,
    ExitReason,
    Payment,
    PaymentChannel,
    PaymentEvent,
    PaymentStatus,
)

E = EnrolmentStatus

# The state machine: from each status, where an enrolment may go next.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    E.APPLIED: (E.VERIFIED, E.EXITED),
    E.VERIFIED: (E.APPROVED, E.EXITED),
    E.APPROVED: (E.ACTIVE, E.EXITED),
    E.ACTIVE: (E.SUSPENDED, E.EXITED),
    E.SUSPENDED: (E.ACTIVE, E.EXITED),
    E.EXITED: (),
}

# How many payments a year each frequency makes: the yearly cost of a place,
# against the district's yearly budget.
PAYMENTS_PER_YEAR = {
    BenefitFrequency.ONE_OFF: 1,
    BenefitFrequency.MONTHLY: 12,
    BenefitFrequency.BIMONTHLY: 6,
    BenefitFrequency.QUARTERLY: 4,
    BenefitFrequency.TERMLY: 3,
    BenefitFrequency.ANNUAL: 1,
}

# Review flags are rare (a rule change at most flags a programme's caseload);
# their history rows go in batches of this size to bound one statement.
REVIEW_EVENT_BATCH = 5000


# --- who may act -----------------------------------------------------------------------


def acting_agency_id(user) -> int | None:
    return user.agency_id if user is not None and user.role == Role.PROGRAMME_OFFICER else None


def may_act_for_programme(user, programme: Programme, district_id: int) -> bool:
    """The programme's own agency (its officers, in their districts) and ministry staff."""
    if user is None:
        return False
    if user.is_superuser or user.role == Role.MINISTRY:
        return True
    return acting_agency_id(user) == programme.agency_id and user_may_see_district(user, district_id)


def may_act_at_window(user, district_id: int) -> bool:
    return user is not None and user.can_edit_registry and user_may_see_district(user, district_id)


def _require_programme(user, enrolment: Enrolment, what: str) -> None:
    if not may_act_for_programme(user, enrolment.programme, enrolment.district_id):
        raise PermissionDenied(f"Only {enrolment.programme.agency.name} or ministry staff can {what}.")


def _require_window_or_programme(user, enrolment: Enrolment, what: str) -> None:
    if not (
        may_act_at_window(user, enrolment.district_id)
        or may_act_for_programme(user, enrolment.programme, enrolment.district_id)
    ):
        raise PermissionDenied(f"Only the window of this district or {enrolment.programme.agency.name} can {what}.")


def _record(
    enrolment: Enrolment,
    *,
    acting_user,
    kind: str = EnrolmentEventKind.STATUS,
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    changes: dict | None = None,
    idempotency_key: str = "",
    cycle=None,
) -> EnrolmentEvent:
    return EnrolmentEvent.objects.create(
        enrolment=enrolment,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        actor=acting_user,
        reason=reason,
        changes=changes or {},
        idempotency_key=idempotency_key,
        cycle=cycle,
    )


# --- applying ---------------------------------------------------------------------------


def _payment_details_errors(channel: str, account_number: str, pay_point: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if channel not in PaymentChannel.values:
        errors["channel"] = [f"Payment channel must be one of {', '.join(PaymentChannel.values)}."]
    elif channel in (PaymentChannel.BANK, PaymentChannel.MOBILE_MONEY) and not account_number.strip():
        label = "bank account" if channel == PaymentChannel.BANK else "mobile money wallet"
        errors["account_number"] = [f"Give the {label} number for payments by {PaymentChannel(channel).label.lower()}."]
    elif channel == PaymentChannel.CASH and not pay_point.strip():
        errors["pay_point"] = ["Give the pay point where the household collects its cash."]
    return errors


@transaction.atomic
def enrolment_apply(
    *,
    acting_user,
    household: Household,
    programme: Programme,
    member: Member | None = None,
    referral: Referral | None = None,
    source: str = EnrolmentSource.WINDOW,
    external_reference: str = "",
    channel: str = PaymentChannel.CASH,
    account_number: str = "",
    account_name: str = "",
    pay_point: str = "",
    reason: str = "",
    idempotency_key: str = "",
) -> Enrolment:
    """Apply for a household (or member) to join a programme.

    From an accepted referral (the window or the agency), directly at the
    window for programmes in direct mode, by the agency, or by import
    (`acting_user` the importing officer). Raises ValidationError naming the
    field, PermissionDenied outside the user's role or districts.
    """
    household = Household.objects.select_related("district", "head").get(pk=household.pk)
    programme = Programme.objects.select_related("agency").get(pk=programme.pk)
    idempotency_key = (idempotency_key or "").strip()[:100]
    if idempotency_key:
        earlier = Enrolment.objects.filter(
            events__idempotency_key=idempotency_key, household=household, programme=programme
        ).first()
        if earlier is not None:
            return earlier
    if source not in EnrolmentSource.values:
        raise ValidationError({"source": [f"Source must be one of {', '.join(EnrolmentSource.values)}."]})
    at_window = may_act_at_window(acting_user, household.district_id)
    for_programme = may_act_for_programme(acting_user, programme, household.district_id)
    if source == EnrolmentSource.WINDOW and not at_window and not for_programme:
        raise PermissionDenied("This household is outside your districts, or your role cannot enrol households.")
    if source in (EnrolmentSource.AGENCY, EnrolmentSource.IMPORT) and not for_programme:
        raise PermissionDenied(f"Only {programme.agency.name} or ministry staff can enrol for {programme.name}.")
    if source == EnrolmentSource.REFERRAL and not (at_window or for_programme):
        raise PermissionDenied("This household is outside your districts.")

    errors: dict[str, list[str]] = {}
    if household.status != HouseholdStatus.ACTIVE:
        errors["household"] = [f"Household {household.number} is {household.get_status_display().lower()}."]
    if programme.status != ProgrammeStatus.ACTIVE:
        errors["programme"] = [f"{programme.name} is {programme.get_status_display().lower()}, not enrolling."]
    elif not programme.coverage.filter(district_id=household.district_id).exists():
        errors["programme"] = [f"{programme.name} does not run in {household.district.name}."]
    if source == EnrolmentSource.REFERRAL:
        if referral is None:
            errors["referral"] = ["Name the accepted referral this enrolment comes from."]
        elif referral.household_id != household.pk or referral.programme_id != programme.pk:
            errors["referral"] = [f"Referral {referral.number} is for another household or programme."]
        elif referral.status != ReferralStatus.ACCEPTED:
            errors["referral"] = [
                f"Referral {referral.number} is {referral.get_status_display().lower()}; only an accepted referral leads to enrolment."
            ]
        elif referral.member_id and member is None:
            member = referral.member
    elif source == EnrolmentSource.WINDOW and not for_programme and programme.enrolment_mode != EnrolmentMode.DIRECT:
        errors["programme"] = [f"{programme.name} enrols by referral: refer the household, the agency enrols it."]
    if programme.target_unit == TargetUnit.INDIVIDUAL and member is None:
        errors["member"] = [f"{programme.name} serves individuals: choose the member to enrol."]
    if member is not None:
        if member.household_id != household.pk:
            errors["member"] = ["The member must belong to this household."]
        elif member.status != MemberStatus.PRESENT:
            errors["member"] = [f"{member.full_name} is {member.get_status_display().lower()}."]
    if programme.target_unit == TargetUnit.HOUSEHOLD:
        member = None
    errors.update(_payment_details_errors(channel, account_number, pay_point))
    current = Enrolment.objects.filter(programme=programme, status__in=CURRENT_STATUSES)
    current = (
        current.filter(member=member)
        if member is not None
        else current.filter(household=household, member__isnull=True)
    )
    if current.exists():
        who = member.full_name if member is not None else f"Household {household.number}"
        errors.setdefault("programme", []).append(f"{who} is already enrolled in {programme.name}.")
    if errors:
        raise ValidationError(errors)
    account_name = account_name.strip() or (
        member.full_name if member else (household.head.full_name if household.head else "")
    )
    try:
        with transaction.atomic():
            enrolment = Enrolment.objects.create(
                household=household,
                member=member,
                programme=programme,
                district=household.district,
                source=source,
                referral=referral if source == EnrolmentSource.REFERRAL else None,
                external_reference=external_reference.strip()[:64],
                currency=programme.currency,
                channel=channel,
                account_number=account_number.strip(),
                account_name=account_name[:160],
                pay_point=pay_point.strip(),
                applied_by=acting_user,
            )
    except IntegrityError as problem:
        # Two desks enrolling the same household at the same moment: the index decides.
        who = member.full_name if member is not None else f"Household {household.number}"
        raise ValidationError({"programme": [f"{who} is already enrolled in {programme.name}."]}) from problem
    _record(
        enrolment, acting_user=acting_user, to_status=E.APPLIED, reason=reason.strip(), idempotency_key=idempotency_key
    )
    return enrolment


# --- the state machine -------------------------------------------------------------------


def _place_check(enrolment: Enrolment, amount: Decimal | None) -> None:
    """Refuse approval (ValidationError) when the district's capacity or yearly budget would be exceeded.

    The coverage row is locked first, so two approvals in the same district
    take turns and cannot both take the last place."""
    coverage = (
        ProgrammeDistrict.objects.select_for_update()
        .filter(programme_id=enrolment.programme_id, district_id=enrolment.district_id)
        .first()
    )
    if coverage is None:
        raise ValidationError({"programme": [f"{enrolment.programme.name} does not run in {enrolment.district.name}."]})
    holding = Enrolment.objects.filter(
        programme_id=enrolment.programme_id, district_id=enrolment.district_id, status__in=PLACE_STATUSES
    ).exclude(pk=enrolment.pk)
    if coverage.capacity is not None:
        taken = holding.count()
        if taken + 1 > coverage.capacity:
            raise ValidationError(
                {
                    "capacity": [
                        f"{enrolment.programme.name} is full in {enrolment.district.name}: "
                        f"{taken} of {coverage.capacity} places are taken."
                    ]
                }
            )
    if coverage.budget is not None and amount:
        per_year = PAYMENTS_PER_YEAR.get(enrolment.programme.frequency, 12)
        committed = (holding.aggregate(total=Sum("amount"))["total"] or Decimal("0")) * per_year
        cost = amount * per_year
        if committed + cost > coverage.budget:
            currency = enrolment.currency
            raise ValidationError(
                {
                    "budget": [
                        f"The yearly budget of {enrolment.programme.name} in {enrolment.district.name} is {currency} "
                        f"{coverage.budget:,.2f}; {currency} {committed:,.2f} is committed and this enrolment adds "
                        f"{currency} {cost:,.2f} a year."
                    ]
                }
            )


def _complete_referral(enrolment: Enrolment, acting_user) -> None:
    """An enrolment that becomes active closes the loop of the referral it came from."""
    if enrolment.referral_id is None:
        return
    from referrals.services import referral_transition

    referral = enrolment.referral
    if referral.status == ReferralStatus.ACCEPTED:
        referral_transition(
            referral=referral,
            to_status=ReferralStatus.COMPLETED,
            acting_user=acting_user,
            reason=f"Enrolled ({enrolment.number}).",
        )


@transaction.atomic
def enrolment_transition(
    *,
    enrolment: Enrolment,
    to_status: str,
    acting_user,
    reason: str = "",
    exit_reason: str = "",
    idempotency_key: str = "",
    reference_date: datetime.date | None = None,
) -> Enrolment:
    """Move an enrolment to `to_status`, if the state machine, the user's role and maker-checker allow it.

    Verify: the window or the agency. Approve, activate, suspend, reinstate,
    exit: the agency or ministry staff. The approver must be someone other than
    whoever applied or verified; approval sets the amount from the formula and
    is refused when the district's capacity or budget would be exceeded. The
    same `idempotency_key` twice returns the enrolment unchanged; so does a move
    to the status it already has (a second click, two checkers at once), for
    someone who may make that move. The returned enrolment's `repeated` says
    whether this call recorded nothing.
    """
    enrolment = (
        Enrolment.objects.select_for_update(of=("self",))
        .select_related(
            "programme", "programme__agency", "programme__current_version", "district", "household", "referral"
        )
        .get(pk=enrolment.pk)
    )
    enrolment.repeated = True
    idempotency_key = (idempotency_key or "").strip()[:100]
    if idempotency_key and enrolment.events.filter(idempotency_key=idempotency_key).exists():
        return enrolment
    if to_status not in E.values:
        raise ValidationError(
            {"status": [f"'{to_status}' is not an enrolment status; use one of {', '.join(E.values)}."]}
        )
    if to_status == enrolment.status:
        if to_status == E.VERIFIED:
            _require_window_or_programme(acting_user, enrolment, "verify an enrolment")
        else:
            _require_programme(acting_user, enrolment, f"mark an enrolment {E(to_status).label.lower()}")
        return enrolment
    enrolment.repeated = False
    allowed = TRANSITIONS[enrolment.status]
    if to_status not in allowed:
        where = ", ".join(E(s).label.lower() for s in allowed) or "nowhere: it has exited"
        raise ValidationError(
            {
                "status": [
                    f"Enrolment {enrolment.number} is {enrolment.get_status_display().lower()}; it can go to {where}, "
                    f"not {E(to_status).label.lower()}."
                ]
            }
        )
    if to_status == E.VERIFIED:
        _require_window_or_programme(acting_user, enrolment, "verify an enrolment")
    else:
        _require_programme(acting_user, enrolment, f"mark an enrolment {E(to_status).label.lower()}")
    reason = (reason or "").strip()
    now = timezone.now()
    changes: dict = {}
    from_status = enrolment.status

    if to_status == E.VERIFIED:
        enrolment.verified_at, enrolment.verified_by = now, acting_user
    elif to_status == E.APPROVED:
        makers = {enrolment.applied_by_id, enrolment.verified_by_id} - {None}
        if acting_user.pk in makers:
            raise ValidationError(
                {
                    "approved_by": [
                        "Maker-checker: you applied for or verified this enrolment, so someone else must approve it."
                    ]
                }
            )
        amount, version = _amount_now(enrolment, reference_date or timezone.localdate())
        _place_check(enrolment, amount)
        if amount != enrolment.amount:
            changes["amount"] = [_money(enrolment.amount), _money(amount)]
        enrolment.amount, enrolment.amount_rule_version = amount, version
        enrolment.approved_at, enrolment.approved_by = now, acting_user
    elif to_status == E.ACTIVE:
        if from_status == E.SUSPENDED:
            changes["suspension_reason"] = [enrolment.suspension_reason, ""]
            enrolment.suspended_at, enrolment.suspension_reason = None, ""
        else:
            enrolment.activated_at = now
    elif to_status == E.SUSPENDED:
        if not reason:
            raise ValidationError({"reason": ["Say why the enrolment is suspended."]})
        enrolment.suspended_at, enrolment.suspension_reason = now, reason[:255]
    elif to_status == E.EXITED:
        if exit_reason not in ExitReason.values:
            raise ValidationError(
                {
                    "exit_reason": [
                        "Choose why the enrolment ends: "
                        + ", ".join(f"{v} ({label})" for v, label in ExitReason.choices)
                    ]
                }
            )
        enrolment.exited_at, enrolment.exit_reason, enrolment.exit_note = now, exit_reason, reason[:255]
        if enrolment.review_since:
            enrolment.review_since, enrolment.review_reason = None, ""
    enrolment.status = to_status
    enrolment.save()
    _record(
        enrolment,
        acting_user=acting_user,
        from_status=from_status,
        to_status=to_status,
        reason=reason or (ExitReason(exit_reason).label if to_status == E.EXITED else ""),
        changes=changes,
        idempotency_key=idempotency_key,
    )
    if to_status == E.ACTIVE and from_status == E.APPROVED:
        _complete_referral(enrolment, acting_user)
    return enrolment


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _amount_now(enrolment: Enrolment, reference_date: datetime.date):
    """The benefit per payment from the programme's current formula and the household's current data."""
    version = enrolment.programme.current_version
    if version is None or not version.benefit_formula:
        return None, version
    amounts = benefit_amounts(
        programme=enrolment.programme, enrolment_ids=[enrolment.pk], reference_date=reference_date
    )
    amount = amounts.get(enrolment.pk)
    if amount is None:
        raise ValidationError(
            {
                "amount": [
                    f"The benefit formula of {enrolment.programme.name} needs information this household lacks: "
                    "complete the household's record, then approve."
                ]
            }
        )
    return amount, version


@transaction.atomic
def enrolment_set_payment_details(
    *,
    acting_user,
    enrolment: Enrolment,
    channel: str,
    account_number: str = "",
    account_name: str = "",
    pay_point: str = "",
    reason: str = "",
) -> Enrolment:
    """Change how the household is paid (the window or the agency); recorded with the old and new values."""
    enrolment = (
        Enrolment.objects.select_for_update(of=("self",)).select_related("programme__agency").get(pk=enrolment.pk)
    )
    _require_window_or_programme(acting_user, enrolment, "change payment details")
    if enrolment.status == E.EXITED:
        raise ValidationError({"status": [f"Enrolment {enrolment.number} has exited."]})
    errors = _payment_details_errors(channel, account_number, pay_point)
    if errors:
        raise ValidationError(errors)
    new = {
        "channel": channel,
        "account_number": account_number.strip(),
        "account_name": account_name.strip()[:160] or enrolment.account_name,
        "pay_point": pay_point.strip(),
    }
    changes = {
        field: [getattr(enrolment, field), value] for field, value in new.items() if getattr(enrolment, field) != value
    }
    if not changes:
        return enrolment
    for field, value in new.items():
        setattr(enrolment, field, value)
    enrolment.save()
    _record(enrolment, acting_user=acting_user, kind=EnrolmentEventKind.DETAILS, reason=reason.strip(), changes=changes)
    return enrolment


# --- eligibility lost: review, never an automatic exit -----------------------------------------


def enrolments_flag_lost_eligibility(
    *, now: datetime.datetime | None = None, household_ids: list[int] | None = None
) -> int:
    """Flag for review every current enrolment whose household is now assessed as not eligible
    (or as needing information) for its programme.

    Set-based and idempotent: flagged enrolments are left alone until an
    officer decides (`enrolment_review_close`); nothing exits by itself. A
    household never assessed is not flagged: no result is not a lost one.
    Returns how many were flagged. `household_ids`: only these households'
    enrolments (the ones just re-assessed); None: every enrolment.
    """
    now = now or timezone.now()
    lost = EligibilityResult.objects.filter(
        household_id=OuterRef("household_id"), programme_id=OuterRef("programme_id")
    ).exclude(outcome=EligibilityOutcome.ELIGIBLE)
    flagged = Enrolment.objects.filter(Exists(lost), status__in=CURRENT_STATUSES, review_since__isnull=True)
    if household_ids is not None:
        flagged = flagged.filter(household_id__in=household_ids)
    reason = "The household is no longer found eligible: review whether it should stay."
    with transaction.atomic():
        ids = list(flagged.select_for_update(skip_locked=True).values_list("pk", flat=True))
        if not ids:
            return 0
        count = Enrolment.objects.filter(pk__in=ids).update(review_since=now, review_reason=reason, updated_at=now)
        EnrolmentEvent.objects.bulk_create(
            [
                EnrolmentEvent(
                    enrolment_id=pk,
                    kind=EnrolmentEventKind.REVIEW,
                    reason=reason,
                    changes={"review": [False, True]},
                    at=now,
                )
                for pk in ids
            ],
            batch_size=REVIEW_EVENT_BATCH,
        )
    return count


@transaction.atomic
def enrolment_review_close(
    *, acting_user, enrolment: Enrolment, keep: bool, reason: str, exit_reason: str = ExitReason.NOT_ELIGIBLE
) -> Enrolment:
    """The officer's decision on a flagged enrolment: keep it (with why) or exit it."""
    enrolment = (
        Enrolment.objects.select_for_update(of=("self",)).select_related("programme__agency").get(pk=enrolment.pk)
    )
    _require_programme(acting_user, enrolment, "decide a review")
    if enrolment.review_since is None:
        raise ValidationError({"review": [f"Enrolment {enrolment.number} is not waiting for a review."]})
    if not (reason or "").strip():
        raise ValidationError({"reason": ["Say why you decided so."]})
    if not keep:
        return enrolment_transition(
            enrolment=enrolment, to_status=E.EXITED, acting_user=acting_user, reason=reason, exit_reason=exit_reason
        )
    enrolment.review_since, enrolment.review_reason = None, ""
    enrolment.save()
    _record(
        enrolment,
        acting_user=acting_user,
        kind=EnrolmentEventKind.REVIEW,
        reason=reason.strip(),
        changes={"review": [True, False]},
    )
    return enrolment


def enrolment_moves_for(*, enrolment: Enrolment, user) -> list[str]:
    """The statuses `user` may move `enrolment` to now: what a page offers as buttons."""
    moves = []
    for to_status in TRANSITIONS[enrolment.status]:
        if to_status == E.VERIFIED:
            if may_act_at_window(user, enrolment.district_id) or may_act_for_programme(
                user, enrolment.programme, enrolment.district_id
            ):
                moves.append(to_status)
        elif may_act_for_programme(user, enrolment.programme, enrolment.district_id):
            if to_status == E.APPROVED and user.pk in {enrolment.applied_by_id, enrolment.verified_by_id}:
                continue
            moves.append(to_status)
    return moves


@transaction.atomic
def payment_dispute_raise(*, acting_user, payment: Payment, note: str) -> Payment:
    """A payment the provider reported paid that the household says never arrived: flagged for
    reconciliation with the provider (shown on the cycle), recorded in its history. Once is enough."""
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    if payment.status != PaymentStatus.PAID:
        raise ValidationError({"payment": [f"Payment {payment.reference} is not marked paid: nothing to dispute."]})
    if payment.disputed_at is not None:
        return payment
    payment.disputed_at, payment.dispute_note = timezone.now(), note.strip()[:255]
    payment.save(update_fields=["disputed_at", "dispute_note"])
    PaymentEvent.objects.create(
        payment=payment,
        from_status=payment.status,
        to_status=payment.status,
        actor=acting_user,
        reason=f"Disputed: {note.strip()}"[:255],
    )
    return payment


__all__ = [
    "PAYMENTS_PER_YEAR",
    "payment_dispute_raise",
    "TRANSITIONS",
    "enrolment_apply",
    "enrolment_moves_for",
    "enrolment_review_close",
    "enrolment_set_payment_details",
    "enrolment_transition",
    "enrolments_flag_lost_eligibility",
]
