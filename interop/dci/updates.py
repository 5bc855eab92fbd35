"""Enrolment updates from another system (the IBR's /registry/sync/enrollment/updates).

Each beneficiary of the message names a person (or household) and a
programme with its enrolment status in the sender's system. What it becomes
here depends on who sends it:

- the programme's own agency (a partner registered with that agency): an
  enrolment change, made through `payments.services` as the agency's system
  (source "agency"): applied and verified here, then moved to the reported
  status as far as the rules allow. A partner system is never the checker:
  approval waits for an officer of the agency (maker-checker), and the item
  answers `pdng` until then; the next update after approval activates it.
- any other system (a registry, another ministry's MIS): a referral to the
  programme's agency (source "agency", the sender named), suggested to the
  window like an automatic referral: an officer confirms and sends it, then
  the agency verifies and enrols. The item answers `pdng` until then. It
  cannot suspend or end another agency's enrolment.

Every beneficiary is its own transaction: one refused does not undo the
others, and each answers with its own status and reason.
"""

from __future__ import annotations

from collections import deque

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from payments.models import CURRENT_STATUSES, Enrolment, EnrolmentSource, EnrolmentStatus, ExitReason, PaymentChannel
from payments.services import TRANSITIONS, enrolment_apply, enrolment_transition
from programmes.models import Programme, TargetUnit
from referrals.models import OPEN_STATUSES, Referral, ReferralSource
from referrals.services import referral_create

from ..models import Partner
from .envelope import now_iso
from .people import find, identifiers_in
from .results import PENDING, REJECTED, SUCCEEDED, ItemResult, Outcome

E = EnrolmentStatus

# cd.ibr.01 enrolment_status (codes and words), and our own statuses: where the
# enrolment should be here, and why it ended when it did.
TARGETS: dict[str, tuple[str, str]] = {
    "1": (E.ACTIVE, ""),
    "active": (E.ACTIVE, ""),
    "2": (E.EXITED, ExitReason.DECEASED),
    "deceased": (E.EXITED, ExitReason.DECEASED),
    "3": (E.EXITED, ExitReason.GRADUATED),
    "graduated": (E.EXITED, ExitReason.GRADUATED),
    "4": (E.SUSPENDED, ""),
    "suspended": (E.SUSPENDED, ""),
    "5": (E.SUSPENDED, ""),
    "inactive": (E.SUSPENDED, ""),
    "6": (E.ACTIVE, ""),
    "reinstated": (E.ACTIVE, ""),
    "7": (E.ACTIVE, ""),
    "awaiting renewal": (E.ACTIVE, ""),
    "applied": (E.APPLIED, ""),
    "enrolled": (E.ACTIVE, ""),
    "verified": (E.VERIFIED, ""),
    "approved": (E.APPROVED, ""),
}
# How far along the way in an enrolment is: a report of an earlier step changes nothing.
PROGRESS = {E.APPLIED: 0, E.VERIFIED: 1, E.APPROVED: 2, E.ACTIVE: 3, E.SUSPENDED: 3}


class Refused(Exception):
    pass


def _problem_text(problem: ValidationError) -> str:
    if hasattr(problem, "error_dict"):
        return " ".join(f"{field}: {' '.join(messages)}" for field, messages in problem.message_dict.items())
    return " ".join(problem.messages)


def _path(start: str, goal: str) -> list[str] | None:
    """The statuses to go through from `start` to `goal` (not counting start), shortest first."""
    queue, seen = deque([(start, [])]), {start}
    while queue:
        status, path = queue.popleft()
        if status == goal:
            return path
        for following in TRANSITIONS[status]:
            if following not in seen and (following != E.EXITED or goal == E.EXITED):
                seen.add(following)
                queue.append((following, [*path, following]))
    return None


def _programme_block(beneficiary: dict) -> dict:
    member = beneficiary.get("member") if isinstance(beneficiary.get("member"), dict) else {}
    block = (
        member.get("programme_identifier") or beneficiary.get("programme_identifier") or beneficiary.get("programme")
    )
    if isinstance(block, list) and len(block) == 1:
        block = block[0]
    if not isinstance(block, dict):
        raise Refused("member.programme_identifier: required, the programme and the enrolment status.")
    return block


