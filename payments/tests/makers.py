"""Builders for enrolment and payment tests: an agency with its officers, a cash
transfer with a formula, households registered by the front desk, and an
enrolment walked to active by two different people (maker-checker)."""

import datetime

from programmes.models import EnrolmentMode, ProgrammeDistrict
from programmes.services import programme_set_rules
from referrals.tests.makers import make_agency, make_household, make_programme
from registry.tests.factories import UserFactory
from spf.models import Role

from ..models import Enrolment, EnrolmentSource, EnrolmentStatus, PaymentChannel
from ..services import enrolment_apply, enrolment_transition

# 150 a month, doubled for a household of five or more.
FORMULA = "150 * (household.members.size() >= 5 ? 2 : 1)"


def make_officer(agency, districts, name: str = "officer"):
    return UserFactory(
        username=f"{name}_{agency.code.lower()}", role=Role.PROGRAMME_OFFICER, agency=agency, districts=list(districts)
    )


def make_cash_programme(
    *,
    code: str = "SCT",
    agency,
    districts,
    ministry_user,
    capacity=None,
    budget=None,
    direct: bool = True,
    formula: str = FORMULA,
):
    programme = make_programme(code=code, agency=agency, districts=districts)
    if direct:
        programme.enrolment_mode = EnrolmentMode.DIRECT
        programme.save()
    ProgrammeDistrict.objects.filter(programme=programme).update(capacity=capacity, budget=budget)
    programme_set_rules(
        acting_user=ministry_user, programme=programme, eligibility_rule="true", benefit_formula=formula
    )
    programme.refresh_from_db()
    return programme


def enrol_active(
    *,
    household,
    programme,
    maker,
    checker,
    channel: str = PaymentChannel.MOBILE_MONEY,
    account_number: str = "0977000001",
) -> Enrolment:
    """Applied and verified by `maker`, approved and activated by `checker`."""
    enrolment = enrolment_apply(
        acting_user=maker,
        household=household,
        programme=programme,
        source=EnrolmentSource.AGENCY,
        channel=channel,
        account_number=account_number,
        pay_point="Samfya boma" if channel == PaymentChannel.CASH else "",
    )
    enrolment = enrolment_transition(enrolment=enrolment, to_status=EnrolmentStatus.VERIFIED, acting_user=maker)
    enrolment = enrolment_transition(enrolment=enrolment, to_status=EnrolmentStatus.APPROVED, acting_user=checker)
    return enrolment_transition(enrolment=enrolment, to_status=EnrolmentStatus.ACTIVE, acting_user=checker)


def first_of_month(year: int = 2026, month: int = 11) -> datetime.date:
    return datetime.date(year, month, 1)


__all__ = [
    "FORMULA",
    "enrol_active",
    "first_of_month",
    "make_agency",
    "make_cash_programme",
    "make_household",
    "make_officer",
]
