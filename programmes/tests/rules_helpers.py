"""Households for rule tests, built as plain rows (the rules only read them)."""

import datetime

from programmes.rules import compile_expression
from registry.models import AttributeDefinition, AttributeEntity, AttributeType, Household, Member
from registry.tests.factories import HouseholdFactory, MemberFactory

REFERENCE_DATE = datetime.date(2026, 1, 1)


def born_years_ago(years: int, *, days_after_reference: int = 0) -> datetime.date:
    """A date of birth that makes the person `years` old on REFERENCE_DATE."""
    day = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - years)
    return day - datetime.timedelta(days=days_after_reference)


def define_attributes() -> None:
    for entity, key, label, kind in (
        (AttributeEntity.HOUSEHOLD, "pmt_score", "Proxy means score", AttributeType.DECIMAL),
        (AttributeEntity.HOUSEHOLD, "roof", "Roof", AttributeType.CHOICE),
        (AttributeEntity.HOUSEHOLD, "rooms", "Rooms", AttributeType.INTEGER),
        (AttributeEntity.HOUSEHOLD, "flooded", "Affected by floods", AttributeType.BOOLEAN),
        (AttributeEntity.HOUSEHOLD, "disaster_date", "Date of the disaster", AttributeType.DATE),
        (AttributeEntity.MEMBER, "orphan", "Orphan", AttributeType.BOOLEAN),
        (AttributeEntity.MEMBER, "grade", "School grade", AttributeType.INTEGER),
    ):
        AttributeDefinition.objects.get_or_create(entity=entity, key=key, defaults={"label": label, "type": kind})


def make_household(village, *, members=(), head=0, **household_values) -> Household:
    """`members` are dicts of Member field values; `head` is the index of the head (None: no head)."""
    household = HouseholdFactory(village=village, district=village.district, **household_values)
    rows = [MemberFactory(household=household, **values) for values in members]
    if head is not None and rows:
        household.head = rows[head]
        household.save(update_fields=["head"])
    return household


def sql_value(household: Household, text: str, *, kind: str = "rule", reference_date=REFERENCE_DATE):
    compiled = compile_expression(text, kind=kind)
    return (
        Household.objects.filter(pk=household.pk)
        .annotate(value=compiled.sql(reference_date=reference_date))
        .values_list("value", flat=True)
        .get()
    )


def explain(household: Household, text: str, *, kind: str = "rule", target: str = "household"):
    household = Household.objects.prefetch_related("members").get(pk=household.pk)
    return compile_expression(text, kind=kind, target=target).explain(household, reference_date=REFERENCE_DATE)


def member_values(household: Household, text: str) -> dict[int, object]:
    compiled = compile_expression(text, kind="rule", target="member")
    rows = (
        Member.objects.filter(household=household, status="present")
        .annotate(value=compiled.member_sql(reference_date=REFERENCE_DATE))
        .values_list("pk", "value")
    )
    return dict(rows)
