"""AST mutation operators in the manner of mutation-testing tools; each yields every mutant of one kind.

Where mutations go: only code that runs when the entry point (or a top-level helper) is *called*: the bodies of
top-level functions, including default values, which change what a call receives. Never mutated: argument, return
and variable annotations, decorators and docstrings. Annotations and decorators are evaluated while the module
loads, so a change there either does nothing to a call (a different annotation is not different behaviour) or
breaks the module (``List[str]`` → ``List[str + 1]`` raises before the function exists); neither is a variant, and
the second once passed for a divergence. Module-level statements are left alone for the same reason."""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable, Iterator

SWAPS: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.FloorDiv: ast.Mult, ast.Div: ast.Mult,
    ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd,
    ast.LShift: ast.RShift, ast.RShift: ast.LShift,
}
COMPARE_SWAPS: dict[type, type] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}


def _mutate_at(tree: ast.Module, index: int, change: Callable[[ast.AST], bool]) -> str | None:
    clone = copy.deepcopy(tree)
    node = list(ast.walk(clone))[index]
    if not change(node):
        return None
    ast.fix_missing_locations(clone)
    try:
        return ast.unparse(clone) + "\n"
    except (ValueError, RecursionError):
        return None


def _binop(node: ast.AST) -> bool:
    if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in SWAPS:
        node.op = SWAPS[type(node.op)]()
        return True
    return False


def _compare(node: ast.AST) -> bool:
    if isinstance(node, ast.Compare) and type(node.ops[0]) in COMPARE_SWAPS:
        node.ops[0] = COMPARE_SWAPS[type(node.ops[0])]()
        return True
    return False


def _boolop(node: ast.AST) -> bool:
    if isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        return True
    return False


def _negate_condition(node: ast.AST) -> bool:
    if isinstance(node, (ast.If, ast.While, ast.IfExp)):
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
        return True
    return False


def _constant(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            node.value = not value
        elif isinstance(value, int):
            node.value = value + 1
        elif isinstance(value, float):
            node.value = value + 0.5
        elif isinstance(value, str) and value:
            node.value = value[:-1]
        else:
            return False
        return True
    return False


def _range_off_by_one(node: ast.AST) -> bool:
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and node.args and len(node.args) <= 3):
        last = 0 if len(node.args) == 1 else 1
        node.args[last] = ast.BinOp(left=node.args[last], op=ast.Sub(), right=ast.Constant(1))
        return True
    return False


def _slice_off_by_one(node: ast.AST) -> bool:
    if isinstance(node, ast.Slice) and (node.lower is not None or node.upper is not None):
        if node.upper is not None:
            node.upper = ast.BinOp(left=node.upper, op=ast.Add(), right=ast.Constant(1))
        else:
            node.lower = ast.BinOp(left=node.lower, op=ast.Add(), right=ast.Constant(1))
        return True
    return False


def _index_off_by_one(node: ast.AST) -> bool:
    if isinstance(node, ast.Subscript) and not isinstance(node.slice, (ast.Slice, ast.Tuple, ast.Constant)):
        node.slice = ast.BinOp(left=node.slice, op=ast.Add(), right=ast.Constant(1))
        return True
    return False


def _swap_arguments(node: ast.AST) -> bool:
    if isinstance(node, ast.Call) and len(node.args) == 2 and not node.keywords:
        node.args = [node.args[1], node.args[0]]
        return True
    return False


def _remove_statement(node: ast.AST) -> bool:
    for field_name in ("body", "orelse"):
        body = getattr(node, field_name, None)
        if isinstance(body, list) and len(body) > 1:
            for position, statement in enumerate(body):
                if isinstance(statement, (ast.Assign, ast.AugAssign, ast.Expr)) and not (
                        isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)):
                    del body[position]
                    return True
    return False


def _return_none(node: ast.AST) -> bool:
    if isinstance(node, ast.Return) and node.value is not None and not (
            isinstance(node.value, ast.Constant) and node.value.value is None):
        node.value = ast.Constant(None)
        return True
    return False


def _break_continue(node: ast.AST) -> bool:
    if isinstance(node, ast.Break):
        node.__class__ = ast.Continue
        return True
    if isinstance(node, ast.Continue):
        node.__class__ = ast.Break
        return True
    return False


OPERATORS: dict[str, Callable[[ast.AST], bool]] = {
    "arithmetic": _binop,
    "comparison": _compare,
    "boolean": _boolop,
    "negate_condition": _negate_condition,
    "constant": _constant,
    "range_off_by_one": _range_off_by_one,
    "slice_off_by_one": _slice_off_by_one,
    "index_off_by_one": _index_off_by_one,
    "swap_arguments": _swap_arguments,
    "remove_statement": _remove_statement,
    "return_none": _return_none,
    "break_continue": _break_continue,
}
DIFFICULTY_ORDER = ["return_none", "remove_statement", "negate_condition", "boolean", "arithmetic", "swap_arguments",
                    "constant", "comparison", "index_off_by_one", "range_off_by_one", "slice_off_by_one",
                    "break_continue"]
"""Rough order from blunt to subtle; the generator starts near the target difficulty."""


def _load_time_only(tree: ast.AST) -> set[int]:
    """Ids of every node inside an annotation or a decorator, at any depth (nested functions and classes too)."""
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            roots += node.decorator_list
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            roots.append(node.returns)
        if isinstance(node, ast.arg) and node.annotation is not None:
            roots.append(node.annotation)
        if isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
    return {id(inner) for root in roots for inner in ast.walk(root)}


def mutants(code: str, entry_point: str) -> Iterator[tuple[str, str]]:
    """(operator, mutant source) for every site of every operator inside the entry point and its helpers,
    skipping docstrings and mutants that do not differ in their AST."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant) and isinstance(node.body[0].value.value, str)}
    nodes = list(ast.walk(tree))
    original = ast.dump(tree)
    inside = {id(inner) for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
              for inner in ast.walk(node) if inner is not node}
    untouchable = docstrings | _load_time_only(tree)
    for name in DIFFICULTY_ORDER:
        change = OPERATORS[name]
        for index, node in enumerate(nodes):
            if id(node) in untouchable or id(node) not in inside:
                continue
            probe = copy.deepcopy(node)
            if not change(probe):
                continue
            source = _mutate_at(tree, index, change)
            if source is None:
                continue
            try:
                if ast.dump(ast.parse(source)) == original:
                    continue
            except SyntaxError:
                continue
            yield name, source
