"""The bulk path's grouped SQL agrees with cel-python too.

A bulk run evaluates every programme's rule and formula in one query grouped by
household, its member quantifiers being sums over one join on the members
instead of subqueries (`household_expression(..., grouped=True)`). The same
random households and rules as the subquery property test, through that form,
several expressions in one query as a bulk step puts them."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from programmes.rules import compile_expression
from programmes.rules.sql import household_expression
from programmes.tests.rules_helpers import REFERENCE_DATE
from programmes.tests.test_rules_property import (
    _same_amount,
    create_household,
    formulas,
    households,
    member_rules,
    rules,
    village_with_attributes,  # noqa: F401  (a fixture)
)
from registry.models import Household

pytestmark = pytest.mark.django_db


def grouped(compiled):
    return household_expression(
        compiled.tree, kind=compiled.kind, target=compiled.target, reference_date=REFERENCE_DATE, grouped=True
    )


@settings(
    deadline=None,
    max_examples=80,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(specs=st.lists(households, min_size=1, max_size=3), rule=rules, other_rule=rules, formula=formulas)
def test_grouped_sql_and_cel_python_agree_on_every_household(
    village_with_attributes,  # noqa: F811
    specs,
    rule,
    other_rule,
    formula,
):
    created = [create_household(village_with_attributes, spec) for spec in specs]
    compiled = [compile_expression(text, kind="rule") for text in (rule, other_rule)]
    compiled_formula = compile_expression(formula, kind="formula")

    through_sql = {
        row["pk"]: row
        for row in Household.objects.filter(pk__in=[h.pk for h in created])
        .order_by()
        .annotate(
            first=grouped(compiled[0]),
            second=grouped(compiled[1]),
            amount=grouped(compiled_formula),
        )
        .values("pk", "first", "second", "amount")
    }

    assert len(through_sql) == len(created)
    for household in Household.objects.filter(pk__in=[h.pk for h in created]).prefetch_related("members"):
        row = through_sql[household.pk]
        for name, each, text in (("first", compiled[0], rule), ("second", compiled[1], other_rule)):
            assert row[name] == each.explain(household, reference_date=REFERENCE_DATE).value, f"rule {text!r}"
        amount = compiled_formula.explain(household, reference_date=REFERENCE_DATE).value
        assert _same_amount(row["amount"], amount), f"formula {formula!r}: SQL {row['amount']}, cel {amount}"


@settings(
    deadline=None,
    max_examples=30,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=households, rule=member_rules)
def test_grouped_individual_rules_agree_for_the_household(village_with_attributes, spec, rule):  # noqa: F811
    household = create_household(village_with_attributes, spec)
    compiled = compile_expression(rule, kind="rule", target="member")
    value = Household.objects.filter(pk=household.pk).annotate(value=grouped(compiled)).values_list("value", flat=True)
    explained = compiled.explain(Household.objects.get(pk=household.pk), reference_date=REFERENCE_DATE)
    assert value.get() == explained.value, rule
