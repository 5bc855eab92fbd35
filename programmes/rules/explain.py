"""One household, evaluated by cel-python, with the reasons.

The typed tree is written back as CEL text (with the checker's conversions and
the helpers spelt out) and cel-python evaluates it against the household as a
CEL map. A value that is not recorded is left out of the map: reading it is a
CEL error, which `&&` and `||` absorb exactly as SQL's NULL is absorbed by AND
and OR; any error left at the end is "unknown"."""

from __future__ import annotations

import datetime
import functools
import json
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import celpy
from celpy import celtypes
from celpy.evaluation import CELEvalError, Evaluator

from registry.models import DISABILITY_DOMAINS, Difficulty, MemberStatus

from .checker import Node
from .schema import BOOL, DATE, DOUBLE, INT, STRING, FieldSpec, Schema

CENTS = Decimal("0.01")
# Dates travel through cel-python as day numbers (date.toordinal()): the
# language only compares dates and computes ages, and whole numbers compare
# exactly; cel-python's timestamps would bring time zones into it.
UNKNOWN_NAME = "_unknown"  # never bound: reading it is an error, i.e. unknown


class RuleEvaluator(Evaluator):
    """cel-python's evaluator with filter() following the rule semantics.

    cel-python lets an error inside filter() escape as a Python exception,
    past `&&` and `||`; here filter() returns the error as a value (unknown
    when the condition is unknown for any member), like the SQL path."""

    def sub_evaluator(self, ast):
        return RuleEvaluator(ast, activation=self.activation)

    def member_dot_arg(self, tree):
        member_tree, method = tree.children[:2]
        if method.value != "filter":
            return super().member_dot_arg(tree)
        items = self.visit(member_tree)
        if isinstance(items, CELEvalError):
            return items
        keep = self.build_ss_macro_eval(tree)
        verdicts = [keep(item) for item in items]
        for verdict in verdicts:
            if isinstance(verdict, CELEvalError):
                return verdict
        return celtypes.ListType([item for item, verdict in zip(items, verdicts, strict=True) if verdict])


class RuleRunner(celpy.InterpretedRunner):
    def evaluate(self, context):
        return RuleEvaluator(ast=self.ast, activation=self.new_activation()).evaluate(context)


def _age_between(date_of_birth, at):
    born = datetime.date.fromordinal(int(date_of_birth))
    on = datetime.date.fromordinal(int(at))
    return celtypes.IntType(on.year - born.year - ((on.month, on.day) < (born.month, born.day)))


_ENVIRONMENT = celpy.Environment(runner_class=RuleRunner)


@functools.lru_cache(maxsize=2048)
def _program(text: str):
    return _ENVIRONMENT.program(_ENVIRONMENT.compile(text), functions={"age_at": _age_between})


def evaluate_text(text: str, activation: dict):
    """The value of CEL text, as Python (bool, int, float, str), or None when unknown."""
    try:
        value = _program(text).evaluate(activation)
    except CELEvalError:
        return None
    if isinstance(value, CELEvalError):
        return None
    if isinstance(value, celtypes.BoolType | bool):
        return bool(value)
    if isinstance(value, celtypes.IntType | int):
        return int(value)
    if isinstance(value, celtypes.DoubleType | float):
        return float(value)
    if isinstance(value, celtypes.StringType | str):
        return str(value)
    return value


# -- the typed tree as CEL text -----------------------------------------------


