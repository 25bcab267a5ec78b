"""Argo's template tags and expressions, and its durations, as the controller reads them.

Re-implemented from argoproj/argo-workflows v4.1.2 (no code copied):

- A tag opens at `{{` and ends at the FIRST `}}` after it, also inside an expression
  (`util/template/template.go`, which hands the text to valyala/fasttemplate).
- A tag starting with `=` is an expr-lang expression (`util/template/kind.go`,
  `expression_template.go`) evaluated over the flat variable map expanded on dots
  (`util/expr/env/env.go`; `asInt` is expr's `int`). Any other tag is a variable that must
  resolve (`util/template/simple_template.go`), unless unresolved tags are allowed.
- Durations (`pkg/apis/workflow/v1alpha1` ParseStringToDuration): an integer is seconds,
  anything else a Go duration.

The expression evaluator covers the expr-lang subset fraudpipe's templates use; anything
outside it is a parse error, never accepted silently. `workflows.pods` evaluates
podSpecPatch with it; `tests/argo_controller.py` runs whole workflows with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any


class TemplateError(Exception):
    """What the controller refuses: a tag it cannot split, an expression it cannot evaluate."""


# ----------------------------------------------------------------------------------------
# Tags: util/template/template.go (fasttemplate), kind.go, simple_template.go
# ----------------------------------------------------------------------------------------

def split_tags(text: str) -> list[tuple[int, int, str]]:
    """(start, end, tag) of every `{{...}}`: a tag ends at the first `}}` after `{{`."""
    tags, position = [], 0
    while (start := text.find("{{", position)) >= 0:
        end = text.find("}}", start + 2)
        if end < 0:
            raise TemplateError(f"cannot find end tag '}}}}' in {text[start:start + 80]!r}")
        tags.append((start, end + 2, text[start + 2:end]))
        position = end + 2
    return tags


def expression_tags(text: str) -> list[str]:
    """The expression (without `=`) of every `{{=...}}` tag of `text`."""
    return [tag[1:] for _, _, tag in split_tags(text) if tag.startswith("=")]


def substitute(text: str, scope: dict[str, Any], *, strict: bool = True) -> str:
    """Replace every tag of `text` like the controller's ProcessArgs does.

    Args:
        text: a string field of a template.
        scope: flat variable map (`inputs.parameters.x`, `retries`, ...).
        strict: an unresolved simple tag is an error (else it is left as is, like
            `allowUnresolved`).
    """
    out, position = [], 0
    for start, end, tag in split_tags(text):
        out.append(text[position:start])
        if tag.startswith("="):
            value = evaluate(tag[1:], scope)
            out.append(value if isinstance(value, str) else to_json(value))
        else:
            name = tag.strip()
            if name in scope:
                out.append(str(scope[name]))
            elif strict:
                raise TemplateError(f"failed to resolve {{{{{name}}}}}")
            else:
                out.append(text[start:end])
        position = end
    out.append(text[position:])
    return "".join(out)


def to_json(value: Any) -> str:
    """Compact JSON, as expr prints a non-string value into a template."""
    return json.dumps(value, separators=(",", ":"))


def substitute_all(value: Any, scope: dict[str, Any], *, strict: bool = True) -> Any:
    """`substitute` on every string inside a template.

    The controller does it on the template's JSON text; JSON escaping adds no braces, so
    tags split the same way.
    """
    if isinstance(value, str):
        return substitute(value, scope, strict=strict)
    if isinstance(value, list):
        return [substitute_all(item, scope, strict=strict) for item in value]
    if isinstance(value, dict):
        return {key: substitute_all(item, scope, strict=strict) for key, item in value.items()}
    return value


# ----------------------------------------------------------------------------------------
# Expressions: the expr-lang subset the templates use (a Python evaluator, not expr itself)
# ----------------------------------------------------------------------------------------

TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>!?:()\[\].,])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)

#: Binary operators and their precedence (expr-lang parser/operator table).
BINARY = {"||": 10, "or": 10, "&&": 15, "and": 15, "==": 20, "!=": 20, "<": 20, ">": 20,
          "<=": 20, ">=": 20, "in": 20, "matches": 20, "contains": 20, "startsWith": 20,
          "endsWith": 20, "+": 30, "-": 30, "*": 60, "/": 60, "%": 60}


ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def tokenize(source: str) -> list[tuple[str, Any]]:
    """Tokens of an expression: (kind, value) pairs ending with ("end", None)."""
    tokens: list[tuple[str, Any]] = []
    position = 0
    while position < len(source):
        match = TOKEN.match(source, position)
        if match is None:
            raise TemplateError(f"failed to evaluate expression: unexpected {source[position:]!r}"
                                f" in {source!r}")
        kind = match.lastgroup
        text = match.group()
        position = match.end()
        if kind == "space":
            continue
        if kind == "string":
            tokens.append(("str", re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(1)),
                                         text[1:-1])))
        elif kind == "number":
            tokens.append(("num", float(text) if "." in text else int(text)))
        elif kind == "name" and text in ("true", "false", "nil"):
            tokens.append(("lit", {"true": True, "false": False, "nil": None}[text]))
        elif kind == "name" and text in BINARY:
            tokens.append(("op", text))
        elif kind == "name" and text == "not":
            tokens.append(("op", "!"))
        else:
            tokens.append(("op" if kind == "op" else "name", text))
    tokens.append(("end", None))
    return tokens


class Parser:
    """Pratt parser producing nested tuples; unknown syntax is an error, as in expr."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.position = 0

    def fail(self, why: str) -> TemplateError:
        """The error the controller reports for this expression."""
        return TemplateError(f"failed to evaluate expression: {why} in {self.source!r}")

    def peek(self) -> tuple[str, Any]:
        """The next token, not consumed."""
        return self.tokens[self.position]

    def take(self, value: Any = None) -> tuple[str, Any]:
        """Consume the next token, which must be `value` when one is given."""
        token = self.tokens[self.position]
        if value is not None and token[1] != value:
            raise self.fail(f"expected {value!r}, got {token[1]!r}")
        self.position += 1
        return token

    def parse(self) -> Any:
        """The whole expression as a tree; trailing tokens are an error."""
        tree = self.expression(0)
        if self.peek()[0] != "end":
            raise self.fail(f"unexpected {self.peek()[1]!r}")
        return tree

    def expression(self, power: int) -> Any:
        """Binary operators binding tighter than `power`, and `?:` at the top level."""
        left = self.unary()
        while True:
            kind, value = self.peek()
            if kind == "op" and value == "?" and power == 0:
                self.take()
                yes = self.expression(0)
                self.take(":")
                no = self.expression(0)
                left = ("?", left, yes, no)
                continue
            if kind != "op" or value not in BINARY or BINARY[value] <= power:
                return left
            self.take()
            left = ("bin", value, left, self.expression(BINARY[value]))

    def unary(self) -> Any:
        """`!x`, `-x` or a primary with its postfixes."""
        kind, value = self.peek()
        if kind == "op" and value in ("!", "-"):
            self.take()
            return ("unary", value, self.unary())
        return self.postfix(self.primary())

    def primary(self) -> Any:
        """A literal, a name, a parenthesised expression or a list."""
        kind, value = self.take()
        if kind in ("str", "num", "lit"):
            return ("lit", value)
        if kind == "name":
            return ("name", value)
        if value == "(":
            inner = self.expression(0)
            self.take(")")
            return inner
        if value == "[":
            items = []
            while self.peek()[1] != "]":
                items.append(self.expression(0))
                if self.peek()[1] == ",":
                    self.take()
            self.take("]")
            return ("list", items)
        raise self.fail(f"unexpected {value!r}")

    def postfix(self, node: Any) -> Any:
        """Member access `.x`, `[i]` and calls `f(...)` after `node`."""
        while True:
            value = self.peek()[1]
            if value == ".":
                self.take()
                kind, name = self.take()
                if kind != "name":
                    raise self.fail(f"expected a name after '.', got {name!r}")
                node = ("member", node, ("lit", name))
            elif value == "[":
                self.take()
                index = self.expression(0)
                self.take("]")
                node = ("member", node, index)
            elif value == "(" and node[0] == "name":
                self.take()
                arguments = []
                while self.peek()[1] != ")":
                    arguments.append(self.expression(0))
                    if self.peek()[1] == ",":
                        self.take()
                self.take(")")
                node = ("call", node[1], arguments)
            else:
                return node


