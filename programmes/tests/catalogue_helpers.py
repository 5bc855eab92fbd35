"""Programmes and households for the catalogue's admin, page and API tests."""

import datetime

from django.utils import timezone

from programmes.models import Agency, AgencyKind, Programme, ProgrammeDistrict, ProgrammeKind, ProgrammeStatus
from programmes.services import programme_set_rules
from registry.models import Household, Relationship
from registry.tests.factories import HouseholdFactory, MemberFactory

# A rule with an && so that the reasons have clauses, and a member quantifier
# whose age is unknown when a date of birth is missing.
ELDERLY_LARGE = "household.size >= 3 && household.members.exists(m, m.age >= 60)"
BENEFIT = "200 * (household.members.exists(m, m.severe_disability) ? 2 : 1)"
SCHOOL_AGE = "household.members.exists(m, m.age >= 6 && m.age <= 14)"


def years_ago(years: int) -> datetime.date:
    today = timezone.localdate()
    return today.replace(year=today.year - years, day=1)


def make_agency(code: str = "MCDSS", name: str = "Ministry of Community Development and Social Services") -> Agency:
    agency, _ = Agency.objects.get_or_create(
        code=code, defaults={"name": name, "kind": AgencyKind.MINISTRY, "focal_point_name": "Ms Phiri"}
    )
    return agency


def make_programme(
    *,
    code: str,
    districts,
    acting_user,
    name: str | None = None,
    rule: str | None = ELDERLY_LARGE,
    formula: str = BENEFIT,
    status: str = ProgrammeStatus.ACTIVE,
    kind: str = ProgrammeKind.CASH_TRANSFER,
    documents=("National registration card of the head",),
    agency: Agency | None = None,
    **values,
) -> Programme:
    programme = Programme.objects.create(
        code=code,
        name=name or f"Programme {code}",
        agency=agency or make_agency(),
        description=values.pop("description", "Cash every month for households caring for an older person."),
        kind=kind,
        status=status,
        currency="ZMW",
        documents=list(documents),
        **values,
    )
    for district in districts:
        ProgrammeDistrict.objects.create(programme=programme, district=district, capacity=500)
    if rule is not None:
        programme_set_rules(
            acting_user=acting_user, programme=programme, eligibility_rule=rule, benefit_formula=formula
        )
    programme.refresh_from_db()
    return programme


def make_household(village, *members: dict) -> Household:
    """Plain rows: the first member heads the household."""
    household = HouseholdFactory(village=village, district=village.district)
    rows = [MemberFactory(household=household, **values) for values in members]
    if rows:
        rows[0].relationship = Relationship.HEAD
        rows[0].save(update_fields=["relationship"])
        household.head = rows[0]
        household.save(update_fields=["head"])
    return household


def grandmother_and_two(village) -> Household:
    """Eligible for ELDERLY_LARGE: three members, one of them 70 and unable to walk (BENEFIT: 400)."""
    return make_household(
        village,
        {"first_name": "Grace", "date_of_birth": years_ago(70), "disability_walking": 4},
        {"first_name": "Bupe", "date_of_birth": years_ago(10)},
        {"first_name": "Chanda", "date_of_birth": years_ago(8)},
    )


def young_couple(village) -> Household:
    """Not eligible for ELDERLY_LARGE: two members."""
    return make_household(
        village,
        {"first_name": "Mary", "date_of_birth": years_ago(30)},
        {"first_name": "John", "sex": "M", "date_of_birth": years_ago(32)},
    )


def unknown_ages(village) -> Household:
    """Needs information for ELDERLY_LARGE: three members, nobody's date of birth is known to be 60+."""
    return make_household(
        village,
        {"first_name": "Agnes", "date_of_birth": None},
        {"first_name": "Peter", "sex": "M", "date_of_birth": years_ago(20)},
        {"first_name": "Ruth", "date_of_birth": years_ago(18)},
    )