def _programme_code(block: dict) -> str:
    programme = block.get("programme")
    code = programme.get("programme_identifier") if isinstance(programme, dict) else block.get("programme_identifier")
    if not isinstance(code, str) or not code.strip():
        raise Refused("member.programme_identifier.programme.programme_identifier: required, the programme's code.")
    return code.strip().upper()


def _target(block: dict) -> tuple[str, str, str]:
    reported = str(block.get("enrolment_status") or block.get("enrollment_status") or "").strip()
    target = TARGETS.get(reported.lower())
    if target is None:
        if reported.lower() == "exited" and block.get("exit_reason") in ExitReason.values:
            return E.EXITED, block["exit_reason"], reported
        raise Refused(
            f"member.programme_identifier.enrolment_status: '{reported}' is not an enrolment status; use Active, "
            "Deceased, Graduated, Suspended, Inactive, Reinstated or Awaiting Renewal (or their codes 1 to 7)."
        )
    return target[0], target[1], reported


def _as_enrolment(
    *, partner: Partner, programme: Programme, found, goal: str, exit_reason: str, reported: str, key: str
) -> tuple[str, str, Enrolment | None]:
    """Bring the enrolment here to the reported status, as the agency's system may. (status, message, enrolment)."""
    user = partner.service_user
    member = found.member if programme.target_unit == TargetUnit.INDIVIDUAL else None
    if programme.target_unit == TargetUnit.INDIVIDUAL and member is None:
        raise Refused(f"{programme.name} serves individuals: name the person (NID), not only the household.")
    current = Enrolment.objects.filter(programme=programme, status__in=CURRENT_STATUSES)
    current = (
        current.filter(member=member) if member else current.filter(household=found.household, member__isnull=True)
    )
    enrolment = current.first()
    note = f"Reported {reported} by {partner.name} over DCI."
    if enrolment is None:
        if goal == E.EXITED:
            return SUCCEEDED, f"Not enrolled in {programme.code} here: nothing to end.", None
        enrolment = enrolment_apply(
            acting_user=user,
            household=found.household,
            programme=programme,
            member=member,
            source=EnrolmentSource.AGENCY,
            channel=PaymentChannel.CASH,
            pay_point=partner.pay_point,
            reason=note,
            idempotency_key=f"{key}:apply",
        )
    if enrolment.status == goal or (
        goal in PROGRESS and enrolment.status in PROGRESS and PROGRESS[enrolment.status] > PROGRESS[goal]
    ):
        return SUCCEEDED, f"Enrolment {enrolment.number} is {enrolment.get_status_display().lower()}.", enrolment
    path = _path(enrolment.status, goal)
    if path is None:
        raise Refused(
            f"Enrolment {enrolment.number} is {enrolment.get_status_display().lower()}; it cannot become "
            f"{E(goal).label.lower()}."
        )
    for step in path:
        if step == E.APPROVED:
            return (
                PENDING,
                f"Enrolment {enrolment.number} is {enrolment.get_status_display().lower()}: an officer of "
                f"{programme.agency.code} approves it here (maker-checker); the next update then makes it "
                f"{E(goal).label.lower()}.",
                enrolment,
            )
        enrolment = enrolment_transition(
            enrolment=enrolment,
            to_status=step,
            acting_user=user,
            reason=note,
            exit_reason=exit_reason if step == E.EXITED else "",
            idempotency_key=f"{key}:{step}",
        )
    return SUCCEEDED, f"Enrolment {enrolment.number} is {enrolment.get_status_display().lower()}.", enrolment


