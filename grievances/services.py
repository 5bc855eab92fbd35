"""Every write to a grievance: registering it, the one state machine, an
upheld eligibility appeal (corrections through the registry, the household
re-assessed, the outcome recorded), a payment reported not received, and the
overdue job.

Each step is one transaction that records who, when, from what to what and
why (`GrievanceEvent`).
"""

import datetime
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from payments.models import Payment, PaymentStatus
from programmes.models import Agency, EligibilityResult, Programme
from registry.models import Household, Location, LocationLevel, Member
from spf.models import Role, User
from spf.scope import user_may_see_district

from .models import (
    OPEN_STATUSES,
    AppealOutcome,
    EscalationLevel,
    Grievance,
    GrievanceAttachment,
    GrievanceCategory,
    GrievanceChannel,
    GrievanceEvent,
    GrievancePriority,
    GrievanceStatus,
)

S = GrievanceStatus

# The state machine: from each status, where a grievance may go next. A
# resolution the person does not accept is escalated rather than closed.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    S.RECEIVED: (S.ACKNOWLEDGED,),
    S.ACKNOWLEDGED: (S.ASSIGNED, S.ESCALATED, S.RESOLVED),
    S.ASSIGNED: (S.ASSIGNED, S.INVESTIGATED, S.ESCALATED, S.RESOLVED),
    S.INVESTIGATED: (S.RESOLVED, S.ESCALATED),
    S.ESCALATED: (S.ASSIGNED, S.INVESTIGATED, S.RESOLVED),
    S.RESOLVED: (S.CLOSED, S.ESCALATED),
    S.CLOSED: (),
}

# Days to resolve, by category: the service standard published at the window.
# Payment and data problems are the window's own and quick to check; an appeal
# may need a home visit; conduct and fraud need an investigation.
RESOLUTION_DAYS = {
    GrievanceCategory.ELIGIBILITY: 30,
    GrievanceCategory.PAYMENT: 14,
    GrievanceCategory.DATA_CORRECTION: 14,
    GrievanceCategory.STAFF_CONDUCT: 30,
    GrievanceCategory.FRAUD: 45,
    GrievanceCategory.OTHER: 30,
}
# Always handled by designated officers only, whatever the officer ticks.
ALWAYS_SENSITIVE = (GrievanceCategory.FRAUD,)

SENSITIVE_PERMISSION = "grievances.handle_sensitive"


# --- who may see and act ------------------------------------------------------------------


def may_handle_sensitive(user) -> bool:
    return user is not None and user.is_active and (user.is_superuser or user.has_perm(SENSITIVE_PERMISSION))


def _agency_id(user) -> int | None:
    return user.agency_id if user is not None and user.role == Role.PROGRAMME_OFFICER else None


def may_see(user, grievance: Grievance) -> bool:
    """The same rule as `selectors.grievances_for`, for one grievance already loaded."""
    if user is None or not user.is_authenticated:
        return False
    if not user_may_see_district(user, grievance.district_id):
        return False
    if grievance.sensitive and not may_handle_sensitive(user) and grievance.created_by_id != user.pk:
        return False
    agency_id = _agency_id(user)
    if agency_id is not None and not user.is_superuser:
        programme_agency = grievance.programme.agency_id if grievance.programme_id else None
        return agency_id in (grievance.assigned_agency_id, programme_agency) or grievance.created_by_id == user.pk
    return True


def may_act(user, grievance: Grievance) -> bool:
    """Who works a grievance: the window of its district, whoever it is assigned to (a person or their
    agency), the committee once it is escalated to it, ministry staff; sensitive ones, designated officers only."""
    if not may_see(user, grievance):
        return False
    if grievance.sensitive and not may_handle_sensitive(user):
        return False
    if user.is_superuser or user.role == Role.MINISTRY or user.can_edit_registry:
        return True
    if grievance.assigned_to_id == user.pk:
        return True
    if _agency_id(user) is not None and _agency_id(user) == grievance.assigned_agency_id:
        return True
    return user.role == Role.COMMITTEE and grievance.escalated_to == EscalationLevel.COMMITTEE


