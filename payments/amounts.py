"""Benefit amounts from a programme's formula, in set-based SQL.

The same query serves one enrolment at approval and every enrolment of a
payroll: the formula compiled by `programmes.rules` over the households (or,
for programmes that serve individuals, the members) the enrolments name, with
the data as it is now. NULL means the formula needs information the record lacks.
"""

import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import F, QuerySet

from programmes.models import Programme, TargetUnit
from programmes.rules import compile_expression
from programmes.rules.sql import household_expression, member_expression
from registry.models import Household, Member

from .models import Enrolment


def benefit_amounts_sql(
    *, programme: Programme, enrolments: QuerySet[Enrolment], reference_date: datetime.date
) -> tuple[str, list] | None:
    """SQL selecting (enrolment_id, amount) for `enrolments`, amounts rounded to the cent; None without a formula."""
    version = programme.current_version
    if version is None or not version.benefit_formula.strip():
        return None
    individual = programme.target_unit == TargetUnit.INDIVIDUAL
    formula = compile_expression(
        version.benefit_formula, kind="formula", target="member" if individual else "household"
    )
    enrolment_table = Enrolment._meta.db_table
    ids_sql, ids_params = enrolments.order_by().values("pk").query.sql_with_params()
    if individual:
        people = (
            Member.objects.filter(pk__in=enrolments.order_by().values("member_id"))
            .order_by()
            .annotate(
                unit_id=F("pk"), benefit=member_expression(formula.tree, kind="formula", reference_date=reference_date)
            )
            .values("unit_id", "benefit")
        )
        unit_sql, unit_params = people.query.sql_with_params()
        join = "b.unit_id = e.member_id"
    else:
        households = (
            Household.objects.filter(pk__in=enrolments.order_by().values("household_id"))
            .order_by()
            .annotate(
                unit_id=F("pk"),
                benefit=household_expression(
                    formula.tree, kind="formula", target="household", reference_date=reference_date
                ),
            )
            .values("unit_id", "benefit")
        )
        unit_sql, unit_params = households.query.sql_with_params()
        join = "b.unit_id = e.household_id"
    sql = (
        f"SELECT e.id AS enrolment_id, ROUND(CAST(b.benefit AS NUMERIC), 2) AS amount "
        f"FROM {enrolment_table} e JOIN ({unit_sql}) b ON {join} WHERE e.id IN ({ids_sql})"
    )
    return sql, [*unit_params, *ids_params]


def benefit_amounts(
    *, programme: Programme, enrolment_ids: list[int], reference_date: datetime.date
) -> dict[int, Decimal | None]:
    """enrolment id -> amount per payment now (None: the formula needs information); empty without a formula."""
    query = benefit_amounts_sql(
        programme=programme, enrolments=Enrolment.objects.filter(pk__in=enrolment_ids), reference_date=reference_date
    )
    if query is None:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(*query)
        return {
            enrolment_id: None if amount is None else Decimal(str(amount)).quantize(Decimal("0.01"))
            for enrolment_id, amount in cursor.fetchall()
        }
