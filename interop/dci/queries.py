"""DCI search queries, read into the registry's own terms.

A DCI query comes in three shapes (the specification's `query` oneOf):

- identifier type and value: {"type": "UIN", "value": "123456/10/1"};
- an expression: {"type": "ns:org:QueryType:NoSql", "value": {"expression":
  {"collection": "Group", "query": {"$and": [{"poverty_score": {"$lt": 5}}]}}}};
- a list of predicates: [{"seq_num": 1, "expression1": {"attribute_name": "age",
  "operator": "lt", "attribute_value": 25}, "condition": "and", "expression2": ...}].

Conditions on identifiers (national ID, household number, member id, phone)
become indexed filters. Every other condition is written in the project's one
expression language (the subset of CEL that eligibility rules use, see
docs/rules.md) and evaluated by its SQL compiler: ages come from dates of
birth at today's date, attributes defined by ministry staff are typed, and a
missing value is unknown, so it never matches. Conditions on members of a
household apply to one and the same member.

Every problem is a `QueryProblem` whose message names where in the query it is.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db.models import Q

from programmes.rules import RuleError, compile_expression, current_schema
from programmes.rules.schema import BOOL, DATE, DOUBLE, INT, STRING, Schema
from registry.countries import current_country
from registry.models import Member, Relationship

from .config import MAX_CONDITIONS, MAX_IN_VALUES, poverty_score_attribute

GROUP, MEMBER = "Group", "Member"

CRITERIA_INVALID = "rjct.search_criteria.invalid"
SORT_INVALID = "rjct.sort.invalid"
PAGINATION_INVALID = "rjct.pagination.invalid"


class QueryProblem(ValueError):
    def __init__(self, message: str, code: str = CRITERIA_INVALID):
        super().__init__(message)
        self.code = code


# --- the tree ------------------------------------------------------------------------------


@dataclass
class Leaf:
    attribute: str
    operator: str  # eq ne lt le gt ge in nin
    value: object
    where: str


@dataclass
class Combination:
    kind: str  # and, or, not
    children: list = field(default_factory=list)


def _leaves(node) -> list[Leaf]:
    if isinstance(node, Leaf):
        return [node]
    return [leaf for child in node.children for leaf in _leaves(child)]


MONGO_OPERATORS = {
    "$eq": "eq",
    "$ne": "ne",
    "$lt": "lt",
    "$lte": "le",
    "$gt": "gt",
    "$gte": "ge",
    "$in": "in",
    "$nin": "nin",
}
PREDICATE_OPERATORS = {"eq": "eq", "ne": "ne", "lt": "lt", "le": "le", "gt": "gt", "ge": "ge", "in": "in", "nin": "nin"}
CEL_OPERATORS = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def _is_operator(key) -> bool:
    text = str(key)
    return text.startswith("$") or text in PREDICATE_OPERATORS or text in ("lte", "gte", "not")


def parse_mongo(node, where: str):
    """The NoSql expression ({"$and": [...], "field": {"$lt": 5}}) as a tree."""
    if not isinstance(node, dict) or not node:
        raise QueryProblem(f'{where}: must be an object of conditions, e.g. {{"age": {{"$lt": 25}}}}.')
    parts = []
    for key, value in node.items():
        here = f"{where}.{key}"
        if key in ("$and", "$or", "$nor"):
            if not isinstance(value, list) or not value:
                raise QueryProblem(f"{here}: must be a list of conditions.")
            children = [parse_mongo(item, f"{here}[{i}]") for i, item in enumerate(value)]
            combined = Combination("or" if key != "$and" else "and", children)
            parts.append(Combination("not", [combined]) if key == "$nor" else combined)
        elif key == "$not":
            parts.append(Combination("not", [parse_mongo(value, here)]))
        elif key.startswith("$"):
            raise QueryProblem(f"{here}: unknown operator; use $and, $or, $not or $nor, or a field name.")
        elif isinstance(value, dict) and value and all(_is_operator(k) for k in value):
            # {"$lt": 5}, or {"lt": 5} as the IBR's enrolled_criteria example writes it.
            for operator, operand in value.items():
                name = "$" + str(operator).lstrip("$")
                if name == "$not":
                    parts.append(Combination("not", [parse_mongo({key: operand}, f"{here}.{operator}")]))
                    continue
                name = {"$le": "$lte", "$ge": "$gte"}.get(name, name)
                if name not in MONGO_OPERATORS:
                    raise QueryProblem(f"{here}.{operator}: unknown operator; use one of {', '.join(MONGO_OPERATORS)}.")
                parts.append(Leaf(key, MONGO_OPERATORS[name], operand, f"{here}.{operator}"))
        else:
            parts.append(Leaf(key, "eq", value, here))
    return parts[0] if len(parts) == 1 else Combination("and", parts)


def _expression_leaf(expression, where: str) -> Leaf:
    if not isinstance(expression, dict):
        raise QueryProblem(f"{where}: must be an object with attribute_name, operator and attribute_value.")
    missing = [k for k in ("attribute_name", "operator", "attribute_value") if k not in expression]
    if missing:
        raise QueryProblem(f"{where}: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required.")
    name, operator = expression["attribute_name"], str(expression["operator"]).strip().lower()
    if not isinstance(name, str) or not name.strip():
        raise QueryProblem(f"{where}.attribute_name: must name an attribute, e.g. age.")
    if operator not in PREDICATE_OPERATORS:
        raise QueryProblem(f"{where}.operator: '{operator}' is not one of gt, lt, eq, ge, le, in (or ne, nin).")
    return Leaf(name.strip(), PREDICATE_OPERATORS[operator], expression["attribute_value"], where)


def parse_predicates(items, where: str):
    """The list of predicates: each "expression1 <condition> expression2 [<condition> expression3 …]",
    the list's entries together (in seq_num order) all true."""
    if not isinstance(items, list) or not items:
        raise QueryProblem(f"{where}: must be a list of predicates.")
    entries = []
    for index, item in enumerate(items):
        here = f"{where}[{index}]"
        if not isinstance(item, dict) or "expression1" not in item:
            raise QueryProblem(f"{here}: each predicate needs expression1.")
        seq = item.get("seq_num")
        order = float(seq) if isinstance(seq, (int, float)) and not isinstance(seq, bool) else float(index)
        numbers = sorted(
            int(key[len("expression") :])
            for key in item
            if re.fullmatch(r"expression\d+", key) and item[key] not in ("", None, {})
        )
        node = _expression_leaf(item["expression1"], f"{here}.expression1")
        condition = str(item.get("condition") or "").strip().lower()
        for number in numbers[1:]:
            leaf = _expression_leaf(item[f"expression{number}"], f"{here}.expression{number}")
            if condition == "and":
                node = Combination("and", [node, leaf])
            elif condition == "or":
                node = Combination("or", [node, leaf])
            elif condition == "not":
                # "a not b": a, and not b.
                node = Combination("and", [node, Combination("not", [leaf])])
            else:
                raise QueryProblem(f"{here}.condition: join expressions with and, or, or not.")
        entries.append((order, index, node))
    nodes = [node for _, _, node in sorted(entries, key=lambda e: (e[0], e[1]))]
    return nodes[0] if len(nodes) == 1 else Combination("and", nodes)


