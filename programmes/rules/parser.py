"""From text to a small syntax tree of our own, with positions.

cel-python's parser (lark) reads the text; we keep only the constructs the
language supports and refuse the others here, with the line and column, so the
checker and the two evaluators work on a tree that is small and ours."""

from __future__ import annotations

import ast as python_ast
from dataclasses import dataclass, field

import lark
from celpy.celparser import CELParseError, CELParser

from .errors import Problem, RuleError

# Bounded cost: a rule is read by people and run over a whole country; nothing a
# ministry writes needs more than this, and the limits keep a pasted mistake
# (or a hostile text) from costing the database or the parser anything.
MAX_LENGTH = 2000
MAX_NESTING = 12  # brackets and parentheses inside each other
MAX_DEPTH = 40  # levels of the syntax tree once read


@dataclass(eq=False)
class Raw:
    kind: str  # lit, ident, dot, call, list, binary, unary, cond
    line: int
    column: int
    start: int
    end: int
    value: object = None  # literal value, identifier or field or function name, operator
    lit_type: str | None = None
    args: list[Raw] = field(default_factory=list)
    receiver: Raw | None = None  # the object of `x.f` or `x.f(...)`
    name_line: int = 0  # where the field or function name itself stands, for messages about it
    name_column: int = 0


_BINARY = {
    "relation_lt": "<",
    "relation_le": "<=",
    "relation_gt": ">",
    "relation_ge": ">=",
    "relation_eq": "==",
    "relation_ne": "!=",
    "relation_in": "in",
    "addition_add": "+",
    "addition_sub": "-",
    "multiplication_mul": "*",
    "multiplication_div": "/",
    "multiplication_mod": "%",
}


def _nesting_problem(text: str) -> Problem | None:
    depth = 0
    line, column = 1, 0
    quote = None
    for char in text:
        column += 1
        if char == "\n":
            line, column = line + 1, 0
        if quote:
            if char == quote:
                quote = None
            continue
        if char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
            if depth > MAX_NESTING:
                return Problem(f"too many brackets inside each other (at most {MAX_NESTING})", line, column)
        elif char in ")]}":
            depth -= 1
    return None


def parse(text: str) -> Raw:
    if not text or not text.strip():
        raise RuleError([Problem("the expression is empty", 1, 1)])
    if len(text) > MAX_LENGTH:
        raise RuleError([Problem(f"the expression is too long ({len(text)} characters, at most {MAX_LENGTH})", 1, 1)])
    problem = _nesting_problem(text)
    if problem:
        raise RuleError([problem])
    try:
        tree = CELParser().parse(text)
    except CELParseError as error:
        raise RuleError([_syntax_problem(text, error)]) from None
    except lark.exceptions.LarkError as error:  # lark's own, should cel-python let one through
        raise RuleError([Problem(f"syntax error: {error}", 1, 1)]) from None
    reader = _Reader(text)
    raw = reader.expr(tree)
    if reader.problems:
        raise RuleError(reader.problems)
    if _depth(raw) > MAX_DEPTH:
        raise RuleError([Problem(f"the expression is nested too deeply (at most {MAX_DEPTH} levels)", 1, 1)])
    return raw


def _depth(node: Raw) -> int:
    children = [*node.args, *([node.receiver] if node.receiver else [])]
    return 1 + max((_depth(child) for child in children), default=0)


def _syntax_problem(text: str, error: CELParseError) -> Problem:
    cause = error.__cause__ or error.__context__
    token = getattr(cause, "token", None)
    if token is not None and token.type == "$END":
        lines = text.splitlines() or [""]
        expected = getattr(cause, "expected", set()) or set()
        missing = "a closing bracket ')'" if expected == {"RPAR"} else "a value"
        return Problem(f"the expression ends too early ({missing} is missing)", len(lines), len(lines[-1]) + 1)
    line = error.line or 1
    column = error.column or 1
    lines = text.splitlines() or [""]
    source_line = lines[line - 1] if 0 < line <= len(lines) else ""
    near = source_line[column - 1 : column + 11].strip() if source_line else ""
    return Problem(f"syntax error near '{near}'", line, column)