def _require_act(user, grievance: Grievance) -> None:
    if not may_act(user, grievance):
        raise PermissionDenied(f"You cannot act on grievance {grievance.number}.")


def _record(
    grievance: Grievance,
    *,
    acting_user,
    from_status: str,
    to_status: str,
    note: str = "",
    changes: dict | None = None,
    idempotency_key: str = "",
) -> GrievanceEvent:
    return GrievanceEvent.objects.create(
        grievance=grievance,
        from_status=from_status,
        to_status=to_status,
        actor=acting_user,
        note=note,
        changes=changes or {},
        idempotency_key=idempotency_key,
    )


# --- registering --------------------------------------------------------------------------


@transaction.atomic
def grievance_register(
    *,
    acting_user,
    category: str,
    description: str,
    channel: str = GrievanceChannel.WALK_IN,
    district: Location | None = None,
    household: Household | None = None,
    complainant: Member | None = None,
    complainant_name: str = "",
    complainant_contact: str = "",
    anonymous: bool = False,
    programme: Programme | None = None,
    payment: Payment | None = None,
    payment_not_received: bool = False,
    sensitive: bool = False,
    priority: str = GrievancePriority.NORMAL,
    idempotency_key: str = "",
) -> Grievance:
    """Record a grievance raised at the window (or by phone, letter, a community worker, an agency).

    The district is the household's when one is named, else `district` (the
    window's). An eligibility appeal about a programme records the outcome and
    rule version it appeals; a payment reported not received that the provider
    marked paid is raised with the provider (`payments` flags it disputed).
    """
    idempotency_key = (idempotency_key or "").strip()[:100]
    if idempotency_key:
        earlier = Grievance.objects.filter(events__idempotency_key=idempotency_key, created_by=acting_user).first()
        if earlier is not None:
            return earlier
    errors: dict[str, list[str]] = {}
    if complainant is not None:
        household = household or complainant.household
        if complainant.household_id != household.pk:
            errors["complainant"] = ["The person must belong to the household named."]
    if payment is not None:
        household = household or payment.household
        programme = programme or payment.programme
        if payment.household_id != household.pk:
            errors["payment"] = [f"Payment {payment.reference} is another household's."]
    if household is not None:
        district = household.district
    if district is None:
        errors["district"] = ["Name the household, or the district where the grievance is handled."]
    elif district.level != LocationLevel.DISTRICT:
        errors["district"] = [f"{district.name} is not a district."]
    if acting_user is None or not (acting_user.can_edit_registry or _agency_id(acting_user) is not None):
        raise PermissionDenied("Your role cannot record grievances.")
    if district is not None and not user_may_see_district(acting_user, district.pk):
        raise PermissionDenied("This household or district is outside your districts.")
    if category not in GrievanceCategory.values:
        errors["category"] = [f"Category must be one of {', '.join(GrievanceCategory.values)}."]
    if channel not in GrievanceChannel.values:
        errors["channel"] = [f"Channel must be one of {', '.join(GrievanceChannel.values)}."]
    if priority not in GrievancePriority.values:
        errors["priority"] = [f"Priority must be one of {', '.join(GrievancePriority.values)}."]
    if not (description or "").strip():
        errors["description"] = ["Write what the person says happened."]
    if not anonymous and complainant is None and not complainant_name.strip():
        errors["complainant_name"] = [
            "Name the person who raises it, choose the registered member, or mark it anonymous."
        ]
    if anonymous and complainant is not None:
        errors["anonymous"] = ["An anonymous grievance names no registered person."]
    if payment_not_received and payment is None:
        errors["payment"] = ["Choose the payment that did not arrive."]
    if category == GrievanceCategory.PAYMENT and payment is None and payment_not_received:
        errors["payment"] = ["Choose the payment concerned."]
    appealed = None
    if category == GrievanceCategory.ELIGIBILITY and programme is not None and household is not None:
        appealed = EligibilityResult.objects.filter(household=household, programme=programme).first()
    if errors:
        raise ValidationError(errors)
    today = timezone.localdate()
    grievance = Grievance.objects.create(
        complainant=complainant,
        complainant_name=complainant_name.strip()[:160] if not complainant else "",
        complainant_contact=complainant_contact.strip()[:120],
        anonymous=anonymous,
        household=household,
        programme=programme,
        district=district,
        channel=channel,
        category=category,
        sensitive=sensitive or category in ALWAYS_SENSITIVE,
        priority=priority,
        description=description.strip(),
        due_date=today + datetime.timedelta(days=RESOLUTION_DAYS[category]),
        payment=payment,
        appealed_rule_version=appealed.rule_version if appealed else None,
        appealed_outcome=appealed.outcome if appealed else "",
        created_by=acting_user,
    )
    _record(
        grievance,
        acting_user=acting_user,
        from_status="",
        to_status=S.RECEIVED,
        note=f"By {channel}.",
        idempotency_key=idempotency_key,
    )
    if payment_not_received and payment.status == PaymentStatus.PAID:
        from payments.services import payment_dispute_raise

        payment_dispute_raise(
            acting_user=acting_user,
            payment=payment,
            note=f"Household says it was not received (grievance {grievance.number}).",
        )
    return grievance


