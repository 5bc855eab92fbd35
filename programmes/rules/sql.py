"""The typed tree as one ORM expression: set-based, NULL is unknown.

Every operator is written as SQL text around its operands (not as Django
lookups or Q objects): a negated lookup adds `IS NOT NULL` guards that would
turn unknown into false, and the language must keep SQL's three-valued AND,
OR and NOT as they are. Member quantifiers are EXISTS and COUNT subqueries on
the members of the row's household; nothing is evaluated in Python."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from django.db.models import (
    BigIntegerField,
    BooleanField,
    CharField,
    Count,
    DateField,
    DecimalField,
    Exists,
    F,
    FloatField,
    Func,
    OuterRef,
    Subquery,
    Sum,
    Value,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce

from registry.models import DISABILITY_DOMAINS, Location, Member, MemberStatus

from .checker import Node
from .schema import BOOL, DATE, DOUBLE, INT, STRING, FieldSpec

# Benefit amounts: cents, and room for any amount a programme could pay.
AMOUNT_FIELD = DecimalField(max_digits=30, decimal_places=2)
_PLACEHOLDER = re.compile(r"(\{\d+\})")
_OUTPUT = {INT: BigIntegerField, DOUBLE: FloatField, STRING: CharField, BOOL: BooleanField, DATE: DateField}


class Sql(Func):
    """SQL text with {0}, {1} … standing for the compiled operands (repeats allowed)."""

    def __init__(self, template: str, *expressions, output_field, sqlite: str | None = None):
        super().__init__(*expressions, output_field=output_field)
        self.sql_template = template
        self.sqlite_template = sqlite or template

    def as_sql(self, compiler, connection, **extra_context):
        template = self.sqlite_template if connection.vendor == "sqlite" else self.sql_template
        compiled = [compiler.compile(expression) for expression in self.get_source_expressions()]
        parts, params = [], []
        for piece in _PLACEHOLDER.split(template):
            if _PLACEHOLDER.fullmatch(piece):
                sql, sql_params = compiled[int(piece[1:-1])]
                parts.append(sql)
                params.extend(sql_params)
            else:
                parts.append(piece)
        return "".join(parts), params


class AggregateSql(Sql):
    """SQL text that aggregates over the rows of the household's joined members.

    Marked as an aggregate so that the query groups by household; it adds
    nothing to the GROUP BY itself."""

    contains_aggregate = True

    def get_group_by_cols(self):
        return []


class PerHousehold(Sql):
    """The whole expression of a grouped query. The query groups by the household's id; every
    household column the expression reads depends on that id, so nothing else is added to the
    GROUP BY (which would otherwise list each subquery and constant, evaluated on every joined row)."""

    def __init__(self, expression):
        super().__init__("{0}", expression, output_field=expression.output_field)

    def get_group_by_cols(self):
        return []


def _boolean(template: str, *expressions, **kwargs) -> Sql:
    return Sql(template, *expressions, output_field=BooleanField(), **kwargs)


@dataclass(frozen=True)
class Context:
    """Where an expression is placed: the row of its (sub)query and how deep it is."""

    row: str  # "household" or "member"
    depth: int
    variables: dict  # member variable -> depth of the query whose row it is (JOINED: the grouped join)
    reference_date: datetime.date
    in_aggregate: bool = False  # inside the condition of a grouped quantifier: no aggregate may nest here

    @property
    def household_prefix(self) -> str:
        return "" if self.row == "household" else "household__"

    @property
    def household_id(self) -> str:
        return "pk" if self.row == "household" else "household_id"

    def inner(self, var: str) -> Context:
        return Context(
            "member", self.depth + 1, {**self.variables, var: self.depth + 1}, self.reference_date, self.in_aggregate
        )

    def joined(self, var: str) -> Context:
        """The condition of a grouped quantifier: still the household's query, `var` is the joined member row."""
        return Context(self.row, self.depth, {**self.variables, var: JOINED}, self.reference_date, True)


# What one member whose condition is unknown adds to a grouped quantifier's sum:
# more than any household's number of members, so the two counts share one sum.
UNKNOWN_WEIGHT = 1_000_000
# A member variable bound to the household's LEFT JOIN on its members (the grouped bulk path).
JOINED = "joined"


def _ref(path: str, levels: int):
    if levels == 0:
        return F(path)
    reference = path
    for _ in range(levels):
        reference = OuterRef(reference)
    return reference


def _present_members(context: Context):
    """The members of the context row's household, as a subquery one level down."""
    return Member.objects.filter(household_id=OuterRef(context.household_id), status=MemberStatus.PRESENT).order_by()


def _count(queryset):
    counted = queryset.values("household_id").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=BigIntegerField()), Value(0), output_field=BigIntegerField())


