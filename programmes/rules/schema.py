"""The fields a rule can see: one table used by the checker, the explainer, the
SQL compiler and the documentation, so that the four never disagree on a name,
a type or the words shown to a person."""

from __future__ import annotations

from dataclasses import dataclass, field

from registry.models import DISABILITY_DOMAINS, AttributeEntity, AttributeType

# Types of the language. Dates are their own type so that comparing a date to a
# number is refused before a rule is saved.
INT, DOUBLE, STRING, BOOL, DATE = "int", "double", "string", "bool", "date"
NUMERIC = (INT, DOUBLE)

ATTRIBUTE_TYPES = {
    AttributeType.TEXT: STRING,
    AttributeType.INTEGER: INT,
    AttributeType.DECIMAL: DOUBLE,
    AttributeType.BOOLEAN: BOOL,
    AttributeType.DATE: DATE,
    AttributeType.CHOICE: STRING,
}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    label: str  # the words used when the value is missing: "member 2 (Bupe Mwansa): date of birth"
    description: str = ""
    attribute: bool = False  # an extensible attribute, read from the JSON column `attributes`
    always_known: bool = False  # never missing (a count, a code that every row has)


HOUSEHOLD_CORE = (
    FieldSpec("size", INT, "number of members", "members living in the household (present)", always_known=True),
    FieldSpec("status", STRING, "status", "active, moved or dissolved", always_known=True),
    FieldSpec(
        "registration_date", DATE, "registration date", "the day the household was registered", always_known=True
    ),
    FieldSpec("district", STRING, "district", 'district code, e.g. "SAM"', always_known=True),
    FieldSpec("ward", STRING, "ward", "ward code", always_known=True),
    FieldSpec("village", STRING, "village", "village code", always_known=True),
    FieldSpec("female_headed", BOOL, "head of household", "true when the head is a woman"),
    FieldSpec("head_age", INT, "head's date of birth", "age of the head in whole years at the reference date"),
    FieldSpec(
        "fit_to_work",
        INT,
        "members able to work",
        "members aged 18 to 64 with no disability and no chronic illness",
    ),
    FieldSpec(
        "dependency_ratio",
        DOUBLE,
        "dependency ratio",
        "members who cannot work per member who can (divided by 1 when nobody can work)",
    ),
)

MEMBER_CORE = (
    FieldSpec("age", INT, "date of birth", "whole years at the reference date"),
    FieldSpec("sex", STRING, "sex", '"F" or "M"', always_known=True),
    FieldSpec("relationship", STRING, "relationship to the head", 'e.g. "head", "spouse", "child"', always_known=True),
    FieldSpec("is_head", BOOL, "head of household", "true for the head", always_known=True),
    FieldSpec("status", STRING, "status", '"present", "moved_out" or "deceased"', always_known=True),
    FieldSpec(
        "has_disability",
        BOOL,
        "disability questions",
        "a lot of difficulty or cannot do at all in at least one Washington Group domain",
    ),
    FieldSpec("severe_disability", BOOL, "disability questions", "cannot do at all in at least one domain"),
    *(
        FieldSpec(
            f"disability_{domain}",
            INT,
            f"difficulty {domain.replace('_', ' ')}",
            "1 no difficulty, 2 some, 3 a lot, 4 cannot do at all",
        )
        for domain in DISABILITY_DOMAINS
    ),
    FieldSpec("chronic_illness", BOOL, "chronic illness", "true when the member has a chronic illness"),
    FieldSpec("school_attendance", STRING, "school attendance", '"attending", "not_attending", "completed" or "never"'),
    FieldSpec("work_status", STRING, "work status", '"employed", "self_employed", "unemployed", ...'),
    FieldSpec("date_of_birth", DATE, "date of birth", "the date of birth"),
)


@dataclass
class Schema:
    """The household and member fields visible to rules, with the active attributes."""

    household: dict[str, FieldSpec] = field(default_factory=dict)
    member: dict[str, FieldSpec] = field(default_factory=dict)

    def fields_of(self, entity: str) -> dict[str, FieldSpec]:
        return self.household if entity == "household" else self.member


def build_schema(attribute_definitions=()) -> Schema:
    """The schema from the core fields and the given attribute definitions.

    A core field wins over an attribute with the same key: a rule that says
    `household.size` must mean the same thing in every country."""
    schema = Schema(
        household={spec.name: spec for spec in HOUSEHOLD_CORE},
        member={spec.name: spec for spec in MEMBER_CORE},
    )
    for definition in attribute_definitions:
        target = schema.fields_of(definition.entity)
        if definition.key in target or definition.key == "members":
            continue
        target[definition.key] = FieldSpec(
            definition.key,
            ATTRIBUTE_TYPES.get(definition.type, STRING),
            definition.label.lower() if definition.label else definition.key,
            definition.help_text,
            attribute=True,
        )
    return schema


def current_schema() -> Schema:
    """The schema with the active attribute definitions read from the database."""
    from registry.models import AttributeDefinition

    definitions = AttributeDefinition.objects.filter(
        active=True, entity__in=[AttributeEntity.HOUSEHOLD, AttributeEntity.MEMBER]
    )
    return build_schema(list(definitions))
