"""The two evaluators agree: random households (with missing values) and random
rules and formulas from the supported grammar give the same outcome through the
ORM as through cel-python, for every household."""

import datetime
import functools
from decimal import Decimal

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from programmes.rules import compile_expression
from programmes.tests.rules_helpers import REFERENCE_DATE, define_attributes
from registry.models import Household, Member
from registry.tests.factories import HouseholdFactory, MemberFactory

pytestmark = pytest.mark.django_db

MAX_DEPTH = 3
DATES = ["2020-03-01", "2025-06-15", "2026-01-01", "1960-02-29", "2012-12-31"]


# -- households -------------------------------------------------------------


def _maybe(strategy, missing_weight: int = 1):
    return st.one_of(*([st.none()] * missing_weight), strategy)


def _dates_of_birth():
    # Ages from newborn to 95, with birthdays on and around the reference date.
    return st.builds(
        lambda years, days: REFERENCE_DATE.replace(year=REFERENCE_DATE.year - years) + datetime.timedelta(days=days),
        st.integers(0, 95),
        st.sampled_from([-1, 0, 1, 37, -200]),
    )


degree = _maybe(st.integers(1, 4), missing_weight=2)

members = st.fixed_dictionaries(
    {
        "sex": st.sampled_from(["F", "M"]),
        "date_of_birth": _maybe(_dates_of_birth()),
        "relationship": st.sampled_from(["head", "spouse", "child", "grandchild", "other_relative"]),
        "disability_seeing": degree,
        "disability_hearing": degree,
        "disability_walking": degree,
        "disability_cognition": degree,
        "disability_self_care": degree,
        "disability_communication": degree,
        "chronic_illness": _maybe(st.booleans()),
        "school_attendance": st.sampled_from(["", "attending", "not_attending", "completed", "never"]),
        "work_status": st.sampled_from(["", "employed", "self_employed", "unemployed", "inactive"]),
        "status": st.sampled_from(["present"] * 6 + ["deceased", "moved_out"]),
        "attributes": st.fixed_dictionaries(
            {},
            optional={"orphan": st.booleans(), "grade": st.integers(0, 12)},
        ),
    }
)

households = st.fixed_dictionaries(
    {
        "members": st.lists(members, max_size=8),
        "head": _maybe(st.integers(0, 7)),
        "registration_date": st.sampled_from([datetime.date(2024, 5, 1), datetime.date(2025, 12, 31)]),
        "attributes": st.fixed_dictionaries(
            {},
            optional={
                "pmt_score": st.sampled_from(["12.5", "31.75", "32", "32.0", "47.125", "0"]),
                "roof": st.sampled_from(["thatch", "iron", "tile"]),
                "rooms": st.integers(0, 6),
                "flooded": st.booleans(),
                "disaster_date": st.sampled_from(["2025-01-31", "2025-12-01"]),
            },
        ),
    }
)


def create_household(village, spec) -> Household:
    household = HouseholdFactory(
        village=village,
        district=village.district,
        registration_date=spec["registration_date"],
        attributes=spec["attributes"],
    )
    rows = []
    for values in spec["members"]:
        gone = values["status"] != "present"
        rows.append(MemberFactory(household=household, status_date=REFERENCE_DATE if gone else None, **values))
    if spec["head"] is not None and spec["head"] < len(rows):
        household.head = rows[spec["head"]]
        household.save(update_fields=["head"])
    return household


# -- expressions, as text a ministry could write --------------------------


def _paren(template):
    return lambda *parts: "(" + template.format(*parts) + ")"


@functools.cache
def ints(depth: int, in_macro: bool):
    leaves = [
        st.integers(-3, 20).map(lambda n: f"({n})" if n < 0 else str(n)),
        st.sampled_from(["household.size", "household.rooms", "household.head_age", "household.fit_to_work"]),
        st.builds(
            lambda sex, low, span: f'household.count_members("{sex}", {low}, {low + span})',
            st.sampled_from(["F", "M", "any"]),
            st.integers(0, 70),
            st.integers(0, 30),
        ),
    ]
    if in_macro:
        leaves.append(st.sampled_from(["m.age", "m.disability_walking", "m.disability_seeing", "m.grade"]))
        leaves.append(st.sampled_from(DATES).map(lambda d: f'age_at(m, date("{d}"))'))
    if depth == 0:
        return st.one_of(*leaves)
    smaller = ints(depth - 1, in_macro)
    composite = [
        st.builds(_paren("{} {} {}"), smaller, st.sampled_from(["+", "-", "*", "/", "%"]), smaller),
        st.builds(_paren("-{}"), smaller),
        st.builds(_paren("{} ? {} : {}"), bools(depth - 1, in_macro), smaller, smaller),
    ]
    if not in_macro:
        composite.append(st.builds(lambda p: f"household.members.filter(m, {p}).size()", bools(depth - 1, True)))
    return st.one_of(*leaves, *composite)


@functools.cache
def doubles(depth: int, in_macro: bool):
    leaves = [
        st.sampled_from(["0.5", "2.25", "32.0", "0.1", "100.0"]),
        st.sampled_from(["household.pmt_score", "household.dependency_ratio"]),
    ]
    if depth == 0:
        return st.one_of(*leaves)
    smaller = doubles(depth - 1, in_macro)
    number = st.one_of(smaller, ints(depth - 1, in_macro))
    return st.one_of(
        *leaves,
        st.builds(_paren("{} {} {}"), smaller, st.sampled_from(["+", "-", "*", "/"]), number),
        st.builds(_paren("{} {} {}"), number, st.sampled_from(["+", "-", "*", "/"]), smaller),
        st.builds(lambda n: f"double({n})", ints(depth - 1, in_macro)),
        st.builds(_paren("{} ? {} : {}"), bools(depth - 1, in_macro), smaller, number),
    )