def age_sql(at, date_of_birth):
    """Whole years from date_of_birth to `at`, as Member.age_on computes them."""
    return Sql(
        "(CAST(EXTRACT(YEAR FROM {0}) AS bigint) - CAST(EXTRACT(YEAR FROM {1}) AS bigint)"
        " - CASE WHEN (EXTRACT(MONTH FROM {0}) * 100 + EXTRACT(DAY FROM {0}))"
        " < (EXTRACT(MONTH FROM {1}) * 100 + EXTRACT(DAY FROM {1})) THEN 1 ELSE 0 END)",
        at,
        date_of_birth,
        output_field=BigIntegerField(),
        sqlite="(CAST(strftime('%%Y', {0}) AS INTEGER) - CAST(strftime('%%Y', {1}) AS INTEGER)"
        " - (strftime('%%m%%d', {0}) < strftime('%%m%%d', {1})))",
    )


def _attribute(spec: FieldSpec, attributes):
    text = Sql("NULLIF({0}, '')", KeyTextTransform(spec.name, attributes), output_field=CharField())
    if spec.type == INT:
        return Cast(text, BigIntegerField())
    if spec.type == DOUBLE:
        return Cast(text, FloatField())
    if spec.type == DATE:
        return Sql("CAST({0} AS date)", text, output_field=DateField(), sqlite="{0}")
    if spec.type == BOOL:
        # JSON true/false come out of KeyTextTransform as 'true'/'false' on both databases.
        return _boolean(
            "CASE {0} WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE ELSE NULL END",
            KeyTextTransform(spec.name, attributes),
        )
    return text


def _disability(reference, threshold_sql: str):
    degrees = [reference(f"disability_{domain}") for domain in DISABILITY_DOMAINS]
    n = len(degrees)
    any_at = " OR ".join(f"COALESCE({{{i}}}, 0) {threshold_sql}" for i in range(n))
    none_recorded = " AND ".join(f"{{{i}}} IS NULL" for i in range(n))
    return _boolean(f"CASE WHEN {any_at} THEN TRUE WHEN {none_recorded} THEN NULL ELSE FALSE END", *degrees)


def _joined_ref(path: str, levels: int, relation: str):
    """A column of the joined member row (`household__x` is the household row itself)."""
    path = path.removeprefix("household__") if path.startswith("household__") else f"{relation}__{path}"
    return _ref(path, levels)


