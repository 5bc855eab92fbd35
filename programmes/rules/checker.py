"""Names and types: from our syntax tree to a typed tree both evaluators share.

The checker refuses everything the language does not have, with the position,
and settles here every choice the two evaluators must make alike: an int meeting
a double becomes a double, helpers become plain member counts."""

from __future__ import annotations

import datetime
import difflib
from dataclasses import dataclass, field

from .errors import Problem, RuleError
from .parser import Raw
from .schema import BOOL, DATE, DOUBLE, INT, NUMERIC, STRING, FieldSpec, Schema

MEMBERS = "members"  # the type of `household.members`
ERROR = "error"  # a node already reported; keeps one mistake from producing five messages

TYPE_WORDS = {
    INT: "a whole number",
    DOUBLE: "a number",
    STRING: "a text",
    BOOL: "true or false",
    DATE: "a date",
    MEMBERS: "the list of members",
    "household": "the household",
    "member": "a member",
}

MACROS = ("exists", "all", "filter")
REFUSED_METHODS = {
    "exists_one": "exists_one is not supported; count with filter(m, ...).size() == 1",
    "map": "map is not supported; use exists, all or filter(...).size()",
    "reduce": "reduce is not supported",
    "min": "min is not supported",
}
# Age at which a member is counted as a child or an older person by the
# work-capacity helpers: Zambia's Social Cash Transfer definitions (under 18,
# 65 and over).
ADULT_AGE = 18
OLDER_AGE = 65


@dataclass(eq=False)
class Node:
    op: str
    type: str
    args: list[Node] = field(default_factory=list)
    value: object = None
    var: str | None = None  # the variable a field belongs to, or a macro binds
    spec: FieldSpec | None = None
    line: int = 1
    column: int = 1
    start: int = 0
    end: int = 0
    helper: str | None = None  # the helper a node was expanded from (for fields_used and words)

    def walk(self):
        yield self
        for child in self.args:
            yield from child.walk()


@dataclass
class Scope:
    variables: dict[str, str]  # name -> "household" | "member"
    in_macro: bool = False


