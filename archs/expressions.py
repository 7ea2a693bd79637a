"""`${...}` references to `model.vars`: whole-value references keep their type, and a small
safe arithmetic/logic language (numbers, names, + - * / // % **, comparisons, and/or/not, and the functions
int, round, min, max and make_divisible) is allowed."""
from __future__ import annotations

import ast
import operator
import re
from typing import Any

from dlx.core.errors import DlxError, did_you_mean

_REF = re.compile(r"\$\{([^}]*)\}")
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
MAX_INT = 2 ** 64  # no layer argument needs more; bigger results only come from runaway arithmetic
MAX_TEXT = 10_000  # characters a `'ab' * n` expression may produce
MAX_EXPRESSION = 1_000  # characters in one ${...}: real ones are a few dozen; Python's parser recurses per term


def make_divisible(value: float, divisor: int = 8) -> int:
    """The MobileNet/EfficientNet width rule (Keras's `_make_divisible`): `value` rounded to the nearest multiple of
    `divisor` (halves up), at least `divisor`, and one step up where rounding lost more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


_FUNCTIONS = {"int": int, "round": round, "min": min, "max": max, "make_divisible": make_divisible}  # pure, cheap
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}


def _parse(expression: str) -> ast.Expression:
    """The expression's syntax tree; SyntaxError for bad syntax, ValueError when it is too long to parse safely."""
    if len(expression) > MAX_EXPRESSION:
        raise ValueError(len(expression))
    try:
        return ast.parse(expression.strip(), mode="eval")
    except (RecursionError, MemoryError):  # nesting past the parser's limits
        raise ValueError(len(expression)) from None


def evaluate(expression: str, variables: dict, key: str) -> Any:
    try:
        tree = _parse(expression)
    except SyntaxError:
        raise DlxError(f"'${{{expression}}}' is not a valid expression.", key=key) from None
    except ValueError:
        raise DlxError(f"a ${{...}} expression of {len(expression):,} characters is too long; it may have at most "
                       f"{MAX_EXPRESSION:,}. Compute the value in model.vars instead.", key=key) from None

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in variables:
                raise DlxError(f"'${{{expression}}}' refers to '{node.id}', which model.vars does not define "
                               f"(defined: {', '.join(sorted(variables)) or 'none'}).{did_you_mean(node.id, variables)}",
                               key=key)
            return variables[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 64:
                raise DlxError(f"exponent too large in '${{{expression}}}'.", key=key)
            if isinstance(node.op, ast.Mult) and isinstance(left, str) != isinstance(right, str):
                text, times = (left, right) if isinstance(left, str) else (right, left)
                if isinstance(times, int) and len(text) * times > MAX_TEXT:
                    raise DlxError(f"'${{{expression}}}' would make a text longer than {MAX_TEXT} characters.",
                                   key=key)
            result = _BINARY[type(node.op)](left, right)
            if isinstance(result, int) and not isinstance(result, bool) and abs(result) > MAX_INT:
                raise DlxError(f"'${{{expression}}}' gives a number beyond ±2**64; no layer argument needs that.",
                               key=key)
            return result
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else (not value if isinstance(node.op, ast.Not) else value)
        if isinstance(node, ast.BoolOp):
            values = [walk(v) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
                and not node.keywords and node.args):
            return _FUNCTIONS[node.func.id](*(walk(arg) for arg in node.args))
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            return _COMPARE[type(node.ops[0])](walk(node.left), walk(node.comparators[0]))
        raise DlxError(f"'${{{expression}}}' uses something other than numbers, var names and arithmetic.", key=key)

    try:
        return walk(tree)
    except DlxError:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. ZeroDivisionError, TypeError between a str and an int
        raise DlxError(f"'${{{expression}}}' could not be evaluated: {exc}.", key=key) from None


def referenced_names(value: Any) -> set[str]:
    """Every name that a ${...} anywhere inside `value` (strings, lists, mappings) refers to, evaluated or not."""
    if isinstance(value, str):
        names: set[str] = set()
        for expression in _REF.findall(value):
            try:
                tree = _parse(expression)
            except (SyntaxError, ValueError):
                continue  # reported where it is evaluated
            names.update(node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id not in _FUNCTIONS)
        return names
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list):
        return set().union(*(referenced_names(v) for v in value))
    return set()


def substitute(value: Any, variables: dict, key: str) -> Any:
    """Replace ${...} references recursively; a string that is one whole reference keeps the value's type."""
    if isinstance(value, str):
        whole = _REF.fullmatch(value.strip())
        if whole:
            return evaluate(whole.group(1), variables, key)
        return _REF.sub(lambda m: str(evaluate(m.group(1), variables, key)), value)
    if isinstance(value, list):
        return [substitute(v, variables, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: substitute(v, variables, f"{key}.{k}") for k, v in value.items()}
    return value