# --- attributes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Identifier:
    name: str  # national_id, household_number, member_id, phone
    level: str


@dataclass(frozen=True)
class Attribute:
    level: str  # household or member
    field: str  # the name in the rules language
    kind: str  # int, number, text, bool, date, sex, relationship, year
    label: str


IDENTIFIERS = {
    **dict.fromkeys(
        ("nid", "uin", "nrc", "national_id", "nationalid", "person_identifier", "identifier", "member_identifier"),
        Identifier("national_id", "member"),
    ),
    **dict.fromkeys(
        ("hhid", "household_number", "household_identifier", "group_identifier", "household_id", "group_id"),
        Identifier("household_number", "household"),
    ),
    "member_id": Identifier("member_id", "member"),
    **dict.fromkeys(("mobile", "phone", "phone_number"), Identifier("phone", "household")),
}

_KIND_OF_TYPE = {INT: "int", DOUBLE: "number", STRING: "text", BOOL: "bool", DATE: "date"}
_PREFIXES = (
    ("demographic_info.person.", "member"),
    ("demographic_info.", "member"),
    ("person.", "member"),
    ("member.", "member"),
    ("household_member.", "member"),
    ("household.", "household"),
    ("group.", "household"),
)


def _aliases() -> dict[str, tuple[str, str, str]]:
    return {
        "poverty_score": ("household", poverty_score_attribute(), "number"),
        **dict.fromkeys(("group_size", "household_size", "size"), ("household", "size", "int")),
        "registration_date": ("household", "registration_date", "date"),
        **dict.fromkeys(("district", "location", "region", "region_code"), ("household", "district", "text")),
        **dict.fromkeys(("ward", "sub_region_code"), ("household", "ward", "text")),
        "village": ("household", "village", "text"),
        "female_headed": ("household", "female_headed", "bool"),
        "head_age": ("household", "head_age", "int"),
        **dict.fromkeys(("household_status", "group_status"), ("household", "status", "text")),
        **dict.fromkeys(("sex", "gender"), ("member", "sex", "sex")),
        "age": ("member", "age", "int"),
        **dict.fromkeys(("birth_date", "dob", "date_of_birth"), ("member", "date_of_birth", "date")),
        **dict.fromkeys(("yob", "year_of_birth"), ("member", "date_of_birth", "year")),
        **dict.fromkeys(("is_disabled", "disability", "has_disability"), ("member", "has_disability", "bool")),
        **dict.fromkeys(("relationship_head", "relationship"), ("member", "relationship", "relationship")),
        **dict.fromkeys(("employment_status", "work_status"), ("member", "work_status", "text")),
    }


