"""Builders for the referral API, follow-up and admin tests: an agency, a
programme that runs in a district, a household registered by the front desk."""

import datetime

from programmes.models import (
    Agency,
    AgencyKind,
    AutoReferral,
    Programme,
    ProgrammeDistrict,
    ProgrammeKind,
    ProgrammeStatus,
)
from registry.models import Household, Location, Relationship
from registry.services import MemberInput, household_register


def make_agency(code: str = "MCDSS", **fields) -> Agency:
    defaults = {"name": f"Agency {code}", "kind": AgencyKind.MINISTRY}
    return Agency.objects.create(code=code, **{**defaults, **fields})


def make_programme(*, code: str, agency: Agency, districts: list[Location], sla_days: int = 10) -> Programme:
    programme = Programme.objects.create(
        code=code,
        name=f"Programme {code}",
        agency=agency,
        description="",
        kind=ProgrammeKind.CASH_TRANSFER,
        status=ProgrammeStatus.ACTIVE,
        currency="ZMW",
        referral_sla_days=sla_days,
        auto_referral=AutoReferral.OFF,
    )
    for district in districts:
        ProgrammeDistrict.objects.create(programme=programme, district=district)
    return programme


def make_household(*, officer, village: Location, last_name: str = "Mwansa") -> Household:
    return household_register(
        acting_user=officer,
        village=village,
        duplicates_confirmed=True,
        members=[
            MemberInput(
                values={
                    "first_name": "Mary",
                    "last_name": last_name,
                    "sex": "F",
                    "relationship": Relationship.HEAD,
                    "date_of_birth": datetime.date(1970, 1, 1),
                }
            )
        ],
    )
