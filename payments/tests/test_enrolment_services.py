"""The enrolment state machine: who may move it where, maker-checker, capacity and budget, history."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from payments.models import Enrolment, EnrolmentEventKind, EnrolmentSource, EnrolmentStatus, ExitReason, PaymentChannel
from payments.services import (
    enrolment_apply,
    enrolment_review_close,
    enrolment_set_payment_details,
    enrolment_transition,
    enrolments_flag_lost_eligibility,
)
from programmes.models import EligibilityOutcome, EligibilityResult, EnrolmentMode
from programmes.services import eligibility_recompute_household
from referrals.models import ReferralStatus
from referrals.services import referral_create, referral_transition

from .makers import enrol_active, make_cash_programme, make_household

E = EnrolmentStatus


def _apply(user, household, programme, **extra):
    return enrolment_apply(
        acting_user=user,
        household=household,
        programme=programme,
        channel=PaymentChannel.CASH,
        pay_point="Samfya boma",
        **extra,
    )


def test_window_enrols_directly_for_a_direct_programme(samfya_officer, household, programme):
    enrolment = _apply(samfya_officer, household, programme)
    assert enrolment.status == E.APPLIED
    assert enrolment.district_id == household.district_id
    assert enrolment.currency == "ZMW"
    event = enrolment.events.get()
    assert (event.to_status, event.actor) == (E.APPLIED, samfya_officer)


def test_window_cannot_enrol_directly_when_the_programme_needs_a_referral(samfya_officer, household, programme):
    programme.enrolment_mode = EnrolmentMode.REFERRAL
    programme.save()
    with pytest.raises(ValidationError) as problem:
        _apply(samfya_officer, household, programme)
    assert "enrols by referral" in str(problem.value.message_dict["programme"])


def test_officer_cannot_enrol_a_household_of_another_district(lunga_officer, household, programme):
    with pytest.raises(PermissionDenied):
        _apply(lunga_officer, household, programme)


def test_a_household_is_enrolled_once_per_programme(samfya_officer, household, programme):
    _apply(samfya_officer, household, programme)
    with pytest.raises(ValidationError) as problem:
        _apply(samfya_officer, household, programme)
    assert "already enrolled" in str(problem.value.message_dict["programme"])


def test_mobile_money_needs_a_wallet_number(samfya_officer, household, programme):
    with pytest.raises(ValidationError) as problem:
        enrolment_apply(
            acting_user=samfya_officer, household=household, programme=programme, channel=PaymentChannel.MOBILE_MONEY
        )
    assert "wallet" in problem.value.message_dict["account_number"][0]


def test_the_approver_must_not_be_the_maker(maker, household, programme):
    enrolment = enrolment_apply(
        acting_user=maker,
        household=household,
        programme=programme,
        source=EnrolmentSource.AGENCY,
        channel=PaymentChannel.CASH,
        pay_point="Boma",
    )
    enrolment = enrolment_transition(enrolment=enrolment, to_status=E.VERIFIED, acting_user=maker)
    with pytest.raises(ValidationError) as problem:
        enrolment_transition(enrolment=enrolment, to_status=E.APPROVED, acting_user=maker)
    assert "Maker-checker" in problem.value.message_dict["approved_by"][0]


def test_the_approver_must_not_be_the_verifier(samfya_officer, maker, checker, household, programme):
    enrolment = _apply(samfya_officer, household, programme)
    enrolment = enrolment_transition(enrolment=enrolment, to_status=E.VERIFIED, acting_user=checker)
    with pytest.raises(ValidationError):
        enrolment_transition(enrolment=enrolment, to_status=E.APPROVED, acting_user=checker)
    approved = enrolment_transition(enrolment=enrolment, to_status=E.APPROVED, acting_user=maker)
    assert approved.approved_by == maker


def test_front_desk_cannot_approve(samfya_officer, maker, household, programme):
    enrolment = _apply(maker, household, programme)
    enrolment = enrolment_transition(enrolment=enrolment, to_status=E.VERIFIED, acting_user=maker)
    with pytest.raises(PermissionDenied):
        enrolment_transition(enrolment=enrolment, to_status=E.APPROVED, acting_user=samfya_officer)


def test_approval_sets_the_amount_from_the_formula(maker, checker, household, programme):
    enrolment = enrol_active(household=household, programme=programme, maker=maker, checker=checker)
    assert enrolment.amount == Decimal("150.00")
    assert enrolment.amount_rule_version == programme.current_version
    approval = enrolment.events.get(to_status=E.APPROVED)
    assert approval.changes == {"amount": [None, "150.00"]}


def test_approval_is_refused_when_the_district_is_full(maker, checker, samfya_officer, samfya_village, programme):
    programme.coverage.update(capacity=1)
    enrol_active(
        household=make_household(officer=samfya_officer, village=samfya_village, last_name="Banda"),
        programme=programme,
        maker=maker,
        checker=checker,
    )
    second = _apply(maker, make_household(officer=samfya_officer, village=samfya_village, last_name="Phiri"), programme)
    second = enrolment_transition(enrolment=second, to_status=E.VERIFIED, acting_user=maker)
    with pytest.raises(ValidationError) as problem:
        enrolment_transition(enrolment=second, to_status=E.APPROVED, acting_user=checker)
    assert "1 of 1 places are taken" in problem.value.message_dict["capacity"][0]
    assert Enrolment.objects.get(pk=second.pk).status == E.VERIFIED


def test_approval_is_refused_when_the_yearly_budget_would_be_exceeded(maker, checker, household, programme):
    programme.coverage.update(budget=Decimal("1000.00"))  # 150 a month is 1,800 a year
    enrolment = _apply(maker, household, programme)
    enrolment = enrolment_transition(enrolment=enrolment, to_status=E.VERIFIED, acting_user=maker)
    with pytest.raises(ValidationError) as problem:
        enrolment_transition(enrolment=enrolment, to_status=E.APPROVED, acting_user=checker)
    assert "yearly budget" in problem.value.message_dict["budget"][0]


def test_illegal_transition_is_refused_with_the_moves_allowed(maker, household, programme):
    enrolment = _apply(maker, household, programme)
    with pytest.raises(ValidationError) as problem:
        enrolment_transition(enrolment=enrolment, to_status=E.ACTIVE, acting_user=maker)
    assert "can go to verified, exited" in problem.value.message_dict["status"][0]


def test_suspension_needs_a_reason_and_exit_a_listed_reason(maker, checker, household, programme):
    enrolment = enrol_active(household=household, programme=programme, maker=maker, checker=checker)
    with pytest.raises(ValidationError):
        enrolment_transition(enrolment=enrolment, to_status=E.SUSPENDED, acting_user=checker)
    enrolment = enrolment_transition(enrolment=enrolment, to_status=E.SUSPENDED, acting_user=checker, reason="Absent")
    with pytest.raises(ValidationError):
        enrolment_transition(enrolment=enrolment, to_status=E.EXITED, acting_user=checker, exit_reason="bored")
    enrolment = enrolment_transition(
        enrolment=enrolment, to_status=E.EXITED, acting_user=checker, exit_reason=ExitReason.GRADUATED
    )
    assert enrolment.status == E.EXITED
    assert [e.to_status for e in enrolment.events.filter(kind=EnrolmentEventKind.STATUS)] == [
        E.APPLIED,
        E.VERIFIED,
        E.APPROVED,
        E.ACTIVE,
        E.SUSPENDED,
        E.EXITED,
    ]


def test_an_exited_household_can_enrol_again(maker, checker, household, programme):
    first = enrol_active(household=household, programme=programme, maker=maker, checker=checker)
    enrolment_transition(enrolment=first, to_status=E.EXITED, acting_user=checker, exit_reason=ExitReason.MOVED)
    again = _apply(maker, household, programme)
    assert again.pk != first.pk


def test_the_same_transition_twice_with_a_key_is_done_once(maker, household, programme):
    enrolment = _apply(maker, household, programme)
    enrolment_transition(enrolment=enrolment, to_status=E.VERIFIED, acting_user=maker, idempotency_key="k1")
    again = enrolment_transition(enrolment=enrolment, to_status=E.VERIFIED, acting_user=maker, idempotency_key="k1")
    assert again.status == E.VERIFIED
    assert enrolment.events.filter(to_status=E.VERIFIED).count() == 1


def test_enrolment_from_an_accepted_referral_completes_it_when_active(
    samfya_officer, maker, checker, household, programme
):
    programme.enrolment_mode = EnrolmentMode.REFERRAL
    programme.save()
    referral = referral_create(acting_user=samfya_officer, household=household, programme=programme)
    with pytest.raises(ValidationError):
        enrolment_apply(
            acting_user=maker,
            household=household,
            programme=programme,
            referral=referral,
            source=EnrolmentSource.REFERRAL,
            channel=PaymentChannel.CASH,
            pay_point="Boma",
        )
    referral = referral_transition(referral=referral, to_status=ReferralStatus.ACCEPTED, acting_user=maker)
    enrolment = enrolment_apply(
        acting_user=maker,
        household=household,
        programme=programme,
        referral=referral,
        source=EnrolmentSource.REFERRAL,
        channel=PaymentChannel.CASH,
        pay_point="Boma",
    )
    enrolment = enrolment_transition(enrolment=enrolment, to_status=E.VERIFIED, acting_user=maker)
    enrolment = enrolment_transition(enrolment=enrolment, to_status=E.APPROVED, acting_user=checker)
    enrolment_transition(enrolment=enrolment, to_status=E.ACTIVE, acting_user=checker)
    referral.refresh_from_db()
    assert referral.status == ReferralStatus.COMPLETED


def test_payment_details_change_is_recorded(maker, checker, household, programme):
    enrolment = enrol_active(household=household, programme=programme, maker=maker, checker=checker)
    enrolment_set_payment_details(
        acting_user=maker,
        enrolment=enrolment,
        channel=PaymentChannel.BANK,
        account_number="0011223344",
        reason="Opened a bank account",
    )
    event = enrolment.events.get(kind=EnrolmentEventKind.DETAILS)
    assert event.changes["channel"] == ["mobile_money", "bank"]
    assert event.actor == maker


def test_lost_eligibility_flags_for_review_and_never_exits(maker, checker, household, programme):
    enrolment = enrol_active(household=household, programme=programme, maker=maker, checker=checker)
    eligibility_recompute_household(household_id=household.pk)
    assert enrolments_flag_lost_eligibility() == 0  # still eligible
    EligibilityResult.objects.filter(household=household, programme=programme).update(
        outcome=EligibilityOutcome.NOT_ELIGIBLE
    )
    assert enrolments_flag_lost_eligibility() == 1
    assert enrolments_flag_lost_eligibility() == 0
    enrolment.refresh_from_db()
    assert enrolment.status == E.ACTIVE and enrolment.review_since is not None
    kept = enrolment_review_close(acting_user=checker, enrolment=enrolment, keep=True, reason="Temporary income")
    assert kept.review_since is None and kept.status == E.ACTIVE
    assert kept.events.filter(kind=EnrolmentEventKind.REVIEW).count() == 2


def test_a_household_reassessed_alone_has_only_its_own_enrolments_reviewed(
    maker,
    checker,
    household,
    programme,
    samfya_officer,
    samfya_village,
    django_capture_on_commit_callbacks,
    monkeypatch,
):
    from payments.tasks import enrolments_flag_review
    from programmes.signals import eligibility_changed
    from spf.celery import app as celery_app

    other = make_household(officer=samfya_officer, village=samfya_village)
    for each in (household, other):
        enrol_active(household=each, programme=programme, maker=maker, checker=checker)
        eligibility_recompute_household(household_id=each.pk)
    EligibilityResult.objects.filter(programme=programme).update(outcome=EligibilityOutcome.NOT_ELIGIBLE)

    assert enrolments_flag_review([household.pk]) == 1
    assert set(Enrolment.objects.filter(review_since__isnull=False).values_list("household_id", flat=True)) == {
        household.pk
    }
    # The signal of households re-assessed one by one carries them to the review job (run here, not on a worker).
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            eligibility_changed.send(sender=None, outcomes_changed=None, household_ids=[other.pk])
    finally:
        celery_app.conf.task_always_eager = eager
    assert Enrolment.objects.filter(review_since__isnull=False).count() == 2


def test_individual_programme_needs_a_member(maker, samfya, ministry_user, agency, household):
    programme = make_cash_programme(
        code="OAP", agency=agency, districts=[samfya], ministry_user=ministry_user, formula=""
    )
    programme.target_unit = "individual"
    programme.save()
    with pytest.raises(ValidationError) as problem:
        _apply(maker, household, programme)
    assert "choose the member" in problem.value.message_dict["member"][0]
    head = household.members.get()
    enrolment = _apply(maker, household, programme, member=head)
    assert enrolment.member == head


def test_an_enrolled_household_is_not_referred_again(samfya_officer, maker, checker, household, programme):
    enrol_active(household=household, programme=programme, maker=maker, checker=checker)
    with pytest.raises(ValidationError) as problem:
        referral_create(acting_user=samfya_officer, household=household, programme=programme)
    assert "already enrolled" in problem.value.message_dict["programme"][0]


def test_automatic_referrals_skip_households_already_enrolled(
    samfya_officer, samfya_village, maker, checker, programme
):
    from programmes.models import AutoReferral
    from referrals.models import Referral
    from referrals.services import referrals_from_eligibility

    programme.auto_referral = AutoReferral.SUGGEST
    programme.save()
    enrolled = make_household(officer=samfya_officer, village=samfya_village, last_name="Banda")
    waiting = make_household(officer=samfya_officer, village=samfya_village, last_name="Phiri")
    enrol_active(household=enrolled, programme=programme, maker=maker, checker=checker)
    for household in (enrolled, waiting):
        eligibility_recompute_household(household_id=household.pk)
    referrals_from_eligibility()
    assert list(Referral.objects.filter(programme=programme).values_list("household_id", flat=True)) == [waiting.pk]