def render(node: Node) -> str:
    op = node.op
    if op == "lit":
        return _literal(node)
    if op == "field":
        return f"{node.var}.{node.spec.name}"
    if op == "age_at":
        return f"age_at({node.var}.date_of_birth, {render(node.args[0])})"
    if op in ("exists", "all"):
        return f"household.members.{op}({node.var}, {render(node.args[0])})"
    if op == "count":
        return f"household.members.filter({node.var}, {render(node.args[0])}).size()"
    if op == "not":
        return f"!({render(node.args[0])})"
    if op == "neg":
        return f"-({render(node.args[0])})"
    if op in ("and", "or"):
        joiner = "&&" if op == "and" else "||"
        return f"({render(node.args[0])} {joiner} {render(node.args[1])})"
    if op == "cmp":
        return f"({render(node.args[0])} {node.value} {render(node.args[1])})"
    if op == "arith":
        left, right = render(node.args[0]), render(node.args[1])
        if node.value == "/" and node.type == DOUBLE:
            # IEEE gives infinity; the language says unknown, as NULLIF does in SQL.
            return f"({right} == 0.0 ? {UNKNOWN_NAME} : {left} / {right})"
        return f"({left} {node.value} {right})"
    if op == "double":
        return f"double({render(node.args[0])})"
    if op == "in":
        items = ", ".join(_literal(Node("lit", _list_type(node), value=value)) for value in node.value)
        return f"({render(node.args[0])} in [{items}])"
    if op == "cond":
        condition, when_true, when_false = (render(arg) for arg in node.args)
        return f"({condition} ? {when_true} : {when_false})"
    raise ValueError(f"cannot render {op}")


def _list_type(node: Node) -> str:
    return node.args[0].type


def _literal(node: Node) -> str:
    value = node.value
    if node.type == BOOL:
        return "true" if value else "false"
    if node.type == INT:
        return str(value) if value >= 0 else f"({value})"
    if node.type == DOUBLE:
        text = repr(float(value))
        if "e" not in text and "." not in text:
            text += ".0"
        return text if value >= 0 else f"({text})"
    if node.type == STRING:
        return json.dumps(value, ensure_ascii=False)
    if node.type == DATE:
        return str(value.toordinal())
    raise ValueError(f"cannot render a literal of type {node.type}")


# -- the household as a CEL map ------------------------------------------------


def _cel(value, type_: str):
    if type_ == INT:
        return celtypes.IntType(int(value))
    if type_ == DOUBLE:
        return celtypes.DoubleType(float(value))
    if type_ == BOOL:
        return celtypes.BoolType(bool(value))
    if type_ == DATE:
        if isinstance(value, str):
            value = datetime.date.fromisoformat(value)
        return celtypes.IntType(value.toordinal())
    return celtypes.StringType(str(value))


def _attribute_values(attributes: dict, specs: dict[str, FieldSpec]) -> dict:
    values = {}
    for spec in specs.values():
        if not spec.attribute:
            continue
        raw = (attributes or {}).get(spec.name)
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            continue
        if spec.type == BOOL and not isinstance(raw, bool):
            continue  # the registry stores JSON true/false; anything else is not a recorded answer
        try:
            values[spec.name] = _cel(raw, spec.type)
        except (TypeError, ValueError, ArithmeticError):
            continue
    return values


def disability_flags(member) -> tuple[bool | None, bool | None]:
    """has_disability and severe_disability, unknown only when no domain is recorded."""
    degrees = [getattr(member, f"disability_{domain}") for domain in DISABILITY_DOMAINS]
    if all(degree is None for degree in degrees):
        return None, None
    recorded = [degree for degree in degrees if degree is not None]
    return any(d >= Difficulty.A_LOT for d in recorded), any(d == Difficulty.CANNOT for d in recorded)


def member_map(member, *, household, reference_date: datetime.date, schema: Schema) -> dict:
    values = {
        "sex": member.sex,
        "relationship": member.relationship,
        "is_head": member.pk == household.head_id,
        "status": member.status,
    }
    types = {name: spec.type for name, spec in schema.member.items()}
    if member.date_of_birth is not None:
        values["date_of_birth"] = member.date_of_birth
        values["age"] = member.age_on(reference_date)
    has_disability, severe = disability_flags(member)
    if has_disability is not None:
        values["has_disability"] = has_disability
        values["severe_disability"] = severe
    for domain in DISABILITY_DOMAINS:
        degree = getattr(member, f"disability_{domain}")
        if degree is not None:
            values[f"disability_{domain}"] = degree
    if member.chronic_illness is not None:
        values["chronic_illness"] = member.chronic_illness
    for name in ("school_attendance", "work_status"):
        if getattr(member, name):
            values[name] = getattr(member, name)
    cel = {celtypes.StringType(k): _cel(v, types[k]) for k, v in values.items()}
    cel.update({celtypes.StringType(k): v for k, v in _attribute_values(member.attributes, schema.member).items()})
    return celtypes.MapType(cel)