def resolve(name: str, *, entity: str, schema: Schema, where: str) -> Identifier | Attribute:
    """What a DCI attribute name means here: an identifier, or a field of the rules language."""
    text = name.strip()
    pinned = None
    for prefix, level in _PREFIXES:
        if text.lower().startswith(prefix):
            text, pinned = text[len(prefix) :], level
            break
    key = text.lower()
    if key in IDENTIFIERS:
        return IDENTIFIERS[key]
    aliases = _aliases()
    if key in aliases:
        level, field_name, kind = aliases[key]
        if key == "registration_date" and (pinned or ("member" if entity == MEMBER else "household")) == "member":
            level = "household"  # a member's registration is its household's
        fields = schema.fields_of(level)
        if field_name not in fields:
            if key == "poverty_score":
                raise QueryProblem(
                    f"{where}: this registry records no poverty score (no household attribute '{field_name}')."
                )
            raise QueryProblem(f"{where}: '{name}' is not recorded in this registry.")
        return Attribute(level, field_name, kind, name)
    levels = [pinned] if pinned else (["member", "household"] if entity == MEMBER else ["household", "member"])
    for level in levels:
        spec = schema.fields_of(level).get(text)
        if spec is not None:
            return Attribute(level, spec.name, _KIND_OF_TYPE.get(spec.type, "text"), name)
    raise QueryProblem(
        f"{where}: '{name}' is not an attribute this registry can search; use an identifier (UIN, NID, HHID, "
        "MOBILE) or one of poverty_score, group_size, registration_date, district, ward, village, female_headed, "
        "head_age, sex, age, birth_date, YOB, is_disabled, relationship_head, employment_status, or an attribute "
        "defined by the ministry."
    )


# --- values --------------------------------------------------------------------------------

_SEX = {"f": "F", "female": "F", "woman": "F", "m": "M", "male": "M", "man": "M"}
_RELATIONSHIP = {
    "self": "head",
    "head": "head",
    "husband": "spouse",
    "wife": "spouse",
    "partner": "spouse",
    "son": "child",
    "daughter": "child",
    "brother": "sibling",
    "sister": "sibling",
    "mother": "parent",
    "father": "parent",
}
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n"}


def _scalar(value, where: str):
    if isinstance(value, (dict, list)):
        raise QueryProblem(f"{where}: give one value, not {'an object' if isinstance(value, dict) else 'a list'}.")
    if value is None:
        raise QueryProblem(f"{where}: a value is required.")
    return value