# --- the state machine ------------------------------------------------------------------------


def _locked(grievance: Grievance) -> Grievance:
    """The grievance, locked for this step. Its `repeated` tells the caller whether the step recorded nothing."""
    locked = (
        Grievance.objects.select_for_update(of=("self",))
        .select_related("programme", "household", "district")
        .get(pk=grievance.pk)
    )
    locked.repeated = False
    return locked


def _move(grievance: Grievance, to_status: str, acting_user) -> str:
    """Check the move (the actor, then the state machine), and return the status moved from.

    The actor first: telling someone who may not act where a grievance stands would leak another
    district's (or a sensitive) grievance through the error message."""
    _require_act(acting_user, grievance)
    if to_status not in TRANSITIONS[grievance.status]:
        allowed = TRANSITIONS[grievance.status]
        where = ", ".join(S(s).label.lower() for s in allowed) or "nowhere: it is closed"
        raise ValidationError(
            {
                "status": [
                    f"Grievance {grievance.number} is {grievance.get_status_display().lower()}; it can go to {where}, "
                    f"not {S(to_status).label.lower()}."
                ]
            }
        )
    return grievance.status


def _already_done(grievance: Grievance, idempotency_key: str) -> bool:
    grievance.repeated = bool(idempotency_key) and grievance.events.filter(idempotency_key=idempotency_key).exists()
    return grievance.repeated


def _already_there(grievance: Grievance, to_status: str, acting_user, *, same: bool = True) -> bool:
    """The grievance already is where this step takes it, the same way (a second click, a retry without
    its key, two officers at once): done, once, for someone who may act on it. A step that legitimately
    repeats a status (reassigning to someone else) is `same=False` and goes on."""
    if grievance.status != to_status or not same:
        return False
    _require_act(acting_user, grievance)
    grievance.repeated = True
    return True


@transaction.atomic
def grievance_acknowledge(*, acting_user, grievance: Grievance, note: str = "", idempotency_key: str = "") -> Grievance:
    """Acknowledged: the person gets the reference number to keep (the printable slip)."""
    grievance = _locked(grievance)
    if _already_done(grievance, idempotency_key) or _already_there(grievance, S.ACKNOWLEDGED, acting_user):
        return grievance
    from_status = _move(grievance, S.ACKNOWLEDGED, acting_user)
    grievance.status, grievance.acknowledged_at = S.ACKNOWLEDGED, timezone.now()
    grievance.save()
    _record(
        grievance,
        acting_user=acting_user,
        from_status=from_status,
        to_status=S.ACKNOWLEDGED,
        note=note.strip(),
        idempotency_key=idempotency_key,
    )
    return grievance