def _as_referral(
    *, partner: Partner, programme: Programme, found, goal: str, reported: str
) -> tuple[str, str, Referral | None]:
    """Another system reports someone in a programme it does not run: a referral to the programme's agency,
    suggested to the window, which confirms and sends it."""
    if goal in (E.SUSPENDED, E.EXITED):
        raise Refused(
            f"Only {programme.agency.code} changes enrolments in {programme.code}; tell them, or ask ministry staff to "
            "register their system."
        )
    member = found.member if programme.target_unit == TargetUnit.INDIVIDUAL else None
    if programme.target_unit == TargetUnit.INDIVIDUAL and member is None:
        raise Refused(f"{programme.name} serves individuals: name the person (NID), not only the household.")
    enrolled = Enrolment.objects.filter(programme=programme, household=found.household, status__in=CURRENT_STATUSES)
    enrolled = enrolled.filter(member=member) if member else enrolled.filter(member__isnull=True)
    if (current := enrolled.first()) is not None:
        return SUCCEEDED, f"Already enrolled here ({current.number}, {current.get_status_display().lower()}).", None
    open_referral = Referral.objects.filter(
        programme=programme, household=found.household, status__in=OPEN_STATUSES
    ).first()
    if open_referral is not None:
        return SUCCEEDED, f"Already referred to {programme.agency.code} ({open_referral.number}).", open_referral
    # A suggestion, as automatic referrals are: another system's word reaches the
    # agency's queue only once the window has looked at the household and sent it.
    referral = referral_create(
        acting_user=None,
        household=found.household,
        programme=programme,
        member=member,
        source=ReferralSource.AGENCY,
        source_detail=f"{partner.name} (DCI)"[:160],
        reason=f"{partner.name} reports this {'person' if member else 'household'} as {reported} in "
        f"{programme.name}: verify and enrol.",
        send=False,
    )
    return (
        PENDING,
        f"Suggested as referral {referral.number} to {programme.agency.code}: the window of "
        f"{found.household.district.name} confirms and sends it, and {programme.agency.code} verifies and enrols.",
        referral,
    )


def update_one(*, partner: Partner, beneficiary, index: int, message_id: str) -> ItemResult:
    where = f"enrolled_updates.beneficiaries[{index}]"
    reference_id = ""
    if isinstance(beneficiary, dict):
        reference_id = str(beneficiary.get("reference_id") or "")[:99]
    reference_id = reference_id or str(index + 1)
    enrolment_id = referral_id = None
    try:
        if not isinstance(beneficiary, dict):
            raise Refused("must be an object (a Beneficiary).")
        block = _programme_block(beneficiary)
        code = _programme_code(block)
        goal, exit_reason, reported = _target(block)
        programme = partner.programmes.select_related("agency").filter(code=code).first()
        if programme is None:
            raise Refused(f"{code} is not among the programmes this partner may update.")
        found = find(partner, identifiers_in(beneficiary))
        if found.household is None:
            raise Refused(
                "No such person or household among the households this partner may see (by NID, MEMBER_ID or "
                "HHID): they are registered at the window first."
            )
        with transaction.atomic():
            if partner.agency_id is not None and partner.agency_id == programme.agency_id:
                status, text, enrolment = _as_enrolment(
                    partner=partner,
                    programme=programme,
                    found=found,
                    goal=goal,
                    exit_reason=exit_reason,
                    reported=reported,
                    key=f"dci:{partner.code}:{message_id}:{index}"[:90],
                )
                enrolment_id = enrolment.pk if enrolment else None
            else:
                status, text, referral = _as_referral(
                    partner=partner, programme=programme, found=found, goal=goal, reported=reported
                )
                referral_id = referral.pk if referral else None
    except Refused as problem:
        status, text = REJECTED, f"{where}: {problem}"
    except ValidationError as problem:
        status, text = REJECTED, f"{where}: {_problem_text(problem)}"
    except PermissionDenied as problem:
        status, text = REJECTED, f"{where}: {problem}"
    return ItemResult(
        reference_id=reference_id,
        status=status,
        reason_message=text,
        enrolment_id=enrolment_id,
        referral_id=referral_id,
        answer={
            "reference_id": reference_id,
            "timestamp": now_iso(),
            "status": status,
            "status_reason_message": text[:999],
        },
    )


def beneficiaries_of(message: dict) -> list:
    block = message.get("enrolled_updates")
    if block is None:
        # The specification's sample sends receipt_information where its schema says enrolled_updates.
        block = message.get("receipt_information")
    return block.get("beneficiaries") if isinstance(block, dict) else None


def updates_outcome(*, partner: Partner, message: dict, correlation_id: str, message_id: str) -> Outcome:
    items = [
        update_one(partner=partner, beneficiary=beneficiary, index=index, message_id=message_id)
        for index, beneficiary in enumerate(beneficiaries_of(message))
    ]
    body = {
        "transaction_id": str(message.get("transaction_id") or ""),
        "correlation_id": correlation_id,
        "enrolled_response": [item.answer for item in items],
    }
    return Outcome(body, items)