@dataclass
class HouseholdView:
    """The household as cel-python sees it, and the present members beside it."""

    household_map: celtypes.MapType
    members: list  # present Member rows, in order
    member_maps: list
    missing_labels: dict[str, str]  # household field -> words when it is missing


def household_view(household, *, reference_date: datetime.date, schema: Schema) -> HouseholdView:
    # `.all()` uses a prefetch when the caller made one; present members are
    # picked here so that the prefetch can be the plain relation.
    members = sorted((m for m in household.members.all() if m.status == MemberStatus.PRESENT), key=lambda m: m.pk)
    member_maps = [member_map(m, household=household, reference_date=reference_date, schema=schema) for m in members]
    head = next((m for m in members if m.pk == household.head_id), None)
    village = household.village
    values = {
        "size": len(members),
        "status": household.status,
        "registration_date": household.registration_date,
        "district": household.district.code,
        "ward": village.parent.code if village.parent_id else None,
        "village": village.code,
    }
    missing_labels = {}
    if head is None:
        missing_labels["female_headed"] = missing_labels["head_age"] = "head of household"
    else:
        values["female_headed"] = head.sex == "F"
        if head.date_of_birth is not None:
            values["head_age"] = head.age_on(reference_date)
    types = {name: spec.type for name, spec in schema.household.items()}
    cel = {celtypes.StringType(k): _cel(v, types[k]) for k, v in values.items() if v is not None}
    cel.update(
        {celtypes.StringType(k): v for k, v in _attribute_values(household.attributes, schema.household).items()}
    )
    cel[celtypes.StringType("members")] = celtypes.ListType(member_maps)
    return HouseholdView(celtypes.MapType(cel), members, member_maps, missing_labels)


# -- the explanation -----------------------------------------------------------


@dataclass
class Explanation:
    value: object
    outcome: str
    clauses: list[dict] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    member_ids: list[int] = field(default_factory=list)  # individual targeting: the members eligible

    @property
    def eligible_members(self) -> list[int]:
        return self.member_ids


def status_of(value) -> str:
    if value is None:
        return "unknown"
    return "true" if value else "false"


def rule_outcome(value) -> str:
    if value is None:
        return "needs_information"
    return "eligible" if value else "not_eligible"


def amount(value) -> Decimal | None:
    """A formula's value as money: 15 significant digits, then cents rounded half up,
    which is what PostgreSQL does when it casts a double to numeric(…, 2)."""
    if value is None:
        return None
    if isinstance(value, int):
        return Decimal(value).quantize(CENTS)
    return Decimal(f"{value:.15g}").quantize(CENTS, rounding=ROUND_HALF_UP)