@transaction.atomic
def grievance_assign(
    *,
    acting_user,
    grievance: Grievance,
    to_user: User | None = None,
    to_agency: Agency | None = None,
    note: str = "",
    idempotency_key: str = "",
) -> Grievance:
    """Give it to an officer or an agency. A sensitive grievance only to a designated officer."""
    grievance = _locked(grievance)
    same_assignee = (grievance.assigned_to_id, grievance.assigned_agency_id) == (
        to_user.pk if to_user else None,
        to_agency.pk if to_agency else None,
    )
    if _already_done(grievance, idempotency_key) or _already_there(
        grievance, S.ASSIGNED, acting_user, same=same_assignee
    ):
        return grievance
    from_status = _move(grievance, S.ASSIGNED, acting_user)
    if (to_user is None) == (to_agency is None):
        raise ValidationError({"assigned_to": ["Assign it to one officer or one agency."]})
    if to_user is not None:
        if not user_may_see_district(to_user, grievance.district_id) or not to_user.is_active:
            raise ValidationError(
                {
                    "assigned_to": [
                        f"{to_user.get_full_name() or to_user.username} does not work in {grievance.district.name}."
                    ]
                }
            )
        if grievance.sensitive and not may_handle_sensitive(to_user):
            raise ValidationError({"assigned_to": ["This grievance is sensitive: assign it to a designated officer."]})
    if to_agency is not None and grievance.sensitive:
        raise ValidationError(
            {"assigned_agency": ["A sensitive grievance stays with designated officers, not an agency."]}
        )
    changes = {
        "assigned_to": [grievance.assigned_to_id, to_user.pk if to_user else None],
        "assigned_agency": [grievance.assigned_agency_id, to_agency.pk if to_agency else None],
    }
    grievance.status, grievance.assigned_to, grievance.assigned_agency = S.ASSIGNED, to_user, to_agency
    grievance.escalated_to = ""
    grievance.save()
    _record(
        grievance,
        acting_user=acting_user,
        from_status=from_status,
        to_status=S.ASSIGNED,
        note=note.strip(),
        changes=changes,
        idempotency_key=idempotency_key,
    )
    return grievance


@transaction.atomic
def grievance_investigated(*, acting_user, grievance: Grievance, findings: str, idempotency_key: str = "") -> Grievance:
    grievance = _locked(grievance)
    if _already_done(grievance, idempotency_key) or _already_there(grievance, S.INVESTIGATED, acting_user):
        return grievance
    from_status = _move(grievance, S.INVESTIGATED, acting_user)
    if not (findings or "").strip():
        raise ValidationError({"findings": ["Write what the investigation found."]})
    grievance.status = S.INVESTIGATED
    grievance.save()
    _record(
        grievance,
        acting_user=acting_user,
        from_status=from_status,
        to_status=S.INVESTIGATED,
        note=findings.strip(),
        idempotency_key=idempotency_key,
    )
    return grievance


@transaction.atomic
def grievance_escalate(
    *, acting_user, grievance: Grievance, to: str, reason: str, idempotency_key: str = ""
) -> Grievance:
    """To the district committee or the ministry, with why (also when the person does not accept a resolution)."""
    grievance = _locked(grievance)
    if _already_done(grievance, idempotency_key) or _already_there(
        grievance, S.ESCALATED, acting_user, same=grievance.escalated_to == to
    ):
        return grievance
    from_status = _move(grievance, S.ESCALATED, acting_user)
    if to not in EscalationLevel.values:
        raise ValidationError({"escalated_to": [f"Escalate to one of {', '.join(EscalationLevel.values)}."]})
    if not (reason or "").strip():
        raise ValidationError({"reason": ["Say why it is escalated."]})
    changes = {"escalated_to": [grievance.escalated_to, to]}
    grievance.status, grievance.escalated_to = S.ESCALATED, to
    if from_status == S.RESOLVED:
        changes["resolution_accepted"] = [grievance.resolution_accepted, False]
        grievance.resolution_accepted, grievance.resolved_at = False, None
    grievance.save()
    _record(
        grievance,
        acting_user=acting_user,
        from_status=from_status,
        to_status=S.ESCALATED,
        note=reason.strip(),
        changes=changes,
        idempotency_key=idempotency_key,
    )
    return grievance


