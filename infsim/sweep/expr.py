"""A tiny, safe expression language for sweep constraints and `infsim results --where`.

    deployment.tensor_parallel * deployment.replicas <= 8
    status == 'ok' and latency_s.ttft.p99 < 0.5 and hardware.gpu in ('h100-sxm', 'h200')

Expressions are parsed with `ast` and walked by a whitelist: constants, names and dotted
names (looked up as one dotted path, e.g. `latency_s.ttft.p99`), arithmetic (+ - * / // %
**), comparisons (chains allowed, `in`/`not in`), `and`/`or`/`not`, tuples and lists, and
the functions `abs`, `min`, `max`, `round`. There is no attribute access on values, no
calls beyond those, and no `eval`: YAML never runs code.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

from infsim.errors import InputError, did_you_mean

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
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
ALLOWED = (
    "constants, dotted names, + - * / // % **, comparisons (== != < <= > >= in, not in), "
    "and/or/not, tuples, abs/min/max/round"
)


class Expression:
    """A parsed expression; `evaluate(names)` looks dotted names up in `names`."""

    def __init__(self, text: str, where: str) -> None:
        self.text, self.where = text, where
        try:
            self._tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as err:
            raise InputError(f"{where}: {text!r} is not a valid expression ({err.msg})") from None
        self.names = sorted(_names(self._tree, self))

    def evaluate(self, names: Mapping[str, Any]) -> Any:
        missing = [n for n in self.names if n not in names]
        if missing:
            known = sorted(names)
            raise InputError(
                f"{self.where}: {self.text!r} uses unknown name {missing[0]!r}"
                f"{did_you_mean(missing[0], known)}; known: {', '.join(known)}"
            )
        try:
            return _eval(self._tree, names, self)
        except (TypeError, ZeroDivisionError, ValueError) as err:
            raise InputError(f"{self.where}: {self.text!r} cannot be evaluated: {err}") from None


def dotted_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = dotted_name(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _bad(expr: Expression, node: ast.AST) -> InputError:
    return InputError(
        f"{expr.where}: {expr.text!r}: {type(node).__name__} is not allowed; allowed: {ALLOWED}"
    )


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


def _eval(node: ast.AST, names: Mapping[str, Any], expr: Expression) -> Any:
    name = dotted_name(node)
    if name is not None:
        return names[name]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Call):
        return _FUNCTIONS[node.func.id](*(_eval(a, names, expr) for a in node.args))
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, names, expr), _eval(node.right, names, expr))
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