@functools.cache
def bools(depth: int, in_macro: bool):
    leaves = [
        st.sampled_from(["true", "false", "household.flooded", "household.female_headed"]),
        st.sampled_from(
            ['(household.roof == "thatch")', '(household.district == "SAM")', '(household.status != "active")']
        ),
        st.sampled_from(DATES).map(lambda d: f'(household.disaster_date >= date("{d}"))'),
        st.sampled_from(DATES).map(lambda d: f'(household.registration_date < date("{d}"))'),
    ]
    if in_macro:
        leaves += [
            st.sampled_from(["m.has_disability", "m.severe_disability", "m.chronic_illness", "m.is_head", "m.orphan"]),
            st.sampled_from(
                ['(m.sex == "F")', '(m.school_attendance == "attending")', '(m.work_status != "employed")']
            ),
            st.sampled_from(['(m.relationship in ["child", "grandchild"])', "(m.age in [0, 1, 2, 65])"]),
            st.sampled_from(DATES).map(lambda d: f'(m.date_of_birth <= date("{d}"))'),
        ]
    if depth == 0:
        return st.one_of(*leaves)
    number = st.one_of(ints(depth - 1, in_macro), doubles(depth - 1, in_macro))
    smaller = bools(depth - 1, in_macro)
    composite = [
        st.builds(_paren("{} {} {}"), number, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), number),
        st.builds(_paren("{} {} {}"), smaller, st.sampled_from(["&&", "||"]), smaller),
        st.builds(_paren("!{}"), smaller),
        st.builds(_paren("{} ? {} : {}"), smaller, smaller, smaller),
    ]
    if not in_macro:
        macro = st.sampled_from(["exists", "all"])
        composite.append(st.builds(lambda name, p: f"household.members.{name}(m, {p})", macro, bools(depth - 1, True)))
    return st.one_of(*leaves, *composite)


rules = st.integers(1, MAX_DEPTH).flatmap(lambda depth: bools(depth, False))
formulas = st.integers(1, MAX_DEPTH).flatmap(lambda depth: st.one_of(ints(depth, False), doubles(depth, False)))


# -- the property -----------------------------------------------------------


def _same_amount(sql_value, explained) -> bool:
    if sql_value is None or explained is None:
        return sql_value is None and explained is None
    if connection.vendor == "postgresql":
        return Decimal(sql_value) == explained
    # SQLite has no decimal type; Django rounds the double half-even on the way
    # out, which may differ by a cent on an exact half.
    return abs(Decimal(sql_value) - explained) <= Decimal("0.01")


@pytest.fixture
def village_with_attributes(samfya_village):
    define_attributes()
    return samfya_village


@settings(
    deadline=None,
    max_examples=80,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(specs=st.lists(households, min_size=1, max_size=3), rule=rules, formula=formulas)
def test_sql_and_cel_python_agree_on_every_household(village_with_attributes, specs, rule, formula):
    created = [create_household(village_with_attributes, spec) for spec in specs]
    compiled_rule = compile_expression(rule, kind="rule")
    compiled_formula = compile_expression(formula, kind="formula")

    through_sql = {
        pk: (decision, amount)
        for pk, decision, amount in Household.objects.filter(pk__in=[h.pk for h in created])
        .annotate(
            decision=compiled_rule.sql(reference_date=REFERENCE_DATE),
            amount=compiled_formula.sql(reference_date=REFERENCE_DATE),
        )
        .values_list("pk", "decision", "amount")
    }

    for household in Household.objects.filter(pk__in=[h.pk for h in created]).prefetch_related("members"):
        decision = compiled_rule.explain(household, reference_date=REFERENCE_DATE)
        amount = compiled_formula.explain(household, reference_date=REFERENCE_DATE)
        sql_decision, sql_amount = through_sql[household.pk]
        assert sql_decision == decision.value, f"rule {rule!r} on {household.number}"
        assert _same_amount(sql_amount, amount.value), f"formula {formula!r}: SQL {sql_amount}, cel {amount.value}"


member_rules = (
    st.integers(1, 2)
    .flatmap(lambda depth: bools(depth, True))
    .map(lambda text: text.replace("m.", "member.").replace("age_at(m,", "age_at(member,"))
)


@settings(
    deadline=None,
    max_examples=30,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=households, rule=member_rules)
def test_individual_rules_agree_member_by_member(village_with_attributes, spec, rule):
    household = create_household(village_with_attributes, spec)
    compiled = compile_expression(rule, kind="rule", target="member")

    through_sql = dict(
        Member.objects.filter(household=household, status="present")
        .annotate(value=compiled.member_sql(reference_date=REFERENCE_DATE))
        .filter(value=True)
        .values_list("pk", "value")
    )
    household_value = (
        Household.objects.filter(pk=household.pk)
        .annotate(value=compiled.sql(reference_date=REFERENCE_DATE))
        .values_list("value", flat=True)
        .get()
    )
    explained = compiled.explain(Household.objects.get(pk=household.pk), reference_date=REFERENCE_DATE)

    assert sorted(through_sql) == explained.member_ids, rule
    assert household_value == explained.value, rule
