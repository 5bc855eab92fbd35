"""The eligibility expression language: a subset of CEL for rules and formulas.

    compiled = compile_expression(text, kind="rule", target="household")
    Household.objects.annotate(value=compiled.sql(reference_date=day))   # the bulk path
    compiled.explain(household, reference_date=day)                     # one household, with reasons

See docs/rules.md for the language as ministry staff write it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from .checker import Node, check
from .errors import Problem, RuleError
from .explain import Explainer, Explanation
from .parser import MAX_LENGTH, parse
from .schema import Schema, build_schema, current_schema
from .sql import household_expression, member_expression

__all__ = [
    "CompiledExpression",
    "Explanation",
    "MAX_LENGTH",
    "Problem",
    "RuleError",
    "Schema",
    "build_schema",
    "compile_expression",
    "current_schema",
]

KINDS = ("rule", "formula")
TARGETS = ("household", "member")


@dataclass(eq=False)
class CompiledExpression:
    source: str
    kind: str
    target: str
    tree: Node
    schema: Schema
    fields_used: set[str] = field(default_factory=set)

    def sql(self, *, reference_date: datetime.date):
        """An expression for `Household.objects.annotate(...)`: a rule gives
        True/False/None (None: needs information), a formula a Decimal or None.
        For a rule over `member`, the household's value is true when any
        present member's is."""
        return household_expression(self.tree, kind=self.kind, target=self.target, reference_date=reference_date)

    def member_sql(self, *, reference_date: datetime.date):
        """For a rule over `member`: an expression for `Member.objects.annotate(...)`."""
        if self.target != "member":
            raise ValueError("member_sql() is for rules and formulas written over `member`")
        return member_expression(self.tree, kind=self.kind, reference_date=reference_date)

    def explain(self, household, *, reference_date: datetime.date) -> Explanation:
        explainer = Explainer(
            root=self.tree, source=self.source, kind=self.kind, target=self.target, schema=self.schema
        )
        return explainer.explain(household, reference_date=reference_date)


def compile_expression(
    text: str, *, kind: str = "rule", target: str = "household", schema: Schema | None = None
) -> CompiledExpression:
    """Parse and check a rule or formula; raises RuleError listing every problem with its position.

    `schema` defaults to the core fields and the active attribute definitions in the database."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}")
    if schema is None:
        schema = current_schema()
    raw = parse(text)
    tree, fields_used = check(raw, schema=schema, text=text, kind=kind, target=target)
    return CompiledExpression(text, kind, target, tree, schema, fields_used)
