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
from collections.abc import Callable, Iterator, Sequence

from sinq.game import syntax

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
        return syntax.unparse(clone) + "\n"
    except (ValueError, RecursionError):
        return None


def _probe(node: ast.AST) -> ast.AST:
    """A copy of ``node`` that an operator may change without touching the tree: the node and its lists are new,
    its children shared (operators only reassign a node's fields or edit its lists, never a child)."""
    probe = copy.copy(node)
    for name, value in ast.iter_fields(node):
        if isinstance(value, list):
            setattr(probe, name, list(value))
    return probe


def _slots(tree: ast.AST) -> dict[int, tuple[ast.AST, str, int | None]]:
    """Where each node hangs: (parent, field, position in the field's list or None)."""
    slots: dict[int, tuple[ast.AST, str, int | None]] = {}
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if isinstance(value, list):
                for position, child in enumerate(value):
                    if isinstance(child, ast.AST):
                        slots[id(child)] = (parent, name, position)
            elif isinstance(value, ast.AST):
                slots[id(value)] = (parent, name, None)
    return slots


def _unparse_with(tree: ast.Module, slot: tuple[ast.AST, str, int | None], replacement: ast.AST,
                  original: ast.AST) -> str | None:
    """The module's source with one node swapped for ``replacement`` (the tree is restored afterwards): what
    ``_mutate_at`` gives, without copying the whole tree per site."""
    parent, name, position = slot

    def put(node: ast.AST) -> None:
        if position is None:
            setattr(parent, name, node)
        else:
            getattr(parent, name)[position] = node

    put(replacement)
    try:
        return syntax.unparse(tree) + "\n"
    except (ValueError, RecursionError):
        return None
    finally:
        put(original)


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
    for name, source, _ in mutant_sites(code, entry_point):
        yield name, source


Span = tuple[int, int]


def _header(statement: ast.stmt) -> Span:
    """Lines of a statement that run when it starts: all of a simple one, the header of a compound one."""
    end = statement.end_lineno or statement.lineno
    for field_name in ("body", "handlers", "orelse", "finalbody", "cases"):
        children = getattr(statement, field_name, None)
        if isinstance(children, list) and children and hasattr(children[0], "lineno"):
            end = min(end, max(statement.lineno, children[0].lineno - 1))
    return statement.lineno, end


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp,
           ast.DictComp, ast.GeneratorExp)


def _bound_names(root: ast.AST, skip: ast.AST | None = None) -> set[str]:
    """Names that ``root`` binds in its own scope (outside ``skip``)."""
    names: set[str] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if child is skip:
                continue
            if isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Store, ast.Del)):
                names.add(child.id)
            elif isinstance(child, ast.arg):
                names.add(child.arg)
            elif isinstance(child, (ast.Global, ast.Nonlocal)):
                names.update(child.names)
            elif isinstance(child, ast.alias):
                names.add((child.asname or child.name).split(".")[0])
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(child.name)
            if not isinstance(child, _SCOPES):
                stack.append(child)
    return names


def _site_spans(tree: ast.Module) -> dict[int, Span]:
    """For each node id inside a top-level function: the lines whose execution a mutation there needs.

    A site counts as reached when any line of its span runs (``sys.settrace`` line events, or a function's
    first line on its call event). The span is the header of the innermost enclosing statement (PEP 626: an
    executed statement always reports its first line), so it is never narrower than where the code runs. A
    default value of a top-level function is evaluated while the module loads and matters on every call: its
    span is the whole function, from its first decorator."""
    spans: dict[int, Span] = {}

    def visit(node: ast.AST, span: Span) -> None:
        for child in ast.iter_child_nodes(node):
            inner = _header(child) if isinstance(child, ast.stmt) else span
            spans[id(child)] = inner
            visit(child, inner)

    for top in tree.body:
        if not isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        first = min([top.lineno] + [d.lineno for d in top.decorator_list])
        whole = (first, top.end_lineno or top.lineno)
        for child in ast.iter_child_nodes(top):
            if isinstance(child, ast.stmt):
                spans[id(child)] = _header(child)
                visit(child, _header(child))
            else:
                spans[id(child)] = whole
                visit(child, whole)
    return spans


def _removal_span(node: ast.AST, spans: dict[int, Span], function: ast.AST | None) -> Span | None:
    """The span of the statement ``_remove_statement`` deletes from ``node``. Deleting the only binding of a
    name in a function makes that name global in the whole function (UnboundLocalError becomes NameError), so
    such a removal matters wherever the function runs: its span is then the whole top-level function's."""
    for field_name in ("body", "orelse"):
        body = getattr(node, field_name, None)
        if isinstance(body, list) and len(body) > 1:
            for statement in body:
                if isinstance(statement, (ast.Assign, ast.AugAssign, ast.Expr)) and not (
                        isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)):
                    if function is not None:
                        scope = _innermost_scope(function, statement)
                        if _bound_names(statement) - _bound_names(scope, skip=statement):
                            return spans.get(id(function))
                    return spans.get(id(statement), _header(statement))
    return None


def _innermost_scope(function: ast.AST, target: ast.AST) -> ast.AST:
    """The innermost function (or lambda, class, comprehension) of ``function`` that holds ``target``."""
    scope = function
    for node in ast.walk(function):
        if node is not function and isinstance(node, _SCOPES) and any(n is target for n in ast.walk(node)):
            scope = node
    return scope


def mutant_sites(code: str, entry_point: str,
                 order: Sequence[str] = tuple(DIFFICULTY_ORDER)) -> Iterator[tuple[str, str, Span | None]]:
    """``mutants`` with, for each, the span of original lines (1-based, inclusive) that an input must execute
    for the mutant to behave differently on it (None when unknown: treat as always reached); the operators in
    ``order`` (lazily: a caller that wants the first few pays for those)."""
    try:
        tree = syntax.parse(code)
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
    owner = {id(inner): node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
             for inner in ast.walk(node)}
    spans = _site_spans(tree)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            spans[id(node)] = (first, node.end_lineno or node.lineno)
    untouchable = docstrings | _load_time_only(tree)
    slots = _slots(tree)
    for name in order:
        change = OPERATORS[name]
        for index, node in enumerate(nodes):
            if id(node) in untouchable or id(node) not in inside:
                continue
            probe = _probe(node)
            if not change(probe):
                continue
            source = _unparse_with(tree, slots[id(node)], probe, node) if id(node) in slots else \
                _mutate_at(tree, index, change)
            if source is None:
                continue
            try:
                if ast.dump(syntax.parse(source)) == original:
                    continue
            except SyntaxError:
                continue
            if name == "remove_statement":
                span = _removal_span(node, spans, owner.get(id(node)))
            elif name == "negate_condition" and isinstance(node, (ast.If, ast.While)):
                span = spans.get(id(node.test), spans.get(id(node)))
            else:
                span = spans.get(id(node))
            yield name, source, span