class Compiler:
    """The tree as correlated subqueries: one EXISTS or COUNT per member quantifier.

    With `grouped`, a quantifier over the household's members at the top of
    the query becomes an aggregate over one LEFT JOIN of the household on its
    members instead (the query is then grouped by household): every quantifier
    of every rule in the query reads the members once, where subqueries read
    them once each. For the bulk path, where that difference is the run time."""

    def __init__(self, reference_date: datetime.date, *, grouped: bool = False, members: str = "members"):
        self.reference_date = reference_date
        self.grouped = grouped
        self.members = members  # the relation joined when grouped: `members`, or a FilteredRelation of it
        self._aliases = 0

    def _grouping(self, context: Context) -> bool:
        return self.grouped and context.row == "household" and context.depth == 0 and not context.in_aggregate

    def compile(self, node: Node, context: Context):
        return getattr(self, f"compile_{node.op}")(node, context)

    def compile_lit(self, node: Node, context: Context):
        if node.type == INT:
            return Cast(Value(node.value), BigIntegerField())
        if node.type == DOUBLE:
            return Cast(Value(node.value), FloatField())
        return Value(node.value, output_field=_OUTPUT[node.type]())

    def compile_field(self, node: Node, context: Context):
        if node.var == "household":
            return self.household_field(node.spec, context)
        if context.variables[node.var] == JOINED:
            return self.member_field(node.spec, lambda path: _joined_ref(path, context.depth, self.members), context)
        levels = context.depth - context.variables[node.var]
        return self.member_field(node.spec, lambda path: _ref(path, levels), context)

    def household_field(self, spec: FieldSpec, context: Context):
        prefix = context.household_prefix
        if spec.attribute:
            return _attribute(spec, F(f"{prefix}attributes"))
        name = spec.name
        if name == "size":
            if self._grouping(context):
                return AggregateSql(
                    "SUM(CASE WHEN {0} = 'present' THEN 1 ELSE 0 END)",
                    F(f"{self.members}__status"),
                    output_field=BigIntegerField(),
                )
            return _count(_present_members(context))
        if name in ("status", "registration_date"):
            return F(f"{prefix}{name}")
        if name in ("district", "village", "ward"):
            column, path = {"district": ("district_id", "code"), "village": ("village_id", "code")}.get(
                name, ("village_id", "parent__code")
            )
            if self.grouped:
                # A join to the locations would have to join the GROUP BY too; one lookup per household instead.
                codes = Location.objects.filter(pk=OuterRef(f"{prefix}{column}")).order_by().values(path)[:1]
                return Subquery(codes, output_field=CharField())
            return F(f"{prefix}{column.removesuffix('_id')}__{path}")
        head = Member.objects.filter(pk=OuterRef(f"{prefix}head_id"), status=MemberStatus.PRESENT).order_by()
        if name == "female_headed":
            value = _boolean("({0} = 'F')", F("sex"))
            return Subquery(head.annotate(v=value).values("v")[:1], output_field=BooleanField())
        if name == "head_age":
            value = age_sql(Value(self.reference_date, output_field=DateField()), F("date_of_birth"))
            return Subquery(head.annotate(v=value).values("v")[:1], output_field=BigIntegerField())
        raise ValueError(f"no SQL for household.{name}")

    def member_field(self, spec: FieldSpec, reference, context: Context):
        name = spec.name
        if spec.attribute:
            return _attribute(spec, reference("attributes"))
        if name == "age":
            return age_sql(Value(self.reference_date, output_field=DateField()), reference("date_of_birth"))
        if name in ("school_attendance", "work_status"):
            return Sql("NULLIF({0}, '')", reference(name), output_field=CharField())
        if name == "is_head":
            return _boolean("COALESCE(({0} = {1}), FALSE)", reference("pk"), reference("household__head_id"))
        if name == "has_disability":
            return _disability(reference, ">= 3")
        if name == "severe_disability":
            return _disability(reference, "= 4")
        return reference(name)

    def compile_age_at(self, node: Node, context: Context):
        if context.variables[node.var] == JOINED:
            return age_sql(
                self.compile(node.args[0], context), _joined_ref("date_of_birth", context.depth, self.members)
            )
        levels = context.depth - context.variables[node.var]
        return age_sql(self.compile(node.args[0], context), _ref("date_of_birth", levels))

    def _quantified(self, node: Node, context: Context):
        self._aliases += 1
        alias = f"rule_condition_{self._aliases}"
        predicate = self.compile(node.args[0], context.inner(node.var))
        members = _present_members(context).alias(**{alias: predicate})
        return members, alias

    def _grouped(self, node: Node, context: Context, counted: str, template: str, output_field):
        """A quantifier as one sum over the joined members, which reads the condition once a member:
        each present member adds 1 when the condition is `counted` (TRUE or FALSE), and UNKNOWN_WEIGHT
        when it is unknown, so {0} % UNKNOWN_WEIGHT counts the first and {0} >= UNKNOWN_WEIGHT says
        some are unknown. The LEFT JOIN's empty row (no member) adds nothing."""
        predicate = self.compile(node.args[0], context.joined(node.var))
        other = "FALSE" if counted == "TRUE" else "TRUE"
        total = AggregateSql(
            f"SUM(CASE WHEN {{0}} = 'present' THEN CASE {{1}} WHEN {counted} THEN 1 WHEN {other} THEN 0 "
            f"ELSE {UNKNOWN_WEIGHT} END ELSE 0 END)",
            F(f"{self.members}__status"),
            predicate,
            output_field=BigIntegerField(),
        )
        return Sql(template.replace("UNKNOWN", str(UNKNOWN_WEIGHT)), total, output_field=output_field)

    def compile_exists(self, node: Node, context: Context):
        if self._grouping(context):
            return self._grouped(
                node,
                context,
                "TRUE",
                "CASE WHEN {0} %% UNKNOWN > 0 THEN TRUE WHEN {0} > 0 THEN NULL ELSE FALSE END",
                BooleanField(),
            )
        members, alias = self._quantified(node, context)
        return _boolean(
            "CASE WHEN {0} THEN TRUE WHEN {1} THEN NULL ELSE FALSE END",
            Exists(members.filter(**{alias: True})),
            Exists(members.filter(**{f"{alias}__isnull": True})),
        )

    def compile_all(self, node: Node, context: Context):
        if self._grouping(context):
            return self._grouped(
                node,
                context,
                "FALSE",
                "CASE WHEN {0} %% UNKNOWN > 0 THEN FALSE WHEN {0} > 0 THEN NULL ELSE TRUE END",
                BooleanField(),
            )
        members, alias = self._quantified(node, context)
        return _boolean(
            "CASE WHEN {0} THEN FALSE WHEN {1} THEN NULL ELSE TRUE END",
            Exists(members.filter(**{alias: False})),
            Exists(members.filter(**{f"{alias}__isnull": True})),
        )

    def compile_count(self, node: Node, context: Context):
        if self._grouping(context):
            return self._grouped(
                node, context, "TRUE", "CASE WHEN {0} >= UNKNOWN THEN NULL ELSE {0} END", BigIntegerField()
            )
        members, alias = self._quantified(node, context)
        return Sql(
            "CASE WHEN {0} THEN NULL ELSE {1} END",
            Exists(members.filter(**{f"{alias}__isnull": True})),
            _count(members.filter(**{alias: True})),
            output_field=BigIntegerField(),
        )

    def compile_not(self, node: Node, context: Context):
        return _boolean("(NOT {0})", self.compile(node.args[0], context))

    def compile_neg(self, node: Node, context: Context):
        return Sql("(-{0})", self.compile(node.args[0], context), output_field=_OUTPUT[node.type]())

    def compile_and(self, node: Node, context: Context):
        return _boolean("({0} AND {1})", *(self.compile(arg, context) for arg in node.args))

    def compile_or(self, node: Node, context: Context):
        return _boolean("({0} OR {1})", *(self.compile(arg, context) for arg in node.args))

    def compile_cmp(self, node: Node, context: Context):
        op = {"==": "=", "!=": "<>"}.get(node.value, node.value)
        return _boolean(f"({{0}} {op} {{1}})", *(self.compile(arg, context) for arg in node.args))

    def compile_arith(self, node: Node, context: Context):
        left, right = (self.compile(arg, context) for arg in node.args)
        output = _OUTPUT[node.type]()
        if node.value == "/":
            # Division by zero is unknown, not an error that stops the whole run.
            return Sql("({0} / NULLIF({1}, 0))", left, right, output_field=output)
        if node.value == "%":
            return Sql("MOD({0}, NULLIF({1}, 0))", left, right, output_field=output, sqlite="({0} %% NULLIF({1}, 0))")
        return Sql(f"({{0}} {node.value} {{1}})", left, right, output_field=output)

    def compile_double(self, node: Node, context: Context):
        return Cast(self.compile(node.args[0], context), FloatField())

    def compile_in(self, node: Node, context: Context):
        value = self.compile(node.args[0], context)
        items = [self.compile_lit(Node("lit", node.args[0].type, value=item), context) for item in node.value]
        placeholders = ", ".join(f"{{{i + 1}}}" for i in range(len(items)))
        return _boolean(f"({{0}} IN ({placeholders}))", value, *items)

    def compile_cond(self, node: Node, context: Context):
        # An unknown condition gives unknown, not the second choice as a plain CASE would.
        condition, when_true, when_false = (self.compile(arg, context) for arg in node.args)
        return Sql(
            "CASE WHEN {0} THEN {1} WHEN NOT {0} THEN {2} ELSE NULL END",
            condition,
            when_true,
            when_false,
            output_field=_OUTPUT[node.type](),
        )


