"""Worked examples: one household explained by cel-python, the same household
through the ORM, and the two agreeing."""

from decimal import Decimal

import pytest

from programmes.rules import compile_expression
from programmes.tests.rules_helpers import (
    REFERENCE_DATE,
    born_years_ago,
    define_attributes,
    explain,
    make_household,
    member_values,
    sql_value,
)
from registry.models import Household

pytestmark = pytest.mark.django_db

ELDERLY_CARE = "household.size >= 2 && household.members.exists(m, m.age >= 65)"


@pytest.fixture
def grandmother_and_grandchild(samfya_village):
    return make_household(
        samfya_village,
        members=[
            {"first_name": "Mary", "last_name": "Mwansa", "date_of_birth": born_years_ago(70)},
            {"first_name": "Bupe", "last_name": "Mwansa", "date_of_birth": born_years_ago(8), "sex": "M"},
        ],
    )


def test_household_with_an_older_member_is_eligible(grandmother_and_grandchild):
    result = explain(grandmother_and_grandchild, ELDERLY_CARE)

    assert result.value is True
    assert result.outcome == "eligible"
    assert result.missing == []
    assert [(c["text"], c["status"]) for c in result.clauses] == [
        ("household.size >= 2", "true"),
        ("household.members.exists(m, m.age >= 65)", "true"),
    ]
    assert sql_value(grandmother_and_grandchild, ELDERLY_CARE) is True


def test_household_of_young_adults_is_not_eligible(samfya_village):
    household = make_household(
        samfya_village,
        members=[{"date_of_birth": born_years_ago(30)}, {"date_of_birth": born_years_ago(28)}],
    )

    result = explain(household, ELDERLY_CARE)

    assert result.outcome == "not_eligible"
    assert result.clauses[1]["status"] == "false"
    assert sql_value(household, ELDERLY_CARE) is False


def test_missing_date_of_birth_needs_information_naming_the_member(samfya_village):
    household = make_household(
        samfya_village,
        members=[
            {"first_name": "Grace", "last_name": "Banda", "date_of_birth": born_years_ago(40)},
            {"first_name": "Bupe", "last_name": "Mwansa", "date_of_birth": None},
        ],
    )

    result = explain(household, ELDERLY_CARE)

    assert result.value is None
    assert result.outcome == "needs_information"
    assert result.missing == ["member 2 (Bupe Mwansa): date of birth"]
    assert result.clauses[1]["status"] == "unknown"
    assert sql_value(household, ELDERLY_CARE) is None


def test_a_false_clause_settles_the_rule_despite_missing_data(samfya_village):
    # false && unknown is false: nobody needs to collect a date of birth to
    # learn that a one-person household is not eligible.
    household = make_household(samfya_village, members=[{"date_of_birth": None}])

    result = explain(household, ELDERLY_CARE)

    assert result.outcome == "not_eligible"
    assert result.missing == []
    assert sql_value(household, ELDERLY_CARE) is False


def test_age_counts_whole_years_at_the_reference_date(samfya_village):
    one_day_short = make_household(
        samfya_village, members=[{"date_of_birth": born_years_ago(65, days_after_reference=-1)}]
    )
    birthday_today = make_household(samfya_village, members=[{"date_of_birth": born_years_ago(65)}])
    rule = "household.members.exists(m, m.age >= 65)"

    assert explain(one_day_short, rule).value is False
    assert sql_value(one_day_short, rule) is False
    assert explain(birthday_today, rule).value is True
    assert sql_value(birthday_today, rule) is True


def test_missing_household_attribute_is_named(samfya_village):
    define_attributes()
    household = make_household(samfya_village, members=[{}], attributes={"roof": "thatch"})
    rule = 'household.pmt_score <= 32 && household.roof == "thatch"'

    result = explain(household, rule)

    assert result.outcome == "needs_information"
    assert result.missing == ["household: proxy means score"]
    assert sql_value(household, rule) is None


def test_whole_number_against_a_decimal_attribute(samfya_village):
    define_attributes()
    poor = make_household(samfya_village, members=[{}], attributes={"pmt_score": "31.5"})
    better_off = make_household(samfya_village, members=[{}], attributes={"pmt_score": "32.25"})
    rule = "household.pmt_score <= 32"

    assert explain(poor, rule).value is True
    assert sql_value(poor, rule) is True
    assert explain(better_off, rule).value is False
    assert sql_value(better_off, rule) is False