def _literal(kind: str, value, where: str, label: str) -> str:
    value = _scalar(value, where)
    if kind == "int":
        if isinstance(value, bool):
            raise QueryProblem(f"{where}: {label} is a whole number, not true or false.")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            value = int(value)
        if not isinstance(value, int):
            raise QueryProblem(f"{where}: {label} is a whole number; '{value}' is not one.")
        return str(value)
    if kind == "number":
        if isinstance(value, bool):
            raise QueryProblem(f"{where}: {label} is a number, not true or false.")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise QueryProblem(f"{where}: {label} is a number; '{value}' is not one.")
        if not number.is_finite():
            raise QueryProblem(f"{where}: {label} must be a finite number.")
        return format(number, "f")
    if kind == "bool":
        text = str(value).strip().lower()
        if value is True or text in _TRUE:
            return "true"
        if value is False or text in _FALSE:
            return "false"
        raise QueryProblem(f"{where}: {label} is true or false (or 1 or 0); '{value}' is neither.")
    if kind == "date":
        day = _date(value, where, label)
        return f'date("{day.isoformat()}")'
    if kind == "sex":
        sex = _SEX.get(str(value).strip().lower())
        if sex is None:
            raise QueryProblem(f"{where}: {label} is female or male (F or M); '{value}' is neither.")
        return json.dumps(sex)
    if kind == "relationship":
        text = str(value).strip().lower()
        relationship = _RELATIONSHIP.get(text, text)
        if relationship not in Relationship.values:
            raise QueryProblem(f"{where}: {label} '{value}' is not one of self, {', '.join(Relationship.values[1:])}.")
        return json.dumps(relationship)
    return json.dumps(str(value))


def _date(value, where: str, label: str) -> datetime.date:
    text = str(value).strip()
    try:
        return datetime.date.fromisoformat(text[:10])
    except ValueError:
        raise QueryProblem(f"{where}: {label} is a date (YYYY-MM-DD); '{value}' is not one.")


def _values(value, where: str) -> list:
    if isinstance(value, str):
        values = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list):
        values = value
    else:
        values = [value]
    if not values:
        raise QueryProblem(f"{where}: 'in' needs at least one value.")
    if len(values) > MAX_IN_VALUES:
        raise QueryProblem(f"{where}: at most {MAX_IN_VALUES} values in one list.")
    return values


def _condition(attribute: Attribute, leaf: Leaf, subject: str) -> str:
    """The leaf in the rules language, `subject` being `household`, `member` or the member variable."""
    path = f"{subject}.{attribute.field}"
    op, where, label = leaf.operator, leaf.where, attribute.label
    if attribute.kind == "year":
        years = _values(leaf.value, where) if op in ("in", "nin") else [_scalar(leaf.value, where)]
        parsed = []
        for year in years:
            text = _literal("int", year, where, label)
            parsed.append(int(text))
        if op in ("in", "nin", "eq", "ne"):
            text = " || ".join(f'({path} >= date("{y:04d}-01-01") && {path} <= date("{y:04d}-12-31"))' for y in parsed)
            return f"!({text})" if op in ("nin", "ne") else f"({text})"
        year = parsed[0]
        bound = {"lt": ("<", "01-01"), "le": ("<=", "12-31"), "gt": (">", "12-31"), "ge": (">=", "01-01")}[op]
        return f'{path} {bound[0]} date("{year:04d}-{bound[1]}")'
    ordered = attribute.kind in ("int", "number", "date")
    if op in ("lt", "le", "gt", "ge") and not ordered:
        raise QueryProblem(
            f"{where}: '{op}' compares numbers and dates; {label} is "
            f"{'true or false' if attribute.kind == 'bool' else 'a text'}: use eq, ne or in."
        )
    if op in ("in", "nin"):
        literals = ", ".join(_literal(attribute.kind, v, where, label) for v in _values(leaf.value, where))
        text = f"{path} in [{literals}]"
        return f"!({text})" if op == "nin" else text
    return f"{path} {CEL_OPERATORS[op]} {_literal(attribute.kind, leaf.value, where, label)}"


# --- the compiled query --------------------------------------------------------------------


@dataclass
class CompiledQuery:
    entity: str
    identifier_filters: list[Q] = field(default_factory=list)
    rule: str = ""  # the rest, in the rules language ("" when there is none)


