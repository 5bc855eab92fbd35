"""Builders for the dashboard's tests: households registered by the front desk
with the people a figure is split by, a programme households qualify for by
size, enrolments walked through maker-checker, referrals and grievances moved
through their services, and the summaries counted."""

import datetime
import itertools

from payments.tests.makers import enrol_active, make_cash_programme
from programmes.services import eligibility_recompute_household, programme_set_rules
from registry.models import Relationship
from registry.services import MemberInput, household_register

from ..summaries import summaries_refresh_district

# A fixed day for tests about ages and dates at a boundary; the others count at today's date, as the job does.
TODAY = datetime.date(2026, 11, 23)

_names = itertools.count(1)


def person(sex: str = "F", born: datetime.date = datetime.date(1980, 5, 17), *, head: bool = False, **extra) -> dict:
    """One member as the window records them; `extra` for disability degrees and the like."""
    number = next(_names)
    return {
        "first_name": f"Person{number}",
        "last_name": f"Family{number}",
        "sex": sex,
        "date_of_birth": born,
        "relationship": Relationship.HEAD if head else Relationship.CHILD,
        **extra,
    }


def register(officer, village, *people: dict, registered: datetime.date | None = None):
    """A household of `people` (the first heads it), registered by `officer` at `village`."""
    members = [MemberInput(values={**people[0], "relationship": Relationship.HEAD})]
    members += [MemberInput(values=values) for values in people[1:]]
    return household_register(
        acting_user=officer,
        village=village,
        members=members,
        duplicates_confirmed=True,
        registration_date=registered,
    )


def programme_for_pairs(*, agency, districts, ministry_user, code: str = "SCT", capacity=None, budget=None):
    """A cash transfer for households of two or more people: a household of one is not eligible."""
    programme = make_cash_programme(
        code=code, agency=agency, districts=districts, ministry_user=ministry_user, capacity=capacity, budget=budget
    )
    programme_set_rules(
        acting_user=ministry_user,
        programme=programme,
        eligibility_rule="household.size >= 2",
        benefit_formula="150",
    )
    programme.refresh_from_db()
    return programme


def assess(*households) -> None:
    for household in households:
        eligibility_recompute_household(household_id=household.pk)


def count(*districts, today: datetime.date | None = None) -> None:
    for district in districts:
        summaries_refresh_district(district_id=district.pk, today=today)


__all__ = ["TODAY", "assess", "count", "enrol_active", "person", "programme_for_pairs", "register"]