class Explainer:
    def __init__(self, *, root: Node, source: str, kind: str, target: str, schema: Schema):
        self.root = root
        self.source = source
        self.kind = kind
        self.target = target
        self.schema = schema

    def explain(self, household, *, reference_date: datetime.date) -> Explanation:
        view = household_view(household, reference_date=reference_date, schema=self.schema)
        if self.target == "member":
            return self._explain_members(view)
        activation = {"household": view.household_map}
        value = evaluate_text(render(self.root), activation)
        missing = self._missing(self.root, activation, view, member=None) if value is None else []
        if self.kind == "formula":
            return Explanation(
                amount(value),
                "known" if value is not None else "unknown",
                [self._clause(self.root, activation, 0)],
                missing,
            )
        return Explanation(value, rule_outcome(value), self._clauses(self.root, activation, 0), missing)

    def _explain_members(self, view: HouseholdView) -> Explanation:
        """Individual targeting: the household qualifies when any member does."""
        values, clauses, missing, eligible = [], [], [], []
        for position, (member, cel_member) in enumerate(zip(view.members, view.member_maps, strict=True), start=1):
            activation = {"household": view.household_map, "member": cel_member}
            value = evaluate_text(render(self.root), activation)
            values.append(value)
            who = f"member {position} ({member.full_name})"
            for clause in self._clauses(self.root, activation, 0) if self.kind == "rule" else []:
                clauses.append({**clause, "member_id": member.pk, "member": who})
            if value is None:
                missing.extend(self._missing(self.root, activation, view, member=(who, cel_member)))
            elif value and self.kind == "rule":
                eligible.append(member.pk)
        if self.kind == "formula":
            total = None if any(v is None for v in values) else sum(values, 0)
            return Explanation(amount(total), "known" if total is not None else "unknown", clauses, _unique(missing))
        if any(v is True for v in values):
            value = True
        elif any(v is None for v in values):
            value = None
        else:
            value = False
        return Explanation(value, rule_outcome(value), clauses, _unique(missing) if value is None else [], eligible)

    # clauses: each operand of && and ||, with nested ones below it
    def _clauses(self, node: Node, activation: dict, depth: int) -> list[dict]:
        if node.op not in ("and", "or"):
            return [self._clause(node, activation, depth)]
        return self._nested(node, activation, depth)

    def _nested(self, node: Node, activation: dict, depth: int) -> list[dict]:
        entries = []
        for operand in _operands(node, node.op):
            entries.append(self._clause(operand, activation, depth))
            if operand.op in ("and", "or"):
                entries.extend(self._nested(operand, activation, depth + 1))
        return entries

    def _clause(self, node: Node, activation: dict, depth: int) -> dict:
        value = evaluate_text(render(node), activation)
        if node.type == DATE and value is not None:
            value = datetime.date.fromordinal(value).isoformat()
        if self.kind == "formula" and node is self.root:
            value = amount(value)
        return {
            "text": self.source[node.start : node.end].strip() or render(node),
            "value": value,
            "status": status_of(value) if node.type == BOOL else ("unknown" if value is None else "known"),
            "depth": depth,
            "words": words(node) or self.source[node.start : node.end].strip(),
        }

    # missing: the values whose absence left an unknown clause unknown
    def _missing(self, node: Node, activation: dict, view: HouseholdView, *, member) -> list[str]:
        if node.op in ("and", "or"):
            found = []
            for operand in _operands(node, node.op):
                if evaluate_text(render(operand), activation) is None:
                    found.extend(self._missing(operand, activation, view, member=member))
            return _unique(found)
        found = []
        for part in _outside_macros(node):
            if part.op in ("exists", "all", "count"):
                found.extend(self._missing_in_macro(part, activation, view))
            elif part.op == "field" and part.var == "household":
                found.extend(_household_missing(part.spec, view))
            elif part.op in ("field", "age_at") and member is not None and part.var == "member":
                found.extend(_member_missing(part, member[1], member[0]))
        return _unique(found)

    def _missing_in_macro(self, macro: Node, activation: dict, view: HouseholdView) -> list[str]:
        predicate = macro.args[0]
        text = render(predicate)
        found = []
        for position, (member, cel_member) in enumerate(zip(view.members, view.member_maps, strict=True), start=1):
            if evaluate_text(text, {**activation, macro.var: cel_member}) is not None:
                continue
            who = f"member {position} ({member.full_name})"
            for part in predicate.walk():
                if part.op in ("field", "age_at") and part.var == macro.var:
                    found.extend(_member_missing(part, cel_member, who))
                elif part.op == "field" and part.var == "household":
                    found.extend(_household_missing(part.spec, view))
                elif part.op in ("field", "age_at") and part.var == "member" and "member" in activation:
                    found.extend(_member_missing(part, activation["member"], "the member"))
        return found