class Checker:
    def __init__(self, schema: Schema, text: str):
        self.schema = schema
        self.text = text
        self.problems: list[Problem] = []
        self.fields_used: set[str] = set()
        self._counter = 0

    # -- reporting ------------------------------------------------------
    def refuse(self, raw: Raw, message: str, *, at_name: bool = False) -> Node:
        line, column = (raw.name_line, raw.name_column) if at_name and raw.name_line else (raw.line, raw.column)
        self.problems.append(Problem(message, line, column))
        return self.node(raw, "lit", ERROR, value=None)

    def node(self, raw: Raw, op: str, type_: str, **values) -> Node:
        return Node(op, type_, line=raw.line, column=raw.column, start=raw.start, end=raw.end, **values)

    def fresh(self, stem: str) -> str:
        # Helper variables start with "_" which a rule author cannot shadow
        # by accident (the checker refuses such names in rules).
        self._counter += 1
        return f"_{stem}{self._counter}"

    # -- the walk -------------------------------------------------------
    def check(self, raw: Raw, scope: Scope) -> Node:
        method = getattr(self, f"check_{raw.kind}")
        return method(raw, scope)

    def check_lit(self, raw: Raw, scope: Scope) -> Node:
        return self.node(raw, "lit", raw.lit_type, value=raw.value)

    def check_ident(self, raw: Raw, scope: Scope) -> Node:
        name = raw.value
        if name in scope.variables:
            return self.node(raw, "var", scope.variables[name], var=name)
        suggestion = _suggest(name, scope.variables)
        return self.refuse(raw, f"unknown name '{name}'{suggestion}")

    def check_dot(self, raw: Raw, scope: Scope) -> Node:
        receiver = self.check(raw.receiver, scope)
        if receiver.type == ERROR:
            return receiver
        name = raw.value
        if receiver.op == "var" and receiver.type in ("household", "member"):
            entity = receiver.type
            if entity == "household" and name == MEMBERS:
                return self.node(raw, "members", MEMBERS)
            fields = self.schema.fields_of(entity)
            spec = fields.get(name)
            if spec is None:
                choices = [*fields, *([MEMBERS] if entity == "household" else [])]
                return self.refuse(raw, f"{entity} has no field '{name}'{_suggest(name, choices)}", at_name=True)
            self.fields_used.add(f"{entity}.{name}")
            if entity == "household" and name in ("fit_to_work", "dependency_ratio"):
                return self.expand_work_capacity(raw, name)
            return self.node(raw, "field", spec.type, var=receiver.var, spec=spec)
        return self.refuse(raw, f"{TYPE_WORDS.get(receiver.type, receiver.type)} has no fields (tried '.{name}')")

    def check_call(self, raw: Raw, scope: Scope) -> Node:
        name = raw.value
        if raw.receiver is None:
            return self.check_function(raw, scope)
        if name in REFUSED_METHODS:
            return self.refuse(raw, REFUSED_METHODS[name], at_name=True)
        if name == "size" and raw.receiver.kind == "call" and raw.receiver.value == "filter":
            return self.check_macro(raw.receiver, scope, "count", raw)
        receiver = self.check(raw.receiver, scope) if name not in MACROS else None
        if receiver is not None and receiver.type == ERROR:
            return receiver
        if name == "size":
            if raw.args:
                return self.refuse(raw, "size() takes nothing between the brackets")
            if receiver.type == MEMBERS:
                self.fields_used.add("household.size")
                return self.node(raw, "field", INT, var=_household_var(scope), spec=self.schema.household["size"])
            return self.refuse(raw, "size() counts the members: household.members.size() or filter(...).size()")
        if name in MACROS:
            if name == "filter":
                return self.refuse(raw, "filter(...) gives a list; count it with filter(m, ...).size()")
            return self.check_macro(raw, scope, name, raw)
        if name == "count_members" and receiver.type == "household":
            return self.check_count_members(raw, scope)
        choices = ["count_members", "exists", "all", "filter", "size"]
        return self.refuse(raw, f"unknown function '{name}'{_suggest(name, choices)}", at_name=True)

    def check_function(self, raw: Raw, scope: Scope) -> Node:
        name = raw.value
        if name == "date":
            if len(raw.args) != 1 or raw.args[0].kind != "lit" or raw.args[0].lit_type != "string":
                return self.refuse(raw, 'date() takes one text like date("2026-01-01")')
            try:
                value = datetime.date.fromisoformat(raw.args[0].value)
            except ValueError:
                return self.refuse(raw.args[0], f"'{raw.args[0].value}' is not a date written YYYY-MM-DD")
            return self.node(raw, "lit", DATE, value=value)
        if name == "age_at":
            if len(raw.args) != 2:
                return self.refuse(raw, 'age_at() takes a member and a date: age_at(m, date("2026-01-01"))')
            who = self.check(raw.args[0], scope)
            when = self.check(raw.args[1], scope)
            if ERROR in (who.type, when.type):
                return self.node(raw, "lit", ERROR)
            if who.op != "var" or who.type != "member":
                return self.refuse(raw.args[0], "the first thing in age_at() must be a member, like m")
            if when.type != DATE:
                return self.refuse(
                    raw.args[1], f"the second thing in age_at() must be a date, not {TYPE_WORDS[when.type]}"
                )
            self.fields_used.add("member.date_of_birth")
            return self.node(raw, "age_at", INT, args=[when], var=who.var)
        if name == "double":
            if len(raw.args) != 1:
                return self.refuse(raw, "double() takes one number")
            value = self.check(raw.args[0], scope)
            if value.type == ERROR:
                return value
            if value.type not in NUMERIC:
                return self.refuse(raw, f"double() takes a number, not {TYPE_WORDS[value.type]}")
            return self.to_double(value)
        if name in ("has", "size", "int", "uint", "string", "bytes", "timestamp", "duration", "matches", "type"):
            return self.refuse(raw, f"the function {name}() is not supported in rules")
        known = ["date", "age_at", "double"]
        return self.refuse(raw, f"unknown function '{name}'{_suggest(name, known)}")

    def check_macro(self, raw: Raw, scope: Scope, kind: str, outer: Raw) -> Node:
        receiver = self.check(raw.receiver, scope)
        if receiver.type == ERROR:
            return receiver
        if receiver.type != MEMBERS:
            return self.refuse(raw, f"{raw.value}() works on household.members only")
        if scope.in_macro:
            return self.refuse(
                raw, f"{raw.value}() inside another exists/all/filter is not allowed (it costs too much)"
            )
        if len(raw.args) != 2 or raw.args[0].kind != "ident":
            return self.refuse(
                raw, f"{raw.value}() takes a name and a condition: household.members.{raw.value}(m, m.age >= 65)"
            )
        var = raw.args[0].value
        if var in scope.variables or var.startswith("_"):
            return self.refuse(raw.args[0], f"the name '{var}' is already taken; use another letter")
        inner = Scope({**scope.variables, var: "member"}, in_macro=True)
        predicate = self.check(raw.args[1], inner)
        if predicate.type == ERROR:
            return self.node(outer, "lit", ERROR)
        if predicate.type != BOOL:
            return self.refuse(
                raw.args[1], f"the condition in {raw.value}() must be true or false, not {TYPE_WORDS[predicate.type]}"
            )
        return self.node(outer, kind, INT if kind == "count" else BOOL, args=[predicate], var=var)

    def check_count_members(self, raw: Raw, scope: Scope) -> Node:
        usage = 'count_members takes a sex ("F", "M" or "any") and an age band: household.count_members("F", 18, 59)'
        if len(raw.args) != 3:
            return self.refuse(raw, usage)
        sex, low, high = raw.args
        if sex.kind != "lit" or sex.value not in ("F", "M", "any"):
            return self.refuse(sex, usage)
        if any(arg.kind != "lit" or arg.lit_type != "int" for arg in (low, high)):
            return self.refuse(raw, "the ages in count_members are whole numbers written out, like 18 and 59")
        var = self.fresh("c")
        parts = []
        if sex.value != "any":
            parts.append(self.compare(raw, "==", self.member_field(raw, var, "sex"), self.lit(raw, STRING, sex.value)))
        age = self.member_field(raw, var, "age")
        parts.append(self.compare(raw, ">=", age, self.lit(raw, INT, low.value)))
        parts.append(self.compare(raw, "<=", age, self.lit(raw, INT, high.value)))
        predicate = parts[0]
        for part in parts[1:]:
            predicate = self.node(raw, "and", BOOL, args=[predicate, part])
        self.fields_used.update({"household.count_members", "member.sex", "member.age"})
        who = {"F": "women", "M": "men", "any": "members"}[sex.value]
        described = f"{who} aged {low.value} to {high.value}"
        return self.node(raw, "count", INT, args=[predicate], var=var, helper="count_members", value=described)

    def expand_work_capacity(self, raw: Raw, name: str) -> Node:
        """fit_to_work and dependency_ratio, written in the language itself so
        that SQL and cel-python compute them from one definition."""
        self.fields_used.update({"member.age", "member.has_disability", "member.chronic_illness"})
        fit = self.node(raw, "count", INT, args=[self.able_to_work(raw, self.fresh("w"))], helper="fit_to_work")
        fit.var = fit.args[0].var
        if name == "fit_to_work":
            return fit
        unable_var = self.fresh("d")
        unable = self.node(raw, "not", BOOL, args=[self.able_to_work(raw, unable_var)])
        cannot = self.node(raw, "count", INT, args=[unable], var=unable_var, helper="dependency_ratio")
        ratio = self.node(raw, "arith", DOUBLE, value="/", args=[self.to_double(cannot), self.to_double(fit)])
        anyone_fit = self.compare(raw, ">", fit, self.lit(raw, INT, 0))
        return self.node(
            raw, "cond", DOUBLE, args=[anyone_fit, ratio, self.to_double(cannot)], helper="dependency_ratio"
        )

    def able_to_work(self, raw: Raw, var: str) -> Node:
        age = self.member_field(raw, var, "age")
        reasons = [
            self.compare(raw, "<", age, self.lit(raw, INT, ADULT_AGE)),
            self.compare(raw, ">=", age, self.lit(raw, INT, OLDER_AGE)),
            self.member_field(raw, var, "has_disability"),
            self.member_field(raw, var, "chronic_illness"),
        ]
        cannot = reasons[0]
        for reason in reasons[1:]:
            cannot = self.node(raw, "or", BOOL, args=[cannot, reason])
        able = self.node(raw, "not", BOOL, args=[cannot], var=var)
        return able

    def member_field(self, raw: Raw, var: str, name: str) -> Node:
        spec = self.schema.member[name]
        return self.node(raw, "field", spec.type, var=var, spec=spec)

    def lit(self, raw: Raw, type_: str, value) -> Node:
        return self.node(raw, "lit", type_, value=value)

    def compare(self, raw: Raw, op: str, left: Node, right: Node) -> Node:
        return self.node(raw, "cmp", BOOL, value=op, args=[left, right])

    def check_list(self, raw: Raw, scope: Scope) -> Node:
        return self.refuse(raw, 'a list [ ... ] can only follow \'in\', as in household.district in ["SAM", "LUN"]')

    def check_unary(self, raw: Raw, scope: Scope) -> Node:
        value = self.check(raw.args[0], scope)
        if value.type == ERROR:
            return value
        if raw.value == "!":
            if value.type != BOOL:
                return self.refuse(raw, f"'!' (not) needs true or false, not {TYPE_WORDS[value.type]}")
            return self.node(raw, "not", BOOL, args=[value])
        if value.type not in NUMERIC:
            return self.refuse(raw, f"'-' needs a number, not {TYPE_WORDS[value.type]}")
        if value.op == "lit":
            return self.node(raw, "lit", value.type, value=-value.value)
        return self.node(raw, "neg", value.type, args=[value])

    def check_cond(self, raw: Raw, scope: Scope) -> Node:
        condition, when_true, when_false = (self.check(arg, scope) for arg in raw.args)
        if ERROR in (condition.type, when_true.type, when_false.type):
            return self.node(raw, "lit", ERROR)
        if condition.type != BOOL:
            return self.refuse(
                raw.args[0], f"the condition before '?' must be true or false, not {TYPE_WORDS[condition.type]}"
            )
        when_true, when_false = self.same_type(raw, when_true, when_false, "the two choices of '? :'")
        if when_true is None:
            return self.node(raw, "lit", ERROR)
        if when_true.type not in (INT, DOUBLE, STRING, BOOL, DATE):
            return self.refuse(raw, f"'? :' cannot choose between {TYPE_WORDS[when_true.type]}s")
        return self.node(raw, "cond", when_true.type, args=[condition, when_true, when_false])

    def check_binary(self, raw: Raw, scope: Scope) -> Node:
        op = raw.value
        if op == "in":
            return self.check_in(raw, scope)
        left = self.check(raw.args[0], scope)
        right = self.check(raw.args[1], scope)
        if ERROR in (left.type, right.type):
            return self.node(raw, "lit", ERROR)
        if op in ("&&", "||"):
            for side, raw_side in ((left, raw.args[0]), (right, raw.args[1])):
                if side.type != BOOL:
                    return self.refuse(
                        raw_side, f"both sides of '{op}' must be true or false; this is {TYPE_WORDS[side.type]}"
                    )
            return self.node(raw, "and" if op == "&&" else "or", BOOL, args=[left, right])
        if op in ("==", "!=", "<", "<=", ">", ">="):
            left, right = self.same_type(raw, left, right, f"the two sides of '{op}'")
            if left is None:
                return self.node(raw, "lit", ERROR)
            if op not in ("==", "!=") and left.type not in (INT, DOUBLE, DATE):
                return self.refuse(
                    raw, f"'{op}' compares numbers or dates; {TYPE_WORDS[left.type]} can only be compared with == or !="
                )
            if left.type not in (INT, DOUBLE, DATE, STRING, BOOL):
                return self.refuse(raw, f"{TYPE_WORDS[left.type]} cannot be compared")
            return self.node(raw, "cmp", BOOL, value=op, args=[left, right])
        # arithmetic
        for side, raw_side in ((left, raw.args[0]), (right, raw.args[1])):
            if side.type not in NUMERIC:
                return self.refuse(raw_side, f"'{op}' needs numbers on both sides; this is {TYPE_WORDS[side.type]}")
        if op == "%":
            if INT not in (left.type,) or right.type != INT:
                return self.refuse(raw, "'%' (remainder) needs whole numbers on both sides")
            return self.node(raw, "arith", INT, value=op, args=[left, right])
        left, right = self.same_type(raw, left, right, f"the two sides of '{op}'")
        return self.node(raw, "arith", left.type, value=op, args=[left, right])

    def check_in(self, raw: Raw, scope: Scope) -> Node:
        left = self.check(raw.args[0], scope)
        if left.type == ERROR:
            return left
        listing = raw.args[1]
        if listing.kind != "list" or not listing.args:
            return self.refuse(listing, '\'in\' needs a list of values written out, like ["SAM", "LUN"]')
        if any(item.kind != "lit" for item in listing.args):
            return self.refuse(
                listing, "the list after 'in' may hold only values written out (numbers, texts, true/false)"
            )
        items = [self.check_lit(item, scope) for item in listing.args]
        types = {item.type for item in items}
        if left.type == DOUBLE or types == {INT, DOUBLE} or (left.type == INT and types == {DOUBLE}):
            if left.type in NUMERIC and types <= set(NUMERIC):
                left = self.to_double(left)
                items = [self.to_double(item) for item in items]
                types = {DOUBLE}
        if len(types) != 1 or types != {left.type}:
            found = ", ".join(sorted(TYPE_WORDS.get(t, t) for t in types))
            return self.refuse(raw, f"'in' compares {TYPE_WORDS.get(left.type, left.type)} with a list of {found}")
        if left.type not in (INT, DOUBLE, STRING, BOOL):
            return self.refuse(raw, f"'in' does not work on {TYPE_WORDS[left.type]}")
        return self.node(raw, "in", BOOL, args=[left], value=[item.value for item in items])

    # -- numbers --------------------------------------------------------
    def to_double(self, node: Node) -> Node:
        if node.type == DOUBLE:
            return node
        if node.op == "lit":
            return Node(
                "lit",
                DOUBLE,
                value=float(node.value),
                line=node.line,
                column=node.column,
                start=node.start,
                end=node.end,
            )
        return Node("double", DOUBLE, args=[node], line=node.line, column=node.column, start=node.start, end=node.end)

    def same_type(self, raw: Raw, left: Node, right: Node, what: str) -> tuple[Node | None, Node | None]:
        if left.type == right.type:
            return left, right
        if left.type in NUMERIC and right.type in NUMERIC:
            # `household.pmt_score <= 32`: staff write whole numbers against
            # decimal fields; both evaluators then compare doubles.
            return self.to_double(left), self.to_double(right)
        self.problems.append(
            Problem(
                f"{what} do not match: {TYPE_WORDS.get(left.type, left.type)} and {TYPE_WORDS.get(right.type, right.type)}",
                raw.line,
                raw.column,
            )
        )
        return None, None


def _household_var(scope: Scope) -> str:
    return next(name for name, kind in scope.variables.items() if kind == "household")


def _suggest(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def check(raw: Raw, *, schema: Schema, text: str, kind: str, target: str) -> tuple[Node, set[str]]:
    variables = {"household": "household"}
    if target == "member":
        variables["member"] = "member"
    checker = Checker(schema, text)
    node = checker.check(raw, Scope(variables))
    if not checker.problems and node.type != ERROR:
        if kind == "rule" and node.type != BOOL:
            checker.problems.append(Problem(f"a rule must be true or false; this gives {TYPE_WORDS[node.type]}", 1, 1))
        if kind == "formula" and node.type not in NUMERIC:
            checker.problems.append(Problem(f"a formula must give a number; this gives {TYPE_WORDS[node.type]}", 1, 1))
    if checker.problems:
        raise RuleError(checker.problems)
    return node, checker.fields_used
