"""What a rule author may write, and the words they read when it is refused."""

import pytest

from programmes.rules import RuleError, build_schema, compile_expression
from registry.models import AttributeDefinition, AttributeEntity, AttributeType


@pytest.fixture
def schema():
    definitions = [
        AttributeDefinition(
            entity=AttributeEntity.HOUSEHOLD, key="pmt_score", label="Proxy means score", type=AttributeType.DECIMAL
        ),
        AttributeDefinition(entity=AttributeEntity.HOUSEHOLD, key="roof", label="Roof", type=AttributeType.CHOICE),
        AttributeDefinition(
            entity=AttributeEntity.HOUSEHOLD, key="size", label="Clashes with a core field", type=AttributeType.TEXT
        ),
        AttributeDefinition(entity=AttributeEntity.MEMBER, key="orphan", label="Orphan", type=AttributeType.BOOLEAN),
    ]
    return build_schema(definitions)


def refused(text, schema, **kwargs):
    with pytest.raises(RuleError) as caught:
        compile_expression(text, schema=schema, **kwargs)
    return caught.value


ACCEPTED_RULES = [
    "household.size >= 3",
    "household.size >= 3 && household.female_headed || !household.female_headed",
    'household.status == "active" && household.district != "LUN"',
    'household.registration_date < date("2026-01-01")',
    'household.ward == "SAM-W1" || household.village == "SAM-W1-V1"',
    "household.head_age >= 60",
    "household.pmt_score <= 32",
    'household.pmt_score <= 32.5 && household.roof == "thatch"',
    "household.members.exists(m, m.age >= 65)",
    "household.members.all(m, m.age < 18 || m.has_disability)",
    "household.members.filter(m, m.age < 5).size() >= 2",
    "household.members.size() > 4",
    'household.members.exists(m, m.sex == "F" && m.is_head && m.relationship == "head")',
    "household.members.exists(m, m.severe_disability || m.disability_walking >= 3 || m.chronic_illness)",
    'household.members.exists(m, m.school_attendance == "not_attending" && m.work_status != "employed")',
    'household.members.exists(m, m.status == "present" && m.date_of_birth > date("2010-01-01"))',
    'household.members.exists(m, age_at(m, date("2026-12-31")) >= 6 && m.orphan)',
    'household.count_members("F", 18, 59) >= 1',
    'household.count_members("any", 0, 4) > 0',
    "household.dependency_ratio >= 3 || household.fit_to_work == 0",
    'household.district in ["SAM", "LUN"]',
    "household.size in [1, 2, 3]",
    "(household.size > 5 ? household.pmt_score < 40 : household.pmt_score < 32)",
    "household.size % 2 == 0 && -household.size < 0",
    "true",
    "household.size >= 3 // a comment explains the threshold",
]


@pytest.mark.parametrize("text", ACCEPTED_RULES)
def test_supported_rule_is_accepted(text, schema):
    assert compile_expression(text, kind="rule", schema=schema).source == text


@pytest.mark.parametrize(
    "text",
    [
        "200",
        "200 * (household.members.exists(m, m.severe_disability) ? 2 : 1)",
        "household.size * 50 + 100.5",
        "household.pmt_score / 2",
        "double(household.size) / 3.0",
        "household.dependency_ratio * 10",
    ],
)
def test_supported_formula_is_accepted(text, schema):
    compile_expression(text, kind="formula", schema=schema)


def test_fields_used_names_what_the_rule_reads(schema):
    compiled = compile_expression(
        "household.size >= 3 && household.members.exists(m, m.age >= 65) && household.pmt_score < 30", schema=schema
    )
    assert compiled.fields_used == {"household.size", "member.age", "household.pmt_score"}


def test_misspelt_field_is_reported_with_position_and_suggestion(schema):
    error = refused("household.size >= 3 && household.pmt_scor <= 32", schema)
    assert error.messages == ["line 1, column 34: household has no field 'pmt_scor'; did you mean 'pmt_score'?"]
    assert error.problems[0].line == 1 and error.problems[0].column == 34


def test_every_problem_is_reported_with_its_line(schema):
    error = refused("household.members.exists(m, m.agee > 1)\n  && houshold.size > 1", schema)
    assert error.messages == [
        "line 1, column 31: member has no field 'agee'; did you mean 'age'?",
        "line 2, column 6: unknown name 'houshold'; did you mean 'household'?",
    ]


def test_a_core_field_wins_over_an_attribute_with_the_same_key(schema):
    assert schema.household["size"].attribute is False