def _identifier_filter(identifier: Identifier, leaf: Leaf, *, entity: str) -> Q:
    if leaf.operator not in ("eq", "in"):
        raise QueryProblem(f"{leaf.where}: an identifier is matched with eq or in, not '{leaf.operator}'.")
    values = _values(leaf.value, leaf.where) if leaf.operator == "in" else [_scalar(leaf.value, leaf.where)]
    texts = [str(v).strip() for v in values]
    if identifier.name == "national_id":
        ids = [t.upper() for t in texts]
        if entity == MEMBER:
            return Q(national_id__in=ids)
        return Q(pk__in=Member.objects.filter(national_id__in=ids).values("household_id"))
    if identifier.name == "household_number":
        numbers = [t.upper() for t in texts]
        return Q(household__number__in=numbers) if entity == MEMBER else Q(number__in=numbers)
    if identifier.name == "member_id":
        ids = [int(t) for t in texts if t.isdigit()]
        if len(ids) != len(texts):
            raise QueryProblem(f"{leaf.where}: a MEMBER_ID is a whole number.")
        return Q(pk__in=ids) if entity == MEMBER else Q(pk__in=Member.objects.filter(pk__in=ids).values("household_id"))
    keys = [current_country().phone_key(t) for t in texts]
    if not all(keys):
        raise QueryProblem(f"{leaf.where}: a phone number needs digits.")
    if entity == MEMBER:
        return Q(phone_key__in=keys)
    return Q(phone_key__in=keys) | Q(pk__in=Member.objects.filter(phone_key__in=keys).values("household_id"))


def compile_query(query_type: str, query, *, entity: str, schema: Schema | None = None) -> CompiledQuery:
    """Read a DCI query for records of `entity` (Group or Member). QueryProblem when it cannot be read."""
    schema = schema or current_schema()
    tree = read_query(query_type, query)
    leaves = _leaves(tree)
    if len(leaves) > MAX_CONDITIONS:
        raise QueryProblem(f"query: at most {MAX_CONDITIONS} conditions in one query.")
    resolved = {id(leaf): resolve(leaf.attribute, entity=entity, schema=schema, where=leaf.where) for leaf in leaves}
    top = tree.children if isinstance(tree, Combination) and tree.kind == "and" else [tree]
    compiled = CompiledQuery(entity)
    rest = []
    for node in top:
        if isinstance(node, Leaf) and isinstance(resolved[id(node)], Identifier):
            compiled.identifier_filters.append(_identifier_filter(resolved[id(node)], node, entity=entity))
        else:
            for leaf in _leaves(node):
                if isinstance(resolved[id(leaf)], Identifier):
                    raise QueryProblem(
                        f"{leaf.where}: an identifier can only be combined with other conditions by 'and'."
                    )
            rest.append(node)
    if rest:
        node = rest[0] if len(rest) == 1 else Combination("and", rest)
        compiled.rule = _render(node, resolved, entity=entity)
        try:
            compile_expression(
                compiled.rule, kind="rule", target="member" if entity == MEMBER else "household", schema=schema
            )
        except RuleError as problem:
            raise QueryProblem(f"query: cannot be evaluated here ({problem}).")
    return compiled