@transaction.atomic
def grievance_resolve(
    *, acting_user, grievance: Grievance, resolution: str, appeal_outcome: str = "", idempotency_key: str = ""
) -> Grievance:
    """Resolved, with the resolution in words. An eligibility appeal says whether it is upheld
    (an upheld one goes through `appeal_uphold`, which applies the corrections)."""
    grievance = _locked(grievance)
    if _already_done(grievance, idempotency_key) or _already_there(
        grievance, S.RESOLVED, acting_user, same=grievance.appeal_outcome == (appeal_outcome or "")
    ):
        return grievance
    from_status = _move(grievance, S.RESOLVED, acting_user)
    if not (resolution or "").strip():
        raise ValidationError({"resolution": ["Write the resolution the person is told."]})
    if appeal_outcome and appeal_outcome not in AppealOutcome.values:
        raise ValidationError({"appeal_outcome": [f"Use one of {', '.join(AppealOutcome.values)}."]})
    if appeal_outcome and grievance.category != GrievanceCategory.ELIGIBILITY:
        raise ValidationError({"appeal_outcome": ["Only an eligibility appeal is upheld or not."]})
    if appeal_outcome == AppealOutcome.UPHELD:
        raise ValidationError({"appeal_outcome": ["Uphold an appeal with its corrections (appeal_uphold)."]})
    return _resolve(
        grievance,
        acting_user=acting_user,
        from_status=from_status,
        resolution=resolution,
        appeal_outcome=appeal_outcome,
        idempotency_key=idempotency_key,
    )


def _resolve(
    grievance: Grievance,
    *,
    acting_user,
    from_status: str,
    resolution: str,
    appeal_outcome: str = "",
    changes: dict | None = None,
    idempotency_key: str = "",
) -> Grievance:
    grievance.status, grievance.resolution, grievance.resolved_at = S.RESOLVED, resolution.strip(), timezone.now()
    grievance.appeal_outcome = appeal_outcome
    grievance.overdue_since = None
    grievance.save()
    _record(
        grievance,
        acting_user=acting_user,
        from_status=from_status,
        to_status=S.RESOLVED,
        note=resolution.strip(),
        changes={**(changes or {}), **({"appeal_outcome": ["", appeal_outcome]} if appeal_outcome else {})},
        idempotency_key=idempotency_key,
    )
    return grievance


@dataclass
class MemberCorrection:
    member: Member
    values: dict


@transaction.atomic
def appeal_uphold(
    *,
    acting_user,
    grievance: Grievance,
    resolution: str,
    household_values: dict | None = None,
    household_attributes: dict | None = None,
    member_corrections: list[MemberCorrection] | None = None,
    reference_date: datetime.date | None = None,
    idempotency_key: str = "",
) -> Grievance:
    """Uphold an eligibility appeal: correct the record through the registry's services (each
    correction in the household's history), re-assess the household at once, and record on the
    appeal the outcome it now has for the programme appealed."""
    from programmes.services import eligibility_recompute_household
    from registry.services import household_update, member_update

    grievance = _locked(grievance)
    if _already_done(grievance, idempotency_key) or _already_there(
        grievance, S.RESOLVED, acting_user, same=grievance.appeal_outcome == AppealOutcome.UPHELD
    ):
        return grievance
    from_status = _move(grievance, S.RESOLVED, acting_user)
    if grievance.category != GrievanceCategory.ELIGIBILITY or grievance.household_id is None:
        raise ValidationError({"appeal_outcome": ["Only an eligibility appeal about a household is upheld."]})
    if not (resolution or "").strip():
        raise ValidationError({"resolution": ["Write the resolution the person is told."]})
    note = f"Appeal {grievance.number} upheld."
    household = grievance.household
    if household_values or household_attributes:
        # The rules read the household's extensible attributes (a PMT score, the dwelling): corrected the same way.
        household_update(
            acting_user=acting_user,
            household=household,
            values=household_values or {},
            attributes=household_attributes,
            note=note,
        )
    for correction in member_corrections or []:
        if correction.member.household_id != household.pk:
            raise ValidationError(
                {"member": [f"{correction.member.full_name} is not in household {household.number}."]}
            )
        member_update(acting_user=acting_user, member=correction.member, values=correction.values, note=note)
    eligibility_recompute_household(household_id=household.pk, reference_date=reference_date)
    after = ""
    if grievance.programme_id:
        after = (
            EligibilityResult.objects.filter(household=household, programme_id=grievance.programme_id)
            .values_list("outcome", flat=True)
            .first()
            or ""
        )
    grievance.outcome_after = after
    return _resolve(
        grievance,
        acting_user=acting_user,
        from_status=from_status,
        resolution=resolution,
        appeal_outcome=AppealOutcome.UPHELD,
        changes={"eligibility": [grievance.appealed_outcome, after]},
        idempotency_key=idempotency_key,
    )