def _operands(node: Node, op: str) -> list[Node]:
    if node.op != op:
        return [node]
    return [*_operands(node.args[0], op), *_operands(node.args[1], op)]


def _outside_macros(node: Node):
    yield node
    if node.op in ("exists", "all", "count"):
        return
    for child in node.args:
        yield from _outside_macros(child)


def _household_missing(spec: FieldSpec, view: HouseholdView) -> list[str]:
    if spec.always_known or celtypes.StringType(spec.name) in view.household_map:
        return []
    return [f"household: {view.missing_labels.get(spec.name, spec.label)}"]


def _member_missing(part: Node, cel_member, who: str) -> list[str]:
    if part.op == "age_at":
        name, label = "date_of_birth", "date of birth"
    else:
        name, label = part.spec.name, part.spec.label
    if part.op == "field" and part.spec.always_known:
        return []
    if celtypes.StringType(name) in cel_member:
        return []
    return [f"{who}: {label}"]


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# -- plain words for a clause ----------------------------------------------------

# What a field is called in a sentence ("age is at least 65"); the schema's
# labels name what to collect when a value is missing, which is not the same.
FIELD_WORDS = {
    "size": "number of members",
    "female_headed": "headed by a woman",
    "head_age": "age of the head",
    "fit_to_work": "members able to work",
    "dependency_ratio": "dependency ratio",
    "registration_date": "registration date",
    "age": "age",
    "is_head": "is the head",
    "has_disability": "has a disability",
    "severe_disability": "has a severe disability",
    "chronic_illness": "has a chronic illness",
    "date_of_birth": "date of birth",
}
COMPARISON_WORDS = {
    "==": "is",
    "!=": "is not",
    "<": "is less than",
    "<=": "is at most",
    ">": "is more than",
    ">=": "is at least",
}


def _grouped(node: Node, joiner: str) -> str | None:
    text = words(node)
    needs_brackets = (node.op in ("and", "or") and node.op != joiner) or (
        node.op in ("exists", "all") and not node.helper
    )
    return f"({text})" if text and needs_brackets else text


def words(node: Node) -> str | None:
    """A sentence for the common shapes of a clause, or None to show the text as written."""
    op = node.op
    if op == "field":
        return FIELD_WORDS.get(node.spec.name, node.spec.name.replace("_", " "))
    if op == "lit":
        if node.type == BOOL:
            return "yes" if node.value else "no"
        if node.type == DATE:
            return node.value.isoformat()
        return str(node.value)
    if op == "double":
        return words(node.args[0])
    if op == "age_at":
        return f"age on {words(node.args[0])}"
    if op == "cmp":
        left, right = words(node.args[0]), words(node.args[1])
        return f"{left} {COMPARISON_WORDS[node.value]} {right}" if left and right else None
    if op == "in":
        subject = words(node.args[0])
        return f"{subject} is one of {', '.join(str(v) for v in node.value)}" if subject else None
    if op == "not":
        inner = words(node.args[0])
        return f"not ({inner})" if inner else None
    if op in ("and", "or"):
        left, right = (_grouped(arg, op) for arg in node.args)
        return f"{left} {op} {right}" if left and right else None
    if op in ("exists", "all", "count"):
        if node.helper == "count_members":
            return f"number of {node.value}"
        if node.helper:
            return FIELD_WORDS.get(node.helper, node.helper.replace("_", " "))
        inner = words(node.args[0])
        if not inner:
            return None
        lead = {"exists": "at least one member", "all": "every member", "count": "number of members where"}[op]
        return f"{lead}: {inner}" if op != "count" else f"{lead} {inner}"
    if op == "cond" and node.helper:
        return FIELD_WORDS.get(node.helper)
    return None