class _Reader:
    """Walks the lark tree (one rule per precedence level) and keeps what matters."""

    def __init__(self, text: str):
        self.text = text
        self.problems: list[Problem] = []

    def refuse(self, tree, message: str) -> Raw:
        line, column = _position(tree)
        self.problems.append(Problem(message, line, column))
        return Raw("lit", line, column, 0, 0, value=False, lit_type="error")

    def node(self, kind: str, tree, **values) -> Raw:
        meta = tree.meta
        return Raw(kind, meta.line, meta.column, meta.start_pos, meta.end_pos, **values)

    def expr(self, tree: lark.Tree) -> Raw:
        name = tree.data
        children = tree.children
        if name == "expr":
            if len(children) == 1:
                return self.expr(children[0])
            return self.node("cond", tree, args=[self.expr(child) for child in children])
        if name in ("conditionalor", "conditionaland"):
            if len(children) == 1:
                return self.expr(children[0])
            op = "||" if name == "conditionalor" else "&&"
            return self.node("binary", tree, value=op, args=[self.expr(children[0]), self.expr(children[1])])
        if name in ("relation", "addition", "multiplication"):
            if len(children) == 1:
                return self.expr(children[0])
            operator_tree, right = children
            op = _BINARY[operator_tree.data]
            left = self.expr(operator_tree.children[0])
            return self.node("binary", tree, value=op, args=[left, self.expr(right)])
        if name == "unary":
            if len(children) == 1:
                return self.expr(children[0])
            op = "!" if children[0].data == "unary_not" else "-"
            return self.node("unary", tree, value=op, args=[self.expr(children[1])])
        if name in ("member", "primary"):
            return self.expr(children[0])
        if name == "member_dot":
            receiver, ident = children
            return self.node(
                "dot",
                tree,
                value=str(ident),
                receiver=self.expr(receiver),
                name_line=ident.line,
                name_column=ident.column,
            )
        if name == "member_dot_arg":
            receiver, ident = children[0], children[1]
            args = self.exprlist(children[2]) if len(children) > 2 else []
            return self.node(
                "call",
                tree,
                value=str(ident),
                receiver=self.expr(receiver),
                args=args,
                name_line=ident.line,
                name_column=ident.column,
            )
        if name == "ident_arg":
            ident = children[0]
            args = self.exprlist(children[1]) if len(children) > 1 else []
            return self.node("call", tree, value=str(ident), args=args)
        if name == "ident":
            return self.node("ident", tree, value=str(children[0]))
        if name == "paren_expr":
            return self.expr(children[0])
        if name == "list_lit":
            args = self.exprlist(children[0]) if children else []
            return self.node("list", tree, args=args)
        if name == "literal":
            return self.literal(tree, children[0])
        if name == "member_index":
            return self.refuse(tree, "indexing with [ ] is not supported; use a field name")
        if name in ("member_object", "map_lit"):
            return self.refuse(tree, "maps and objects { } are not supported")
        if name in ("dot_ident", "dot_ident_arg"):
            return self.refuse(tree, "a name cannot start with '.'")
        return self.refuse(tree, f"this construct ({name}) is not supported")

    def exprlist(self, tree: lark.Tree) -> list[Raw]:
        return [self.expr(child) for child in tree.children]

    def literal(self, tree: lark.Tree, token: lark.Token) -> Raw:
        kind = token.type
        text = str(token)
        if kind == "INT_LIT":
            return self.node("lit", tree, value=int(text, 0) if "x" not in text else int(text, 16), lit_type="int")
        if kind == "FLOAT_LIT":
            return self.node("lit", tree, value=float(text), lit_type="double")
        if kind == "BOOL_LIT":
            return self.node("lit", tree, value=text == "true", lit_type="bool")
        if kind == "STRING_LIT":
            if text[0] in "rR":
                return self.refuse(tree, 'raw strings (r"...") are not supported')
            try:
                value = python_ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return self.refuse(tree, f"cannot read the text {text}")
            return self.node("lit", tree, value=value, lit_type="string")
        if kind == "NULL_LIT":
            return self.refuse(tree, "null is not supported: a value that is not recorded is handled as unknown")
        if kind == "UINT_LIT":
            return self.refuse(tree, "unsigned numbers (with u) are not supported; write the number without u")
        if kind == "MLSTRING_LIT":
            return self.refuse(tree, 'texts over several lines (""" ... """) are not supported')
        return self.refuse(tree, f"{kind.lower().replace('_lit', '')} values are not supported")


def _position(tree) -> tuple[int, int]:
    meta = getattr(tree, "meta", None)
    if meta is not None and not getattr(meta, "empty", True):
        return meta.line, meta.column
    return 1, 1