def read_query(query_type: str, query):
    """The query as a tree, whatever its shape (see the module's docstring)."""
    kind = (query_type or "").strip().lower()
    if kind not in ("idtype-value", "expression", "predicate"):
        raise QueryProblem("query_type: must be idtype-value, expression or predicate.")
    if isinstance(query, list):
        if kind == "idtype-value":
            raise QueryProblem('query: idtype-value takes {"type": …, "value": …}, not a list.')
        return parse_predicates(query, "query")
    if not isinstance(query, dict):
        raise QueryProblem("query: must be an object or a list of predicates.")
    value = query.get("value")
    if isinstance(value, dict) and "expression" in value:
        if kind == "idtype-value":
            raise QueryProblem("query: idtype-value takes a type and a value, not an expression.")
        query_language = str(query.get("type") or "nosql").lower()
        if "nosql" not in query_language:
            raise QueryProblem(
                f"query.type: '{query.get('type')}' is not a query language this registry reads; "
                "use ns:org:QueryType:NoSql."
            )
        expression = value["expression"]
        if not isinstance(expression, dict) or "query" not in expression:
            raise QueryProblem('query.value.expression: must hold the query, e.g. {"collection": …, "query": …}.')
        return parse_mongo(expression["query"], "query.value.expression.query")
    if "attribute_name" in query:
        # One expression without the list around it (the IBR samples).
        return _expression_leaf(query, "query")
    if "type" in query and "value" in query:
        if not isinstance(query["type"], str) or not query["type"].strip():
            raise QueryProblem("query.type: name the identifier type, e.g. UIN.")
        if isinstance(query["value"], (dict, list)) or query["value"] in (None, ""):
            raise QueryProblem("query.value: give the identifier's value.")
        if query["type"].strip().lower() not in IDENTIFIERS:
            raise QueryProblem(
                f"query.type: identifier type '{query['type']}' is not recorded in this registry; use NID (or UIN), "
                "HHID (household number), MEMBER_ID or MOBILE."
            )
        return Leaf(query["type"].strip(), "eq", query["value"], "query.value")
    if kind == "idtype-value":
        raise QueryProblem('query: idtype-value takes {"type": …, "value": …}.')
    # The expression without its envelope: {"age": {"$lt": 25}}.
    return parse_mongo(query, "query")


def _member_only(node, resolved) -> bool:
    return all(resolved[id(leaf)].level == "member" for leaf in _leaves(node))


def _render(node, resolved, *, entity: str, member_var: str = "") -> str:
    """The tree in the rules language. For Group records, conditions on members are put in one
    `household.members.exists(m, …)` per largest group of them, so they hold for one member."""
    if isinstance(node, Leaf):
        attribute = resolved[id(node)]
        if attribute.level == "member":
            subject = member_var or "member"
        else:
            subject = "household"
        return _condition(attribute, node, subject)
    if entity == GROUP and not member_var and _member_only(node, resolved):
        return f"household.members.exists(m, {_render(node, resolved, entity=entity, member_var='m')})"
    if node.kind == "not":
        return f"!({_render(node.children[0], resolved, entity=entity, member_var=member_var)})"
    children = node.children
    if entity == GROUP and not member_var:
        members = [c for c in children if _member_only(c, resolved)]
        others = [c for c in children if not _member_only(c, resolved)]
        if len(members) > 1:
            children = [*others, Combination(node.kind, members)]
    joiner = " && " if node.kind == "and" else " || "
    return "(" + joiner.join(_render(c, resolved, entity=entity, member_var=member_var) for c in children) + ")"


# --- enrolments (the Integrated Beneficiary Registry) ------------------------------------------

PROGRAMME_NAMES = {
    "programme",
    "programme_code",
    "programme_identifier",
    "programme_identifier.program.programme_identifier",
    "programme_identifier.programme.programme_identifier",
    "programme.programme_identifier",
    "program",
    "program_identifier",
}
STATUS_NAMES = {"enrolment_status", "enrollment_status", "programme_identifier.enrolment_status", "status"}
ENROLMENT_DATE_NAMES = {"enrolment_date", "enrollment_date", "programme_identifier.enrolment_date"}

# cd.ibr.01 enrolment_status, by code and by word, and our own statuses.
_STATUS_WORDS = {
    "1": Q(status="active"),
    "active": Q(status="active"),
    "2": Q(status="exited", exit_reason="deceased"),
    "deceased": Q(status="exited", exit_reason="deceased"),
    "3": Q(status="exited", exit_reason="graduated"),
    "graduated": Q(status="exited", exit_reason="graduated"),
    "4": Q(status="suspended"),
    "suspended": Q(status="suspended"),
    "5": Q(status="suspended"),
    "inactive": Q(status="suspended"),
    "6": Q(status="active"),
    "reinstated": Q(status="active"),
    "7": Q(status="active"),
    "awaiting renewal": Q(status="active"),
    "applied": Q(status="applied"),
    "verified": Q(status="verified"),
    "approved": Q(status="approved"),
    "exited": Q(status="exited"),
}


@dataclass
class CompiledEnrolmentQuery:
    filters: list[Q] = field(default_factory=list)
    household_rule: str = ""