def test_boolean_integer_and_date_attributes(samfya_village):
    define_attributes()
    household = make_household(
        samfya_village,
        members=[{"attributes": {"orphan": True, "grade": 4}}],
        attributes={"flooded": True, "rooms": 2, "disaster_date": "2025-12-01"},
    )
    rule = (
        'household.flooded && household.rooms < 3 && household.disaster_date >= date("2025-06-01")'
        " && household.members.exists(m, m.orphan && m.grade == 4)"
    )

    assert explain(household, rule).value is True
    assert sql_value(household, rule) is True


def test_social_cash_transfer_benefit_doubles_with_a_severe_disability(samfya_village):
    formula = "200 * (household.members.exists(m, m.severe_disability) ? 2 : 1)"
    household = make_household(samfya_village, members=[{"disability_walking": 4}, {"disability_seeing": 1}])

    result = explain(household, formula, kind="formula")

    assert result.value == Decimal("400.00")
    assert result.outcome == "known"
    assert sql_value(household, formula, kind="formula") == Decimal("400.00")


def test_formula_with_unknown_condition_is_unknown_not_the_second_choice(samfya_village):
    formula = "200 * (household.members.exists(m, m.severe_disability) ? 2 : 1)"
    # No disability question answered.
    household = make_household(samfya_village, members=[{"first_name": "Mary", "last_name": "Mwansa"}])

    result = explain(household, formula, kind="formula")

    assert result.value is None
    assert result.outcome == "unknown"
    assert result.missing == ["member 1 (Mary Mwansa): disability questions"]
    assert sql_value(household, formula, kind="formula") is None


def test_dependency_ratio_and_members_fit_to_work(samfya_village):
    able = {"date_of_birth": born_years_ago(35), "chronic_illness": False, "disability_walking": 1}
    child = {"date_of_birth": born_years_ago(5)}
    elder = {"date_of_birth": born_years_ago(80)}
    household = make_household(samfya_village, members=[able, child, child, elder])

    assert explain(household, "household.fit_to_work", kind="formula").value == Decimal("1.00")
    assert explain(household, "household.dependency_ratio", kind="formula").value == Decimal("3.00")
    assert sql_value(household, "household.dependency_ratio", kind="formula") == Decimal("3.00")
    rule = "household.fit_to_work == 0 || household.dependency_ratio >= 3"
    assert explain(household, rule).value is True
    assert sql_value(household, rule) is True


def test_dependency_ratio_when_nobody_can_work_counts_the_dependants(samfya_village):
    household = make_household(
        samfya_village, members=[{"date_of_birth": born_years_ago(80)}, {"date_of_birth": born_years_ago(6)}]
    )

    assert explain(household, "household.dependency_ratio", kind="formula").value == Decimal("2.00")
    assert sql_value(household, "household.dependency_ratio", kind="formula") == Decimal("2.00")


def test_unrecorded_chronic_illness_leaves_work_capacity_unknown(samfya_village):
    household = make_household(
        samfya_village, members=[{"first_name": "Grace", "last_name": "Banda", "date_of_birth": born_years_ago(35)}]
    )

    result = explain(household, "household.fit_to_work == 0")

    assert result.outcome == "needs_information"
    assert result.missing == [
        "member 1 (Grace Banda): disability questions",
        "member 1 (Grace Banda): chronic illness",
    ]
    assert sql_value(household, "household.fit_to_work == 0") is None


def test_count_members_by_sex_and_age_band(samfya_village):
    household = make_household(
        samfya_village,
        members=[
            {"sex": "F", "date_of_birth": born_years_ago(30)},
            {"sex": "F", "date_of_birth": born_years_ago(61)},
            {"sex": "M", "date_of_birth": None},  # a man: his age does not matter to a count of women
        ],
    )
    formula = 'household.count_members("F", 18, 59)'

    assert explain(household, formula, kind="formula").value == Decimal("1.00")
    assert sql_value(household, formula, kind="formula") == Decimal("1.00")