@pytest.mark.parametrize(
    "text, message",
    [
        ("household.size >=", "line 1, column 18: the expression ends too early (a value is missing)"),
        ("(household.size >= 3", "line 1, column 21: the expression ends too early (a closing bracket ')' is missing)"),
        ("household.size >= 3 &&& true", "line 1, column 23: syntax error near '& true'"),
        ("household.size = 3", "line 1, column 16: syntax error near '= 3'"),
        ("", "line 1, column 1: the expression is empty"),
    ],
)
def test_syntax_errors_give_the_position(text, message, schema):
    assert refused(text, schema).messages[0].startswith(message)


@pytest.mark.parametrize(
    "text, message",
    [
        ("household.registration_date > 3", "the two sides of '>' do not match: a date and a whole number"),
        ('household.size == "3"', "the two sides of '==' do not match: a whole number and a text"),
        ('household.district < "M"', "'<' compares numbers or dates; a text can only be compared with == or !="),
        ("household.size && true", "both sides of '&&' must be true or false; this is a whole number"),
        ("!household.size", "'!' (not) needs true or false, not a whole number"),
        ('household.district + "x" == "y"', "'+' needs numbers on both sides; this is a text"),
        ("household.pmt_score % 2 == 0", "'%' (remainder) needs whole numbers on both sides"),
        ('household.size in ["a"]', "'in' compares a whole number with a list of a text"),
        ("household.size > 2 ? 1 : true", "the two choices of '? :' do not match"),
        ("household.size", "a rule must be true or false; this gives a whole number"),
    ],
)
def test_type_mismatch_is_refused(text, message, schema):
    assert message in refused(text, schema).messages[0]


def test_formula_must_be_a_number(schema):
    assert "a formula must give a number" in refused("household.size > 2", schema, kind="formula").messages[0]


@pytest.mark.parametrize(
    "text, message",
    [
        ("household.members.map(m, m.age).size() > 1", "map is not supported"),
        ("household.members.exists_one(m, m.age > 60)", "exists_one is not supported"),
        ("household.members.filter(m, m.age > 60) == 1", "count it with filter(m, ...).size()"),
        ("[1, 2].exists(x, x > 1)", "a list [ ... ] can only follow 'in'"),
        ('{"a": 1}.a == 1', "maps and objects { } are not supported"),
        ("household.members[0].age > 3", "indexing with [ ] is not supported"),
        ("household.size == null", "null is not supported"),
        ('matches(household.district, "S.*")', "the function matches() is not supported"),
        ('household.district.startsWith("S")', "unknown function 'startsWith'"),
        ('timestamp("2026-01-01T00:00:00Z") > timestamp("2025-01-01T00:00:00Z")', "timestamp() is not supported"),
        ("launch_missiles() == 1", "unknown function 'launch_missiles'"),
        ("size(household.members) > 1", "the function size() is not supported"),
        ("household.size in [household.size]", "only values written out"),
        ("household.size > 1u", "unsigned numbers"),
        ('date("2026-13-01") > household.registration_date', "'2026-13-01' is not a date written YYYY-MM-DD"),
        ("household.members.exists(household, household.age > 1)", "the name 'household' is already taken"),
        ('household.count_members("X", 1, 2) > 0', "count_members takes a sex"),
        ('age_at(household, date("2026-01-01")) > 1', "the first thing in age_at() must be a member"),
    ],
)
def test_unsupported_construct_is_refused_with_a_reason(text, message, schema):
    error = refused(text, schema)
    assert message in error.messages[0]
    assert error.problems[0].line >= 1 and error.problems[0].column >= 1


def test_a_macro_inside_a_macro_is_refused_at_the_inner_macro(schema):
    error = refused("household.members.exists(m, household.members.exists(k, k.age > m.age))", schema)
    assert error.messages == [
        "line 1, column 29: exists() inside another exists/all/filter is not allowed (it costs too much)"
    ]


def test_too_long_and_too_deep_are_refused(schema):
    too_long = " || ".join(["household.size > 1"] * 120)
    assert "too long" in refused(too_long, schema).messages[0]
    too_deep = "(" * 13 + "true" + ")" * 13
    assert refused(too_deep, schema).messages == ["line 1, column 13: too many brackets inside each other (at most 12)"]
    deep_without_brackets = "!" * 45 + "true"
    assert "nested too deeply" in refused(deep_without_brackets, schema).messages[0]


def test_member_is_visible_only_to_individual_rules(schema):
    assert "unknown name 'member'" in refused("member.age >= 65", schema).messages[0]
    compiled = compile_expression(
        "member.age >= 65 && household.size == 1 && household.members.exists(m, m.age < 18)",
        target="member",
        schema=schema,
    )
    assert "member.age" in compiled.fields_used
