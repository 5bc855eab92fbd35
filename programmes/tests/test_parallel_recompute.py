"""Bulk steps of one run go in parallel (threads, one connection each) on PostgreSQL: the same
results and change events as one after the other, and nothing recorded twice."""

import datetime

import pytest

from programmes.models import EligibilityChange, EligibilityOutcome, EligibilityResult, RecomputeStatus
from programmes.services import programme_set_rules, recompute_run_create, recompute_run_execute
from referrals.tests.makers import make_agency, make_household, make_programme
from registry.services import member_add

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_parallel_steps_assess_every_household_once(
    settings, samfya_officer, samfya_village, lunga_officer, lunga_village, samfya, lunga, ministry_user
):
    settings.RECOMPUTE_PARALLEL_STEPS = 2
    programme = make_programme(code="SCT", agency=make_agency(), districts=[samfya, lunga])
    households = [
        make_household(officer=samfya_officer, village=samfya_village, last_name=f"Banda{i}") for i in range(3)
    ]
    households += [make_household(officer=lunga_officer, village=lunga_village, last_name=f"Zulu{i}") for i in range(3)]
    member_add(
        acting_user=samfya_officer,
        household=households[0],
        values={
            "first_name": "Ana",
            "last_name": "Banda",
            "sex": "F",
            "relationship": "child",
            "date_of_birth": datetime.date(2016, 3, 1),
        },
    )
    programme_set_rules(acting_user=ministry_user, programme=programme, eligibility_rule="household.size >= 2")
    EligibilityResult.objects.all().delete()
    EligibilityChange.objects.all().delete()

    run = recompute_run_execute(run_id=recompute_run_create(programme=programme).pk)

    assert run.status == RecomputeStatus.DONE
    assert run.households_assessed == 6 and run.done_steps == run.total_steps == 2
    outcomes = dict(EligibilityResult.objects.values_list("household_id", "outcome"))
    assert outcomes == {
        h.pk: EligibilityOutcome.ELIGIBLE if h == households[0] else EligibilityOutcome.NOT_ELIGIBLE for h in households
    }
    assert EligibilityChange.objects.count() == 6

    again = recompute_run_execute(run_id=recompute_run_create(programme=programme).pk)
    assert again.outcomes_changed == 0
    assert EligibilityChange.objects.count() == 6