def expand(scope: dict[str, Any]) -> dict[str, Any]:
    """Flat `a.b.c` keys as nested maps (util/expand, used by util/expr/env/env.go)."""
    nested: dict[str, Any] = {}
    for key, value in sorted(scope.items()):
        parts = key.split(".")
        target = nested
        for part in parts[:-1]:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        if not isinstance(target.get(parts[-1]), dict):
            target[parts[-1]] = value
    return nested


def as_int(value: Any) -> int:
    """Expr's `int` (env.go aliases it as `asInt`): numbers truncate, strings must parse."""
    if isinstance(value, bool):
        raise TemplateError(f"failed to evaluate expression: invalid operation: int({value!r})")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError as exc:
            raise TemplateError(f"failed to evaluate expression: {exc}") from exc
    raise TemplateError(f"failed to evaluate expression: invalid operation: int({value!r})")


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "asInt": as_int, "int": as_int, "string": lambda v: v if isinstance(v, str) else to_json(v),
    "len": len, "toJson": to_json,
}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _run(node: Any, env: dict[str, Any], source: str) -> Any:
    def fail(why: str) -> TemplateError:
        return TemplateError(f"failed to evaluate expression: {why} in {source!r}")

    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "name":
        if node[1] not in env:
            raise fail(f"unknown name {node[1]}")
        return env[node[1]]
    if kind == "list":
        return [_run(item, env, source) for item in node[1]]
    if kind == "member":
        base, key = _run(node[1], env, source), _run(node[2], env, source)
        if isinstance(base, dict):
            return base.get(key)
        if isinstance(base, list) and _number(key):
            return base[int(key)]
        raise fail(f"cannot fetch {key!r} from {type(base).__name__}")
    if kind == "call":
        if node[1] not in FUNCTIONS:
            raise fail(f"unknown function {node[1]}")
        return FUNCTIONS[node[1]](*[_run(a, env, source) for a in node[2]])
    if kind == "unary":
        value = _run(node[2], env, source)
        if node[1] == "!":
            if not isinstance(value, bool):
                raise fail(f"invalid operation: ! {value!r}")
            return not value
        if not _number(value):
            raise fail(f"invalid operation: - {value!r}")
        return -value
    if kind == "?":
        condition = _run(node[1], env, source)
        if not isinstance(condition, bool):
            raise fail("non-bool expression used as condition")
        return _run(node[2] if condition else node[3], env, source)
    operator, left = node[1], _run(node[2], env, source)
    if operator in ("&&", "and", "||", "or"):
        if not isinstance(left, bool):
            raise fail(f"invalid operation: {operator} on {left!r}")
        if (operator in ("&&", "and")) != left:
            return left  # short-circuit
        right = _run(node[3], env, source)
        if not isinstance(right, bool):
            raise fail(f"invalid operation: {operator} on {right!r}")
        return right
    right = _run(node[3], env, source)
    if operator == "==":
        return left == right and (type(left) is type(right) or _number(left) and _number(right))
    if operator == "!=":
        return not (left == right and (type(left) is type(right)
                                       or _number(left) and _number(right)))
    if operator == "in":
        if isinstance(right, list):
            return any(item == left and type(item) is type(left) for item in right)
        if isinstance(right, dict):
            return left in right
        raise fail(f"invalid operation: in on {type(right).__name__}")
    if operator in ("matches", "contains", "startsWith", "endsWith"):
        if not (isinstance(left, str) and isinstance(right, str)):
            raise fail(f"invalid operation: {operator} on {left!r}, {right!r}")
        if operator == "matches":
            return re.search(right, left) is not None
        return {"contains": right in left, "startsWith": left.startswith(right),
                "endsWith": left.endswith(right)}[operator]
    if operator in ("<", ">", "<=", ">="):
        if not ((_number(left) and _number(right))
                or (isinstance(left, str) and isinstance(right, str))):
            raise fail(f"invalid operation: {left!r} {operator} {right!r} (mismatched types)")
        return {"<": left < right, ">": left > right, "<=": left <= right,
                ">=": left >= right}[operator]
    if operator == "+" and isinstance(left, str) and isinstance(right, str):
        return left + right
    if not (_number(left) and _number(right)):
        raise fail(f"invalid operation: {left!r} {operator} {right!r}")
    if operator == "/":
        return left / right
    return {"+": left + right, "-": left - right, "*": left * right, "%": left % right}[operator]


def parse_expression(source: str) -> Any:
    """Parse an expression; a syntax error is the controller's "failed to evaluate"."""
    return Parser(source).parse()


def evaluate(source: str, scope: dict[str, Any]) -> Any:
    """Evaluate `source` against the flat variable map `scope`."""
    env = expand(scope)
    return _run(parse_expression(source), env, source)


# ----------------------------------------------------------------------------------------
# Durations (pkg/apis/workflow/v1alpha1 ParseStringToDuration): an integer is seconds,
# anything else a Go duration.
# ----------------------------------------------------------------------------------------

GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """Seconds of `30`, `30s`, `10m`, `1h30m`."""
    text = str(text).strip()
    if re.fullmatch(r"\d+", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise TemplateError(f"invalid duration {text!r}")
    return sum(float(n) * GO_UNITS[u] for n, u in parts)