def test_members_who_left_do_not_count(samfya_village):
    household = make_household(
        samfya_village,
        members=[
            {"date_of_birth": born_years_ago(30)},
            {"date_of_birth": born_years_ago(90), "status": "deceased", "status_date": REFERENCE_DATE},
        ],
    )

    assert explain(household, ELDERLY_CARE).value is False
    assert sql_value(household, ELDERLY_CARE) is False
    assert sql_value(household, "household.size", kind="formula") == Decimal("1.00")


def test_female_headed_and_head_age(samfya_village):
    household = make_household(samfya_village, members=[{"sex": "F", "date_of_birth": born_years_ago(67)}])
    headless = make_household(samfya_village, members=[{"sex": "F"}], head=None)
    rule = "household.female_headed && household.head_age >= 60"

    assert explain(household, rule).value is True
    assert sql_value(household, rule) is True
    result = explain(headless, rule)
    assert result.outcome == "needs_information"
    assert result.missing == ["household: head of household"]
    assert sql_value(headless, rule) is None


def test_location_codes_and_in_lists(samfya_village):
    household = make_household(samfya_village, members=[{}])
    rule = f'household.district in ["SAM", "LUN"] && household.village == "{samfya_village.code}"'

    assert explain(household, rule).value is True
    assert sql_value(household, rule) is True


def test_division_by_zero_is_unknown(samfya_village):
    household = make_household(samfya_village, members=[])

    assert explain(household, "10 / household.size", kind="formula").value is None
    assert sql_value(household, "10 / household.size", kind="formula") is None
    assert explain(household, "10.0 / household.size", kind="formula").value is None
    assert sql_value(household, "10.0 / household.size", kind="formula") is None


def test_age_at_another_reference_date(samfya_village):
    household = make_household(samfya_village, members=[{"date_of_birth": born_years_ago(5)}])
    rule = 'household.members.exists(m, age_at(m, date("2027-06-30")) >= 6)'

    assert explain(household, rule).value is True
    assert sql_value(household, rule) is True


def test_individual_targeting_lists_the_eligible_members(samfya_village):
    household = make_household(
        samfya_village,
        members=[
            {"first_name": "Grace", "date_of_birth": born_years_ago(40)},
            {"first_name": "Bupe", "date_of_birth": born_years_ago(9), "school_attendance": "not_attending"},
            {"first_name": "Chilufya", "date_of_birth": born_years_ago(12), "school_attendance": "attending"},
        ],
    )
    rule = 'member.age >= 7 && member.age <= 14 && member.school_attendance == "not_attending"'

    result = explain(household, rule, target="member")

    bupe = household.members.get(first_name="Bupe")
    assert result.outcome == "eligible"
    assert result.member_ids == [bupe.pk]
    assert member_values(household, rule) == {m.pk: m.pk == bupe.pk for m in household.members.all()}
    household_level = compile_expression(rule, target="member").sql(reference_date=REFERENCE_DATE)
    assert Household.objects.filter(pk=household.pk).annotate(value=household_level).get().value is True


def test_clauses_are_given_in_plain_words_with_their_depth(grandmother_and_grandchild):
    rule = "household.size >= 2 && (household.members.exists(m, m.age >= 65) || household.female_headed)"

    result = explain(grandmother_and_grandchild, rule)

    assert [(c["words"], c["status"], c["depth"]) for c in result.clauses] == [
        ("number of members is at least 2", "true", 0),
        ("(at least one member: age is at least 65) or headed by a woman", "true", 0),
        ("at least one member: age is at least 65", "true", 1),
        ("headed by a woman", "true", 1),
    ]


def test_individual_formula_sums_over_the_members(samfya_village):
    household = make_household(
        samfya_village, members=[{"date_of_birth": born_years_ago(70)}, {"date_of_birth": born_years_ago(30)}]
    )
    formula = "member.age >= 65 ? 300 : 0"

    result = explain(household, formula, kind="formula", target="member")

    assert result.value == Decimal("300.00")
    level = compile_expression(formula, kind="formula", target="member").sql(reference_date=REFERENCE_DATE)
    assert Household.objects.filter(pk=household.pk).annotate(value=level).get().value == Decimal("300.00")
