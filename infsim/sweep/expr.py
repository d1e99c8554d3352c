"""A tiny, safe expression language for sweep constraints and `infsim results --where`.

    deployment.tensor_parallel * deployment.replicas <= 8
    status == 'ok' and latency_s.ttft.p99 < 0.5 and hardware.gpu in ('h100-sxm', 'h200')

Expressions are parsed with `ast` and walked by a whitelist: constants (numbers, strings,
booleans, None), names and dotted names (looked up as one dotted path, e.g.
`latency_s.ttft.p99`), arithmetic (+ - * / // % **), comparisons (chains allowed,
`in`/`not in`), `and`/`or`/`not`, tuples and lists, and the functions `abs`, `min`, `max`,
`round`. There is no attribute access on values, no calls beyond those, and no `eval`:
YAML never runs code.

Every expression is also bounded, so that no text can hang or exhaust memory: at most
`MAX_CHARS` characters, `MAX_NODES` syntax nodes nested `MAX_DEPTH` deep; integers of at
most `MAX_INT_BITS` bits (a `**` whose result would be larger is refused before it is
computed); strings and tuples of at most `MAX_ITEMS` items (`(1,) * 10**10` is refused
before it is built); `round` to at most `MAX_ROUND_DIGITS` digits; `%` on numbers only (no
string formatting). Each refusal is an `InputError` naming the expression and the limit.
"""

from __future__ import annotations

import ast
import math
import numbers
import operator
from collections.abc import Callable, Mapping
from typing import Any

from infsim.errors import InputError, did_you_mean, shown

MAX_CHARS = 2_000
MAX_NODES = 500
MAX_DEPTH = 100
MAX_INT_BITS = 4_096
MAX_ITEMS = 10_000
MAX_ROUND_DIGITS = 400

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
           ast.Mod: "%", ast.Pow: "**"}  # fmt: skip
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {"abs": abs, "min": min, "max": max, "round": round}
_CONSTANTS = (type(None), bool, int, float, str)
ALLOWED = (
    "constants, dotted names, + - * / // % **, comparisons (== != < <= > >= in, not in), "
    "and/or/not, tuples, abs/min/max/round"
)


class Expression:
    """A parsed expression; `evaluate(names)` looks dotted names up in `names`."""

    def __init__(self, text: str, where: str) -> None:
        self.where = where
        if not isinstance(text, str):
            raise InputError(f"{where}: expected an expression as text, got {type(text).__name__}")
        self.text = text
        if len(text) > MAX_CHARS:
            raise self.error(f"is {len(text):,} characters long; at most {MAX_CHARS:,} allowed")
        try:
            self._tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as err:
            raise self.error(f"is not a valid expression ({err.msg})") from None
        except (RecursionError, MemoryError, ValueError):
            raise self.error(f"is nested too deeply (at most {MAX_DEPTH} levels)") from None
        _check_shape(self._tree, self)
        self.names = sorted(_names(self._tree, self))

    def error(self, what: str) -> InputError:
        """`where: 'text' what` (`what` starting with ':' reads `where: 'text': what`)."""
        sep = "" if what.startswith(":") else " "
        return InputError(f"{self.where}: {shown(self.text)}{sep}{what}")

    def evaluate(self, names: Mapping[str, Any]) -> Any:
        missing = [n for n in self.names if n not in names]
        if missing:
            known = sorted(names)
            raise InputError(
                f"{self.where}: {shown(self.text)} uses unknown name {missing[0]!r}"
                f"{did_you_mean(missing[0], known)}; known: {', '.join(known)}"
            )
        try:
            return _eval(self._tree, names, self)
        except (TypeError, ZeroDivisionError, ValueError, OverflowError) as err:
            raise self.error(f"cannot be evaluated: {err}") from None
        except (RecursionError, MemoryError):  # not reached within the bounds; never a crash
            raise self.error("needs more memory or depth than an expression may use") from None