def household_expression(
    root: Node,
    *,
    kind: str,
    target: str,
    reference_date: datetime.date,
    grouped: bool = False,
    members: str = "members",
):
    """The expression to annotate a Household queryset with (NULL is unknown).

    `grouped`: member quantifiers as aggregates over a join of the household's
    members, so the queryset is grouped by household (see Compiler). `members`
    names the relation joined: a FilteredRelation of `members` aliased on the
    queryset lets the caller narrow the join (the bulk path gives it the
    step's id range, so that only those members are read)."""
    compiler = Compiler(reference_date, grouped=grouped, members=members)
    context = Context("household", 0, {}, reference_date)
    if target == "member" and kind == "formula":
        # A formula over a member: the household's amount is the sum over its
        # present members, unknown when any member's is (as the explainer sums).
        members = _present_members(context).alias(member_amount=compiler.compile(root, context.inner("member")))
        total = members.values("household_id").annotate(total=Sum("member_amount")).values("total")
        expression = Sql(
            "CASE WHEN {0} THEN NULL ELSE COALESCE({1}, 0) END",
            Exists(members.filter(member_amount__isnull=True)),
            Subquery(total, output_field=_OUTPUT[root.type]()),
            output_field=_OUTPUT[root.type](),
        )
        return PerHousehold(Cast(expression, AMOUNT_FIELD)) if grouped else Cast(expression, AMOUNT_FIELD)
    if target == "member":
        # Individual targeting: the household qualifies when any member does.
        root = Node("exists", BOOL, args=[root], var="member")
    expression = compiler.compile(root, context)
    if kind == "formula":
        expression = Cast(expression, AMOUNT_FIELD)
    return PerHousehold(expression) if grouped else expression


def member_expression(root: Node, *, kind: str, reference_date: datetime.date):
    """The expression to annotate a Member queryset with, for rules over `member`."""
    compiler = Compiler(reference_date)
    context = Context("member", 0, {"member": 0}, reference_date)
    expression = compiler.compile(root, context)
    if kind == "formula":
        return Cast(expression, AMOUNT_FIELD)
    return expression