@transaction.atomic
def grievance_close(
    *, acting_user, grievance: Grievance, accepted: bool, note: str = "", idempotency_key: str = ""
) -> Grievance:
    """Closed after the person was told the resolution; records whether they accepted it
    (one who does not, and wants to go further, is escalated instead)."""
    grievance = _locked(grievance)
    if _already_done(grievance, idempotency_key) or _already_there(grievance, S.CLOSED, acting_user):
        return grievance
    from_status = _move(grievance, S.CLOSED, acting_user)
    grievance.status, grievance.closed_at, grievance.resolution_accepted = S.CLOSED, timezone.now(), bool(accepted)
    grievance.save()
    _record(
        grievance,
        acting_user=acting_user,
        from_status=from_status,
        to_status=S.CLOSED,
        note=note.strip(),
        changes={"resolution_accepted": [None, bool(accepted)]},
        idempotency_key=idempotency_key,
    )
    return grievance


def grievance_moves_for(*, grievance: Grievance, user) -> list[str]:
    """The statuses `user` may move `grievance` to now: what a page offers as buttons."""
    return list(TRANSITIONS[grievance.status]) if may_act(user, grievance) else []


# --- attachments, the overdue job -----------------------------------------------------------------

ATTACHMENT_MAX_BYTES = 5 * 1024 * 1024
ATTACHMENT_EXTENSIONS = (".pdf", ".jpg", ".jpeg", ".png")


@transaction.atomic
def grievance_attachment_add(*, acting_user, grievance: Grievance, file, description: str = "") -> GrievanceAttachment:
    if not (may_act(acting_user, grievance) or grievance.created_by_id == acting_user.pk):
        raise PermissionDenied(f"You cannot add documents to grievance {grievance.number}.")
    name = (getattr(file, "name", "") or "").lower()
    if not name.endswith(ATTACHMENT_EXTENSIONS):
        kinds = ", ".join(extension.lstrip(".").upper() for extension in ATTACHMENT_EXTENSIONS)
        raise ValidationError({"attachment": [f"Attach a {kinds} file."]})
    if file.size > ATTACHMENT_MAX_BYTES:
        raise ValidationError({"attachment": [f"The file is larger than {ATTACHMENT_MAX_BYTES // (1024 * 1024)} MB."]})
    return GrievanceAttachment.objects.create(
        grievance=grievance, file=file, description=description.strip()[:200], uploaded_by=acting_user
    )


def grievances_mark_overdue(*, today: datetime.date | None = None) -> int:
    """Beat, each morning: open grievances past their deadline are flagged (once); returns how many."""
    today = today or timezone.localdate()
    return Grievance.objects.filter(status__in=OPEN_STATUSES, due_date__lt=today, overdue_since__isnull=True).update(
        overdue_since=today, updated_at=timezone.now()
    )


__all__ = [
    "RESOLUTION_DAYS",
    "TRANSITIONS",
    "MemberCorrection",
    "appeal_uphold",
    "grievance_acknowledge",
    "grievance_assign",
    "grievance_attachment_add",
    "grievance_close",
    "grievance_escalate",
    "grievance_investigated",
    "grievance_moves_for",
    "grievance_register",
    "grievance_resolve",
    "grievances_mark_overdue",
    "may_act",
    "may_handle_sensitive",
    "may_see",
]