def _enrolment_filter(leaf: Leaf, name: str) -> Q:
    op = leaf.operator
    if name in PROGRAMME_NAMES or name in STATUS_NAMES:
        if op not in ("eq", "ne", "in", "nin"):
            raise QueryProblem(f"{leaf.where}: '{op}' does not apply to a programme or a status; use eq, ne or in.")
        values = _values(leaf.value, leaf.where) if op in ("in", "nin") else [_scalar(leaf.value, leaf.where)]
        if name in PROGRAMME_NAMES:
            condition = Q(programme__code__in=[str(v).strip().upper() for v in values])
        else:
            condition = Q(pk__in=[])
            for value in values:
                word = _STATUS_WORDS.get(str(value).strip().lower())
                if word is None:
                    raise QueryProblem(
                        f"{leaf.where}: '{value}' is not an enrolment status; use Active, Suspended, Deceased, "
                        "Graduated, Inactive, Reinstated (or their codes 1 to 7), Applied, Verified, Approved or Exited."
                    )
                condition |= word
        return ~condition if op in ("ne", "nin") else condition
    day = _date(_scalar(leaf.value, leaf.where), leaf.where, "enrolment_date")
    lookup = {"eq": "", "lt": "__lt", "le": "__lte", "gt": "__gt", "ge": "__gte"}.get(op)
    if lookup is None:
        raise QueryProblem(f"{leaf.where}: compare enrolment_date with eq, lt, le, gt or ge.")
    return Q(**{f"activated_at__date{lookup}": day})


def _enrolment_identifier_filter(identifier: Identifier, leaf: Leaf) -> Q:
    people = _identifier_filter(identifier, leaf, entity=MEMBER)
    if identifier.name == "household_number":
        return people
    people_ids = Member.objects.filter(people).values("pk")
    # The person's own enrolment, or their household's.
    return Q(member_id__in=people_ids) | Q(
        member__isnull=True, household_id__in=Member.objects.filter(pk__in=people_ids).values("household_id")
    )


def compile_enrolment_query(query_type: str, query, *, schema: Schema | None = None) -> CompiledEnrolmentQuery:
    """Read a DCI query over enrolments: programme, status, enrolment date and identifiers as filters,
    anything else as a condition on the enrolled household (see `compile_query`)."""
    schema = schema or current_schema()
    tree = read_query(query_type, query)
    leaves = _leaves(tree)
    if len(leaves) > MAX_CONDITIONS:
        raise QueryProblem(f"query: at most {MAX_CONDITIONS} conditions in one query.")
    special = PROGRAMME_NAMES | STATUS_NAMES | ENROLMENT_DATE_NAMES

    def name_of(leaf: Leaf) -> str:
        return leaf.attribute.strip().lower()

    top = tree.children if isinstance(tree, Combination) and tree.kind == "and" else [tree]
    compiled = CompiledEnrolmentQuery()
    rest = []
    resolved = {}
    for leaf in leaves:
        if name_of(leaf) not in special:
            resolved[id(leaf)] = resolve(leaf.attribute, entity=GROUP, schema=schema, where=leaf.where)
    for node in top:
        if isinstance(node, Leaf) and name_of(node) in special:
            compiled.filters.append(_enrolment_filter(node, name_of(node)))
        elif isinstance(node, Leaf) and isinstance(resolved[id(node)], Identifier):
            compiled.filters.append(_enrolment_identifier_filter(resolved[id(node)], node))
        else:
            for leaf in _leaves(node):
                if name_of(leaf) in special or isinstance(resolved[id(leaf)], Identifier):
                    raise QueryProblem(
                        f"{leaf.where}: a programme, a status, a date of enrolment or an identifier can only be "
                        "combined with other conditions by 'and'."
                    )
            rest.append(node)
    if rest:
        node = rest[0] if len(rest) == 1 else Combination("and", rest)
        compiled.household_rule = _render(node, resolved, entity=GROUP)
        try:
            compile_expression(compiled.household_rule, kind="rule", target="household", schema=schema)
        except RuleError as problem:
            raise QueryProblem(f"query: cannot be evaluated here ({problem}).")
    return compiled
