"""Grievances: registering, the state machine with every step recorded, sensitivity, appeals that
change eligibility, payments reported not received, deadlines."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from grievances.models import AppealOutcome, EscalationLevel, GrievanceCategory, GrievanceStatus
from grievances.selectors import grievance_for_number, grievances_for, household_grievances
from grievances.services import (
    MemberCorrection,
    appeal_uphold,
    grievance_acknowledge,
    grievance_assign,
    grievance_close,
    grievance_escalate,
    grievance_investigated,
    grievance_register,
    grievance_resolve,
    grievances_mark_overdue,
)
from payments.models import Payment, PaymentStatus
from programmes.models import EligibilityOutcome, EligibilityResult
from programmes.services import eligibility_recompute_household, programme_set_rules
from referrals.tests.makers import make_programme

S = GrievanceStatus


def _register(user, household, **extra):
    values = {
        "category": GrievanceCategory.DATA_CORRECTION,
        "description": "My name is spelt wrong.",
        "complainant": household.head,
    }
    values.update(extra)
    return grievance_register(acting_user=user, household=household, **values)


def test_registered_grievance_gets_a_deadline_and_its_first_event(samfya_officer, household):
    grievance = _register(samfya_officer, household)
    assert grievance.status == S.RECEIVED and grievance.district == household.district
    assert grievance.due_date == timezone.localdate() + datetime.timedelta(days=14)
    assert grievance.number == f"G{grievance.pk:08d}"
    assert grievance.events.get().to_status == S.RECEIVED


def test_an_unnamed_person_must_be_anonymous(samfya_officer, samfya):
    with pytest.raises(ValidationError) as problem:
        grievance_register(
            acting_user=samfya_officer,
            district=samfya,
            category=GrievanceCategory.OTHER,
            description="The queue is too long.",
        )
    assert "complainant_name" in problem.value.message_dict
    grievance = grievance_register(
        acting_user=samfya_officer,
        district=samfya,
        category=GrievanceCategory.OTHER,
        description="The queue is too long.",
        anonymous=True,
    )
    assert grievance.anonymous and grievance.household is None


def test_officer_cannot_record_a_grievance_for_another_district(lunga_officer, household):
    with pytest.raises(PermissionDenied):
        _register(lunga_officer, household)


def test_every_transition_is_recorded(samfya_officer, other_samfya_officer, household):
    grievance = _register(samfya_officer, household)
    grievance = grievance_acknowledge(acting_user=samfya_officer, grievance=grievance)
    grievance = grievance_assign(acting_user=samfya_officer, grievance=grievance, to_user=other_samfya_officer)
    grievance = grievance_investigated(
        acting_user=other_samfya_officer, grievance=grievance, findings="Typo at registration."
    )
    grievance = grievance_resolve(acting_user=other_samfya_officer, grievance=grievance, resolution="Corrected.")
    grievance = grievance_close(acting_user=samfya_officer, grievance=grievance, accepted=True)
    events = list(grievance.events.values_list("from_status", "to_status", "actor__username"))
    assert events == [
        ("", S.RECEIVED, samfya_officer.username),
        (S.RECEIVED, S.ACKNOWLEDGED, samfya_officer.username),
        (S.ACKNOWLEDGED, S.ASSIGNED, samfya_officer.username),
        (S.ASSIGNED, S.INVESTIGATED, other_samfya_officer.username),
        (S.INVESTIGATED, S.RESOLVED, other_samfya_officer.username),
        (S.RESOLVED, S.CLOSED, samfya_officer.username),
    ]
    assert grievance.resolution_accepted is True


def test_illegal_transition_is_refused_with_the_moves_allowed(samfya_officer, household):
    grievance = _register(samfya_officer, household)
    with pytest.raises(ValidationError) as problem:
        grievance_resolve(acting_user=samfya_officer, grievance=grievance, resolution="Done")
    assert "can go to acknowledged" in problem.value.message_dict["status"][0]


def test_a_resolution_not_accepted_is_escalated(samfya_officer, household):
    grievance = _register(samfya_officer, household)
    grievance_acknowledge(acting_user=samfya_officer, grievance=grievance)
    grievance = grievance_resolve(acting_user=samfya_officer, grievance=grievance, resolution="Nothing wrong.")
    grievance = grievance_escalate(
        acting_user=samfya_officer,
        grievance=grievance,
        to=EscalationLevel.COMMITTEE,
        reason="The person does not accept it.",
    )
    assert grievance.status == S.ESCALATED and grievance.resolution_accepted is False


def test_committee_works_what_is_escalated_to_it(samfya_officer, committee_samfya, household):
    grievance = _register(samfya_officer, household)
    grievance_acknowledge(acting_user=samfya_officer, grievance=grievance)
    with pytest.raises(PermissionDenied):
        grievance_resolve(acting_user=committee_samfya, grievance=grievance, resolution="x")
    grievance_escalate(
        acting_user=samfya_officer, grievance=grievance, to=EscalationLevel.COMMITTEE, reason="Hard case"
    )
    resolved = grievance_resolve(acting_user=committee_samfya, grievance=grievance, resolution="Committee decided.")
    assert resolved.status == S.RESOLVED


def test_sensitive_grievance_cannot_be_seen_by_an_ordinary_officer_of_the_same_district(
    samfya_officer, other_samfya_officer, designated_officer, committee_samfya, ministry_user, household
):
    grievance = _register(
        samfya_officer,
        household,
        category=GrievanceCategory.STAFF_CONDUCT,
        sensitive=True,
        description="The pay point agent asked me for money.",
    )
    assert not grievances_for(other_samfya_officer).filter(pk=grievance.pk).exists()
    assert not grievances_for(committee_samfya).filter(pk=grievance.pk).exists()
    assert not grievances_for(ministry_user).filter(pk=grievance.pk).exists()
    assert not household_grievances(user=other_samfya_officer, household_id=household.pk).exists()
    with pytest.raises(grievance.DoesNotExist):
        grievance_for_number(user=other_samfya_officer, number=grievance.number)
    assert grievances_for(designated_officer).filter(pk=grievance.pk).exists()
    with pytest.raises(PermissionDenied):
        grievance_acknowledge(acting_user=other_samfya_officer, grievance=grievance)
    grievance_acknowledge(acting_user=designated_officer, grievance=grievance)
    with pytest.raises(ValidationError) as problem:
        grievance_assign(acting_user=designated_officer, grievance=grievance, to_user=other_samfya_officer)
    assert "designated officer" in problem.value.message_dict["assigned_to"][0]


def test_fraud_is_always_sensitive(samfya_officer, household):
    grievance = _register(samfya_officer, household, category=GrievanceCategory.FRAUD, description="Ghost names.")
    assert grievance.sensitive


def test_officer_of_another_district_sees_nothing(samfya_officer, lunga_officer, household):
    grievance = _register(samfya_officer, household)
    assert not grievances_for(lunga_officer).filter(pk=grievance.pk).exists()
    with pytest.raises(grievance.DoesNotExist):
        grievance_for_number(user=lunga_officer, number=grievance.number)


def test_an_upheld_appeal_changes_the_eligibility_outcome(samfya_officer, household, ministry_user, samfya, agency):
    programme = make_programme(code="OAP", agency=agency, districts=[samfya])
    programme_set_rules(
        acting_user=ministry_user, programme=programme, eligibility_rule="household.members.exists(m, m.age >= 65)"
    )
    eligibility_recompute_household(household_id=household.pk)
    assert (
        EligibilityResult.objects.get(household=household, programme=programme).outcome
        == EligibilityOutcome.NOT_ELIGIBLE
    )
    grievance = grievance_register(
        acting_user=samfya_officer,
        household=household,
        programme=programme,
        complainant=household.head,
        category=GrievanceCategory.ELIGIBILITY,
        description="I am 70; my date of birth was written wrong.",
    )
    assert grievance.appealed_outcome == EligibilityOutcome.NOT_ELIGIBLE
    programme.refresh_from_db()
    assert grievance.appealed_rule_version == programme.current_version
    grievance_acknowledge(acting_user=samfya_officer, grievance=grievance)
    grievance = appeal_uphold(
        acting_user=samfya_officer,
        grievance=grievance,
        resolution="Date of birth corrected from her NRC.",
        member_corrections=[MemberCorrection(household.head, {"date_of_birth": datetime.date(1955, 1, 1)})],
    )
    assert grievance.status == S.RESOLVED and grievance.appeal_outcome == AppealOutcome.UPHELD
    assert grievance.outcome_after == EligibilityOutcome.ELIGIBLE
    assert (
        EligibilityResult.objects.get(household=household, programme=programme).outcome == EligibilityOutcome.ELIGIBLE
    )
    assert household.history.filter(note__contains=grievance.number).exists()
    assert grievance.events.last().changes["eligibility"] == ["not_eligible", "eligible"]


def test_a_paid_payment_reported_not_received_is_raised_with_the_provider(samfya_officer, household, agency, samfya):
    from payments.models import Enrolment, PaymentCycle

    programme = make_programme(code="SCT", agency=agency, districts=[samfya])
    enrolment = Enrolment.objects.create(
        household=household,
        programme=programme,
        district=samfya,
        status="active",
        currency="ZMW",
        amount=Decimal("150.00"),
    )
    cycle = PaymentCycle.objects.create(
        programme=programme,
        period_start=datetime.date(2026, 11, 1),
        period_end=datetime.date(2026, 11, 30),
        currency="ZMW",
        status="closed",
    )
    payment = Payment.objects.create(
        cycle=cycle,
        enrolment=enrolment,
        household=household,
        district=samfya,
        programme=programme,
        reference="SCT-202611-1",
        amount=Decimal("150.00"),
        currency="ZMW",
        channel="cash",
        status=PaymentStatus.PAID,
        paid_at=datetime.datetime(2026, 11, 20, tzinfo=datetime.UTC),
    )
    grievance = _register(
        samfya_officer,
        household,
        category=GrievanceCategory.PAYMENT,
        payment=payment,
        payment_not_received=True,
        description="I never got November's money.",
    )
    payment.refresh_from_db()
    assert payment.disputed_at is not None and grievance.number in payment.dispute_note
    assert payment.events.get().reason.startswith("Disputed")


def test_overdue_grievances_are_flagged_once(samfya_officer, household):
    grievance = _register(samfya_officer, household)
    later = grievance.due_date + datetime.timedelta(days=1)
    assert grievances_mark_overdue(today=later) == 1
    assert grievances_mark_overdue(today=later) == 0
    grievance.refresh_from_db()
    assert grievance.overdue_since == later


def test_the_same_registration_twice_is_done_once(samfya_officer, household):
    first = _register(samfya_officer, household, idempotency_key="abc")
    second = _register(samfya_officer, household, idempotency_key="abc")
    assert first.pk == second.pk