def dotted_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = dotted_name(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _bad(expr: Expression, node: ast.AST) -> InputError:
    return expr.error(f": {type(node).__name__} is not allowed; allowed: {ALLOWED}")


def _check_shape(tree: ast.AST, expr: Expression) -> None:
    """At most MAX_NODES expression nodes, MAX_DEPTH deep; constants of allowed types
    and sizes. Iterative, so that no shape can exhaust the stack here."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, ast.expr):
            continue
        count += 1
        if count > MAX_NODES:
            raise expr.error(f"has more than {MAX_NODES} terms; at most {MAX_NODES} allowed")
        if depth > MAX_DEPTH:
            raise expr.error(f"is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.Constant):
            _check_constant(node.value, expr)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _check_constant(value: Any, expr: Expression) -> None:
    if not isinstance(value, _CONSTANTS):
        raise expr.error(
            f": constant {type(value).__name__} is not allowed; allowed: numbers, strings, "
            "True, False, None"
        )
    _check_size(value, expr)


def _check_size(value: Any, expr: Expression) -> Any:
    """Refuse an integer over MAX_INT_BITS bits or a string/tuple over MAX_ITEMS items."""
    if _is_int(value) and int(value).bit_length() > MAX_INT_BITS:
        raise expr.error(
            f"makes an integer of {int(value).bit_length():,} bits; at most {MAX_INT_BITS:,} "
            "bits are allowed"
        )
    if isinstance(value, str | tuple | list) and len(value) > MAX_ITEMS:
        raise expr.error(
            f"makes a {type(value).__name__} of {len(value):,} items; at most {MAX_ITEMS:,} "
            "are allowed"
        )
    return value


def _names(node: ast.AST, expr: Expression) -> set[str]:
    name = dotted_name(node)
    if name is not None:
        return set() if name in ("True", "False", "None") else {name}
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS or node.keywords:
            raise _bad(expr, node)
        return set().union(*(_names(a, expr) for a in node.args))
    if isinstance(node, ast.Constant):
        return set()
    children = _children(node, expr)
    return set().union(*(_names(c, expr) for c in children)) if children else set()


def _children(node: ast.AST, expr: Expression) -> list[ast.AST]:
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub | ast.UAdd):
        return [node.operand]
    if isinstance(node, ast.BoolOp):
        return list(node.values)
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        return [node.left, *node.comparators]
    if isinstance(node, ast.Tuple | ast.List):
        return list(node.elts)
    raise _bad(expr, node)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral)  # bool and numpy integers included


def _check_binary(op: ast.operator, a: Any, b: Any, expr: Expression) -> None:
    """Refuse, before computing it, an operation whose result would break the bounds."""
    symbol = _SYMBOL[type(op)]
    if isinstance(op, ast.Pow) and _is_int(a) and _is_int(b) and b > 0 and abs(int(a)) > 1:
        bits = math.log2(abs(int(a))) * int(b)
        if bits > MAX_INT_BITS:
            raise expr.error(
                f"computes {_number(a)} ** {_number(b)}, an integer of about {bits:,.0f} bits; "
                f"at most {MAX_INT_BITS:,} bits are allowed"
            )
    elif isinstance(op, ast.Mult):
        for seq, n in ((a, b), (b, a)):
            if isinstance(seq, str | tuple | list) and _is_int(n) and len(seq) * int(n) > MAX_ITEMS:
                raise expr.error(
                    f"repeats a {type(seq).__name__} of length {len(seq):,} {_number(n)} times; "
                    f"at most {MAX_ITEMS:,} items are allowed"
                )
    elif not isinstance(op, ast.Add) and (isinstance(a, str) or isinstance(b, str)):
        raise expr.error(f"applies {symbol} to a string; {symbol} takes numbers")


def _number(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 20 else f"{text[:8]}…({len(text):,} digits)"


def _call(name: str, args: list[Any], expr: Expression) -> Any:
    big = name == "round" and len(args) == 2 and _is_int(args[1])
    if big and abs(int(args[1])) > MAX_ROUND_DIGITS:
        raise expr.error(f"rounds to {_number(args[1])} digits; at most {MAX_ROUND_DIGITS} allowed")
    return _check_size(_FUNCTIONS[name](*args), expr)


def _eval(node: ast.AST, names: Mapping[str, Any], expr: Expression) -> Any:
    name = dotted_name(node)
    if name is not None:
        return names[name]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Call):
        return _call(node.func.id, [_eval(a, names, expr) for a in node.args], expr)
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, names, expr), _eval(node.right, names, expr)
        _check_binary(node.op, left, right, expr)
        return _check_size(_BINARY[type(node.op)](left, right), expr)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, names, expr)
        if isinstance(node.op, ast.Not):
            return not value
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, names, expr) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, names, expr)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, names, expr)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Tuple | ast.List):
        return tuple(_eval(e, names, expr) for e in node.elts)
    raise _bad(expr, node)
