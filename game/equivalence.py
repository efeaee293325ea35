"""Semantics-preserving rewrites of a program: pure AST rules, no I/O (the equivalent half of the game, issue 15).

Each transformation is a small object with a name; its soundness conditions are written in its docstring and
checked before it fires: a site whose conditions fail is refused (counted, with the reason) and the next site is
tried. ``rewrite`` composes several per variant, deterministically for a seed; the result parses, differs from the
original's AST and keeps the entry point's name and signature.

The conditions hold for **every input the verdict engine accepts** (DESIGN.md §3: an equivalent label may not be
refuted by any input the engine takes), i.e. for any literal in any argument: int, float (incl. -0.0), complex, str,
bytes, bool, None, list, tuple, dict, set, nested any way, whatever types the seed inputs had. There is no input
contract: no default rule relies on the seeds' types. A rule that needs the type of a value proves it from the code
(``numeric_locals``, ``sequence_local``: locals every binding of which makes an int/float/bool, resp. a fresh
list/tuple/str/bytes) and refuses otherwise; a parameter can hold anything. ``arg_types`` (the types seen in the seed
inputs) serves only the test-only ``…_seed_typed`` rules, the unsound pre-issue-26 forms kept to measure what the
fix removes (``scripts/equivalence_attack.py --seed-typed``). A rewrite is never a proof: the agent fuzzes every
candidate against the original, on inputs of other types than the seeds' too, and drops it on any divergence
(agents/equivalents.py).

Out of reach on purpose: code that inspects its own frame (``locals()``, ``vars()``, ``eval``, ``exec``,
``globals()``, ``sys._getframe``): every rule that adds, removes or renames a local refuses in such a function.
So is a module whose functions may recurse (``recursive``: where ``RecursionError`` hits moves with any rewrite).
Messages of ``UnboundLocalError`` name the variable, so a rename changes them: ``rename_local`` refuses a local that
some path may read before binding it (``bound_before_read``), since an input of another type may take that path.
"""

from __future__ import annotations

import ast
import builtins
import copy
import keyword
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from sinq.game import syntax

BUILTINS = frozenset(dir(builtins))
DYNAMIC = frozenset({"locals", "vars", "eval", "exec", "globals", "dir", "_getframe", "currentframe", "f_locals",
                     "__import__", "breakpoint"})
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
Function = ast.FunctionDef | ast.AsyncFunctionDef


# --- Natural names (issue 27): what a person would call a new local, by the role it plays. ----------------------
VOCABULARY: dict[str, tuple[str, ...]] = {
    "index": ("i", "j", "k", "idx", "n", "m", "pos", "step", "ix"),
    "range": ("indices", "span", "positions", "bounds", "steps", "rng", "window"),
    "element": ("x", "y", "item", "elem", "value", "v", "e", "c", "w", "entry", "el", "val"),
    "accumulator": ("result", "out", "acc", "res", "values", "items", "collected", "parts", "ans", "output",
                    "found", "picked"),
    "value": ("tmp", "value", "val", "res", "result", "ans", "out", "cur", "temp", "answer", "ret", "output"),
    "condition": ("cond", "flag", "ok", "check", "valid", "test", "good", "holds"),
    "sequence": ("items", "seq", "values", "elements", "data", "entries", "source", "pool", "coll"),
    "flag": ("found", "done", "flag", "stop", "hit", "finished", "matched", "seen", "ready"),
    "result": ("result", "ans", "res", "answer", "out", "value", "ret", "outcome", "output"),
    "local": ("value", "cur", "prev", "nxt", "total", "count", "acc", "tmp", "item", "x", "y", "s", "val",
              "current", "temp", "data", "words", "res", "flag", "num", "part", "key", "word", "node", "curr"),
}
"""Ordinary identifiers per role; two of them composed when a module already uses them all. No digits, ever."""
SYNONYMS: dict[str, tuple[str, ...]] = {
    "result": ("res", "ans", "out", "answer", "output", "ret"), "res": ("result", "ans", "out", "ret"),
    "ans": ("result", "res", "answer", "out"), "answer": ("result", "ans", "res"), "out": ("result", "res", "output"),
    "ret": ("result", "res", "out"), "i": ("j", "k", "idx", "n", "ix"), "j": ("k", "i", "idx", "m"),
    "k": ("j", "i", "idx", "m"), "idx": ("i", "j", "pos", "ix", "index"), "index": ("idx", "i", "pos"),
    "n": ("m", "num", "size", "k", "length"), "count": ("cnt", "total", "num", "tally", "counter"),
    "cnt": ("count", "total", "num"), "total": ("acc", "count", "tally", "sum_total", "s"),
    "s": ("text", "string", "t", "word", "acc"), "x": ("y", "v", "val", "value", "item"),
    "item": ("elem", "x", "value", "entry", "el"), "num": ("n", "value", "x", "number"),
    "lst": ("items", "values", "seq", "arr"), "l": ("items", "values", "seq", "lst"), "arr": ("items", "lst", "seq"),
    "words": ("parts", "tokens", "pieces", "items"), "word": ("w", "token", "piece", "part"),
    "flag": ("ok", "found", "done", "cond"), "found": ("hit", "flag", "seen", "done"),
    "temp": ("tmp", "cur", "val", "t"), "tmp": ("temp", "cur", "val", "t"), "prev": ("last", "before", "old"),
    "cur": ("curr", "current", "now", "val"), "current": ("cur", "curr", "now"), "max_val": ("best", "top", "peak"),
    "min_val": ("least", "low", "smallest"), "new_list": ("out", "items", "result"), "ch": ("c", "char", "letter"),
    "c": ("ch", "char", "letter", "x"), "char": ("ch", "c", "letter"), "string": ("s", "text", "txt"),
}
"""Renaming a local: the old name's usual neighbours first (``result`` → ``res``/``ans``...)."""
ROLE_OF = {"v": "local", "rng": "range", "k": "index", "t": "element", "acc": "accumulator", "tmp": "value",
           "item": "element", "done": "flag", "ret": "result"}
"""The stems fresh names were drawn with before issue 27, as roles."""
CAMEL = re.compile(r"[a-z]+(?:[A-Z][a-z0-9]*)+")


def vocabulary(role: str, like: str | None = None) -> list[str]:
    """The candidate names for ``role`` (``like``'s synonyms and, for a one-letter name, the index letters first),
    each once."""
    words: list[str] = []
    if like is not None:
        words += SYNONYMS.get(like, ())
        if len(like) == 1:
            words += VOCABULARY["index"] if like in "ijkmn" else VOCABULARY["element"]
    words += VOCABULARY.get(role, VOCABULARY["local"])
    return list(dict.fromkeys(w for w in words if w != like))


class Refused(Exception):
    """A site's soundness conditions failed; ``args[0]`` is the reason."""


@dataclass
class Context:
    """What the rules know about the module: every identifier in it (fresh names avoid them all), the entry point
    and the types its parameters had in the seed inputs."""

    tree: ast.Module
    entry_point: str
    arg_types: Mapping[str, frozenset[str]]
    used: set[str] = field(default_factory=set)
    counter: int = 0
    made: set[str] = field(default_factory=set)
    """Temporaries this rewrite extracted: inlining one back would only undo the extraction."""
    _camel: bool | None = None

    def __post_init__(self) -> None:
        self.used = identifiers(self.tree) | BUILTINS

    def fresh(self, rng: random.Random, role: str, like: str | None = None) -> str:
        """A new name that reads like a person's (issue 27: a digit suffix would tell a rewrite apart from a
        program by its look): a word of ``role``'s vocabulary (``like``'s synonyms first when it renames a known
        name), in the module's naming style, used nowhere in the module and no builtin or keyword; when the
        vocabulary is spent, two of its words composed (``total_count``), never digits."""
        words = vocabulary(ROLE_OF.get(role, role), like)
        near = [w for w in words if like is not None and w in SYNONYMS.get(like, ())]
        rest = [w for w in words if w not in near]
        rng.shuffle(near)
        rng.shuffle(rest)
        words = near + rest
        for name in words:
            if self._free(name):
                return self._take(name)
        heads = words + sorted(set(VOCABULARY["local"]) - set(words))
        rng.shuffle(heads)
        for first in heads:
            for second in words:
                name = self._compose(first, second)
                if first != second and self._free(name):
                    return self._take(name)
        for depth in range(3, 8):  # unreachable in practice: three words and more
            name = self._compose(*(rng.choice(heads) for _ in range(depth)))
            if self._free(name):
                return self._take(name)
        raise Refused("no_fresh_name")

    def _free(self, name: str) -> bool:
        return (name not in self.used and name.isidentifier() and not keyword.iskeyword(name)
                and not keyword.issoftkeyword(name) and not name.startswith("__"))

    def _take(self, name: str) -> str:
        self.counter += 1
        self.used.add(name)
        return name

    def _compose(self, *parts: str) -> str:
        if self.camel:
            return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])
        return "_".join(parts)

    @property
    def camel(self) -> bool:
        """Whether the module names its variables ``likeThis`` more often than ``like_this``."""
        if self._camel is None:
            names = identifiers(self.tree) - BUILTINS
            camel = sum(1 for n in names if CAMEL.fullmatch(n))
            snake = sum(1 for n in names if "_" in n.strip("_") and n == n.lower())
            self._camel = camel > snake
        return self._camel

    def functions(self) -> list[Function]:
        """Top-level functions: where every rule works (module-level code and class bodies are left alone)."""
        return [n for n in self.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]

    def types_of(self, function: Function, name: str) -> frozenset[str] | None:
        """The seed types of ``name`` when it is a parameter of the entry point never rebound in it."""
        if function.name != self.entry_point or name not in self.arg_types or name not in params(function):
            return None
        if name in stored(function):
            return None
        return self.arg_types[name]


def identifiers(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.arg):
            found.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.alias):
            found.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            found.update(node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            found.add(node.name)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            found.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            found.add(node.rest)
    return found


def params(function: Function | ast.Lambda) -> set[str]:
    a = function.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
    names += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
    return set(names)


def stored(node: ast.AST) -> set[str]:
    """Names bound or deleted anywhere under ``node`` (any scope)."""
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    names |= {n.name for n in ast.walk(node) if isinstance(n, ast.ExceptHandler) and n.name}
    names |= {(a.asname or a.name).split(".")[0] for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))
              for a in n.names}
    names |= {n.name for n in ast.walk(node) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    for n in ast.walk(node):
        if isinstance(n, (ast.Global, ast.Nonlocal)):
            names.update(n.names)
    return names


def dynamic(node: ast.AST) -> bool:
    """Whether the code may look at its own frame's names (then no local may be added, removed or renamed)."""
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and n.id in DYNAMIC:
            return True
        if isinstance(n, ast.Attribute) and n.attr in DYNAMIC:
            return True
    return False


def names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def has(node: ast.AST, *types: type) -> bool:
    return any(isinstance(n, types) for n in ast.walk(node))


def module_binds(tree: ast.Module, name: str) -> bool:
    """Whether the module rebinds a builtin's name anywhere (then ``range``, ``len``... may not be the builtin)."""
    return name in stored(tree) or any(isinstance(n, ast.arg) and n.arg == name for n in ast.walk(tree))


def blocks(root: ast.AST) -> Iterator[list[ast.stmt]]:
    """Every statement list under ``root`` without entering nested functions or classes."""
    stack = [root]
    while stack:
        node = stack.pop()
        for name in ("body", "orelse", "finalbody"):
            value = getattr(node, name, None)
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                yield value
                stack += [s for s in value if not isinstance(s, SCOPES)]
        for handler in getattr(node, "handlers", []) or []:
            yield handler.body
            stack += [s for s in handler.body if not isinstance(s, SCOPES)]
        for case in getattr(node, "cases", []) or []:
            yield case.body
            stack += [s for s in case.body if not isinstance(s, SCOPES)]


def scope_nodes(function: Function) -> Iterator[ast.AST]:
    """The function's nodes, not entering nested functions, lambdas or classes."""
    stack: list[ast.AST] = [s for s in function.body if not isinstance(s, SCOPES)]
    while stack:
        node = stack.pop()
        yield node
        stack += [c for c in ast.iter_child_nodes(node) if not isinstance(c, SCOPES)]


def expression_scopes(ctx: Context) -> Iterator[tuple[Function | ast.Lambda, ast.AST]]:
    """(scope, node) for every node of the top-level functions' bodies and of the functions and lambdas nested in
    them (not inside a class): where a rule that rewrites one expression in place, adding or removing no name,
    may fire. ``scope`` is the innermost function or lambda, whose locals are the ones the node sees."""
    for function in ctx.functions():
        pending: list[Function | ast.Lambda] = [function]
        while pending:
            scope = pending.pop()
            body = [scope.body] if isinstance(scope, ast.Lambda) else scope.body
            stack: list[ast.AST] = list(body)
            while stack:
                node = stack.pop()
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    pending.append(node)
                    continue
                if isinstance(node, ast.ClassDef):
                    continue
                yield scope, node
                stack += list(ast.iter_child_nodes(node))


def _not(expr: ast.expr) -> ast.expr:
    return ast.UnaryOp(op=ast.Not(), operand=expr)


def _name(name: str, store: bool = False) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Store() if store else ast.Load())


# --- What the code itself proves (issue 26): a parameter may hold any literal, so types come from bindings. -------

NUMERIC_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.BitAnd, ast.BitOr, ast.BitXor,
               ast.LShift, ast.RShift)
"""Binary operators that map two int/float/bool operands to an int/float/bool (or raise): not ``**``, which gives a
complex for a negative float base."""
NUMERIC_CALLS = frozenset({"len", "int", "float", "ord"})
"""Builtins that return an exact int/float (or raise) whatever their arguments."""
NUMERIC_OF_NUMERIC = frozenset({"abs", "round", "min", "max"})
"""Builtins that return an int/float/bool when every positional argument is one."""
SEQUENCE_CALLS = frozenset({"list", "tuple", "sorted"})
"""Builtins that return a fresh exact list/tuple (or raise) whatever their arguments."""


def own_scope_mentions(function: Function, name: str) -> bool:
    """Whether a nested function, lambda or class in ``function`` mentions ``name`` (it could see or rebind it)."""
    return any(node is not function and isinstance(node, SCOPES) and name in identifiers(node)
               for node in ast.walk(function))


def bindings(function: Function, name: str) -> list[ast.AST] | None:
    """The nodes that bind ``name`` in ``function``'s own scope (``Assign``, ``AugAssign``, ``AnnAssign`` with a
    value, ``For``, comprehension generators: a comprehension's target counts too, so its variable is held to the
    same proof), or None when it is bound any other way or may be bound from outside: a parameter (any literal),
    global/nonlocal, import, ``except``/``with``/``match`` capture, walrus, ``del``, a nested def, a nested scope
    that mentions it, or a target that unpacks into it (a tuple target other than ``enumerate``'s pair)."""
    if name in params(function) or own_scope_mentions(function, name):
        return None
    for node in ast.walk(function):
        if isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names:
            return None
        if isinstance(node, ast.ExceptHandler) and node.name == name:
            return None
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any((a.asname or a.name).split(".")[0] == name
                                                                  for a in node.names):
            return None
        if isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name == name:
            return None
        if isinstance(node, ast.MatchMapping) and node.rest == name:
            return None
        if isinstance(node, ast.NamedExpr) and node.target.id == name:
            return None
        if node is not function and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                and node.name == name:
            return None
    found: list[ast.AST] = []
    accounted: set[int] = set()
    for node in [*scope_nodes(function)]:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.For, ast.comprehension)) or (isinstance(node, ast.AnnAssign)
                                                                               and node.value is not None):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name) and target.id == name:
                found.append(node)
                accounted.add(id(target))
            elif isinstance(target, ast.Tuple) and isinstance(node, (ast.For, ast.comprehension)) \
                    and _enumerate_pair(node) and isinstance(target.elts[0], ast.Name) \
                    and target.elts[0].id == name and name not in names_in(target.elts[1]):
                found.append(node)
                accounted.add(id(target.elts[0]))
    for node in scope_nodes(function):
        if isinstance(node, ast.Name) and node.id == name and not isinstance(node.ctx, ast.Load) \
                and id(node) not in accounted:
            return None
    return found


def _builtin_call(node: ast.AST, names: frozenset[str] | set[str], tree: ast.Module) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names
            and not module_binds(tree, node.func.id) and not any(isinstance(a, ast.Starred) for a in node.args))


def _enumerate_pair(node: ast.For | ast.comprehension) -> bool:
    """``for i, v in enumerate(x)`` (no ``start``, or an int literal one): ``i`` is an exact int."""
    target, it = node.target, node.iter
    return (isinstance(target, ast.Tuple) and len(target.elts) == 2
            and isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "enumerate"
            and len(it.args) in (1, 2) and not it.keywords and not isinstance(it.args[0], ast.Starred)
            and (len(it.args) == 1 or _int_constant(it.args[1]) is not None))


def _literal_parameter(function: Function, tree: ast.Module, entry_point: str, expr: ast.expr) -> bool:
    """Whether ``expr`` is a parameter of the entry point that can only hold a literal: never rebound, its default
    (if any) a literal, and the entry point never called or referenced in the module (so only the harness calls
    it, with literal data)."""
    if not (isinstance(expr, ast.Name) and function.name == entry_point and expr.id in params(function)):
        return False
    if expr.id in stored(function) or own_scope_mentions(function, expr.id):
        return False
    if any(isinstance(n, ast.Name) and n.id == entry_point for n in ast.walk(tree)):
        return False
    a = function.args
    positional = a.posonlyargs + a.args
    defaults = dict(zip([x.arg for x in positional[len(positional) - len(a.defaults):]], a.defaults, strict=True))
    defaults |= {x.arg: d for x, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None}
    if expr.id in defaults:
        try:
            syntax.literal_eval(defaults[expr.id])
        except (ValueError, TypeError, SyntaxError, RecursionError):
            return False
    return True


def numeric_expr(ctx: Context, function: Function, e: ast.AST, known: set[str]) -> bool:
    """Whether ``e`` gives an exact int, float or bool (or raises) whatever the inputs, ``known`` being the locals
    proved numeric (``numeric_locals``)."""
    tree = ctx.tree

    def numeric(e: ast.AST, known: set[str]) -> bool:
        return numeric_expr(ctx, function, e, known)

    if isinstance(e, ast.Constant):
        return type(e.value) in (int, float, bool)
    if isinstance(e, ast.Name):
        return e.id in known
    if isinstance(e, ast.UnaryOp):
        return isinstance(e.op, ast.Not) or numeric(e.operand, known)
    if isinstance(e, ast.BinOp):
        if not isinstance(e.op, NUMERIC_OPS) or not numeric(e.left, known):
            return False
        return numeric(e.right, known) or (isinstance(e.op, (ast.Mod, ast.FloorDiv))
                                           and _literal_parameter(function, tree, ctx.entry_point, e.right))
    if isinstance(e, ast.IfExp):
        return numeric(e.body, known) and numeric(e.orelse, known)
    if _builtin_call(e, NUMERIC_CALLS, tree):
        return True
    if _builtin_call(e, NUMERIC_OF_NUMERIC, tree):
        assert isinstance(e, ast.Call)
        return bool(e.args) and not e.keywords and all(numeric(a, known) for a in e.args) \
            and (e.func.id != "round" or len(e.args) <= 2)  # type: ignore[attr-defined]
    return False


def numeric_locals(ctx: Context, function: Function) -> set[str]:
    """Locals of ``function`` that hold an exact int, float or bool whenever they are bound, whatever the inputs
    (the greatest set closed under: every binding is a numeric literal, ``len``/``int``/``float``/``ord`` of
    anything, ``abs``/``round``/``min``/``max`` of numerics, ``not`` of anything, unary or binary arithmetic of
    numerics (not ``**``), ``numeric % p`` or ``numeric // p`` with ``p`` a literal-only parameter (for every
    literal type that is numeric or raises), an ``if``-expression of numerics, a ``range`` loop target or
    ``enumerate``'s counter). Induction over the run: every value stored was made by such an expression from
    values already numeric."""
    return _closed_locals(ctx, function, lambda e, known: numeric_expr(ctx, function, e, known), NUMERIC_OPS)


def _closed_locals(ctx: Context, function: Function, proven: Callable[[ast.AST, set[str]], bool],
                   ops: tuple[type, ...]) -> set[str]:
    """The greatest set of locals every binding of which ``proven`` accepts (given the set), an augmented one
    with an operator of ``ops``, a ``range`` loop target or ``enumerate``'s counter (exact ints)."""
    tree = ctx.tree

    def binds(node: ast.AST, known: set[str]) -> bool:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            return node.value is not None and proven(node.value, known)
        if isinstance(node, ast.AugAssign):
            return isinstance(node.op, ops) and proven(node.value, known)
        if isinstance(node, (ast.For, ast.comprehension)):
            if isinstance(node.target, ast.Name):
                return _range_call(node.iter, ctx)
            return _enumerate_pair(node) and not module_binds(tree, "enumerate")
        return False

    names = {n.id for n in scope_nodes(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    found = {name: bindings(function, name) for name in sorted(names)}
    known = {name for name, nodes in found.items() if nodes}
    changed = True
    while changed:
        changed = False
        for name in sorted(known):
            if not all(binds(node, known) for node in found[name] or []):
                known.discard(name)
                changed = True
    return known


INT_OPS = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod, ast.BitAnd, ast.BitOr, ast.BitXor, ast.LShift,
           ast.RShift)
"""Binary operators that map two int/bool operands to an int (or raise ``ZeroDivisionError``/``ValueError``): not
``/`` (a float) nor ``**`` (a float for a negative exponent)."""
INT_CALLS = frozenset({"len", "int", "ord"})
"""Builtins that return an exact int (or raise) whatever their arguments."""
SEQUENCE_INT_METHODS = frozenset({"count", "index", "find", "rfind", "rindex"})
"""Methods that return an exact int (or raise) on a str/bytes literal or a ``sequence_local`` (a list, tuple, str
or bytes: ``find``/``rfind`` exist on str and bytes only, elsewhere ``AttributeError``)."""
INT_OF_INT = frozenset({"abs", "min", "max"})
"""Builtins that return an int or bool when every positional argument is one (``min``/``max`` return one of them;
with one argument they iterate it, and an int or bool raises)."""


def int_expr(ctx: Context, function: Function | ast.Lambda, e: ast.AST, known: set[str]) -> bool:
    """Whether ``e`` gives an int or bool (or raises) whatever the inputs, never a float, ``known`` being the
    locals proved so (``int_locals``): an int literal, ``len``/``int``/``ord`` of anything, ``not`` of anything,
    ``-``/``+``/``~`` and ``+ - * // % & | ^ << >>`` of such, ``abs``/``min``/``max`` of such, an ``if``-expression
    of such, ``.count``/``.index``/``.find``/``.rfind``/``.rindex`` of a str/bytes literal or of a local proved a
    list, tuple, str or bytes (``sequence_local``)."""
    def proven(e: ast.AST) -> bool:
        return int_expr(ctx, function, e, known)

    if isinstance(e, ast.Constant):
        return type(e.value) in (int, bool)
    if isinstance(e, ast.Name):
        return e.id in known
    if isinstance(e, ast.UnaryOp):
        return isinstance(e.op, ast.Not) or proven(e.operand)
    if isinstance(e, ast.BinOp):
        return isinstance(e.op, INT_OPS) and proven(e.left) and proven(e.right)
    if isinstance(e, ast.IfExp):
        return proven(e.body) and proven(e.orelse)
    if _builtin_call(e, INT_CALLS, ctx.tree):
        return True
    if _builtin_call(e, INT_OF_INT, ctx.tree):
        assert isinstance(e, ast.Call)
        return bool(e.args) and not e.keywords and all(proven(a) for a in e.args)
    if isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and e.func.attr in SEQUENCE_INT_METHODS:
        owner = e.func.value
        if isinstance(owner, ast.Constant):
            return type(owner.value) in (str, bytes)
        return isinstance(owner, ast.Name) and not isinstance(function, ast.Lambda) \
            and sequence_local(ctx, function, owner.id) is not None
    return False


def int_locals(ctx: Context, function: Function | ast.Lambda) -> set[str]:
    """Locals of ``function`` that hold an int or bool (never a float) whenever they are bound, whatever the
    inputs: every binding is ``int_expr`` of such, an augmented assignment with an int operator (``count += 1``),
    a ``range`` loop target or ``enumerate``'s counter. Induction over the run, as ``numeric_locals``. A lambda
    has none (its names are parameters)."""
    if isinstance(function, ast.Lambda):
        return set()
    return _closed_locals(ctx, function, lambda e, known: int_expr(ctx, function, e, known), INT_OPS)


def sequence_local(ctx: Context, function: Function, name: str) -> list[ast.AST] | None:
    """The bindings of ``name`` when every one makes a fresh exact list, tuple, str or bytes whatever the inputs
    (a list/tuple/str/bytes literal, a list comprehension, an f-string, ``list``/``tuple``/``sorted`` of anything,
    ``'…'.join(...)``), else None: only then does ``x[i]`` mean the i-th item for every accepted input."""
    found = bindings(function, name)
    if not found:
        return None

    def sequence(e: ast.AST | None) -> bool:
        if isinstance(e, (ast.List, ast.ListComp, ast.Tuple, ast.JoinedStr)):
            return True
        if isinstance(e, ast.Constant):
            return type(e.value) in (str, bytes)
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and e.func.attr == "join" \
                and isinstance(e.func.value, ast.Constant) and type(e.func.value.value) is str:
            return True
        return _builtin_call(e, SEQUENCE_CALLS, ctx.tree) if e is not None else False

    if all(isinstance(n, (ast.Assign, ast.AnnAssign)) and sequence(n.value) for n in found):
        return found
    return None


def bound_before_read(function: Function, name: str) -> bool:
    """Whether every read of the local ``name`` in ``function`` happens where it is certainly bound, on every path
    (a conservative definite-assignment pass: after a loop, ``with`` or ``match`` only what held before it counts,
    an ``except`` body starts from what held before the ``try``; a ``del`` or walrus of the name answers False).
    Else some input may read it unbound, and the ``UnboundLocalError`` message names it."""
    if any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Del) for n in ast.walk(function)) \
            or any(isinstance(n, ast.NamedExpr) and n.target.id == name for n in ast.walk(function)):
        return False

    def reads(node: ast.AST | None) -> bool:
        return node is not None and any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
                                        for n in ast.walk(node))

    def binds(target: ast.AST) -> bool:
        return any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store)
                   for n in ast.walk(target))

    class Unbound(Exception):
        pass

    def check(node: ast.AST | None, bound: bool) -> None:
        if not bound and reads(node):
            raise Unbound

    def flow(statements: list[ast.stmt], bound: bool) -> tuple[bool, bool]:
        """(bound after, control never gets past the end)."""
        for s in statements:
            if isinstance(s, (ast.Return, ast.Raise)):
                check(s, bound)
                return True, True
            if isinstance(s, (ast.Break, ast.Continue)):
                return True, True
            if isinstance(s, ast.Assign):
                check(s.value, bound)
                for target in s.targets:
                    if not isinstance(target, ast.Name):
                        check(target, bound)
                bound = bound or any(binds(t) for t in s.targets)
            elif isinstance(s, ast.AugAssign):
                check(s, bound)
                if not bound and binds(s.target):
                    raise Unbound
            elif isinstance(s, ast.AnnAssign):
                check(s.value, bound)
                check(s.annotation, bound)
                bound = bound or (s.value is not None and binds(s.target))
            elif isinstance(s, ast.If):
                check(s.test, bound)
                body, ends = flow(s.body, bound)
                other, other_ends = flow(s.orelse, bound)
                if ends and other_ends:
                    return True, True
                bound = other if ends else body if other_ends else body and other
            elif isinstance(s, (ast.For, ast.AsyncFor)):
                check(s.iter, bound)
                flow(s.body, bound or binds(s.target))
                flow(s.orelse, bound)
            elif isinstance(s, ast.While):
                check(s.test, bound)
                flow(s.body, bound)
                flow(s.orelse, bound)
            elif isinstance(s, (ast.With, ast.AsyncWith)):
                for item in s.items:
                    check(item.context_expr, bound)
                flow(s.body, bound or any(binds(i.optional_vars) for i in s.items if i.optional_vars))
            elif isinstance(s, (ast.Try, *((ast.TryStar,) if hasattr(ast, "TryStar") else ()))):
                after, ends = flow(s.body, bound)
                if not ends:
                    after, ends = flow(s.orelse, after)
                reach = [] if ends else [after]
                for handler in s.handlers:  # an exception may come from anywhere in the body: start from before
                    check(handler.type, bound)
                    handled, handler_ends = flow(handler.body, bound)
                    reach += [] if handler_ends else [handled]
                final, final_ends = flow(s.finalbody, bound)
                if final_ends or not reach:
                    return True, True
                bound = all(reach) or final
            elif isinstance(s, ast.Match):
                check(s.subject, bound)
                for case in s.cases:
                    check(case.guard, bound)
                    flow(case.body, bound)
            else:
                check(s, bound)
        return bound, False

    try:
        flow(function.body, False)
    except Unbound:
        return False
    return True


Site = tuple[Function, object]


class Transformation:
    """One rule: ``sites`` lists where it might fire (syntax only), ``apply`` checks the conditions at one site
    (raising ``Refused`` with the reason) and then changes the tree in place."""

    name = ""
    unsound = False
    """Deliberately wrong rules exist for the fuzz filter's tests; they are never in the default set."""

    def sites(self, ctx: Context) -> list[Site]:
        raise NotImplementedError

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        raise NotImplementedError


class RenameLocal(Transformation):
    """Rename one local variable of a top-level function to a fresh name, everywhere in that function.

    Sound when: the name is bound in the function by plain assignment/loop/with targets only (not a parameter:
    callers pass keyword arguments by name; not declared ``global``/``nonlocal``; not an import, ``except ... as``,
    nested def/class or match capture); no nested function, lambda or class mentions it (closures and class bodies
    see names by their spelling); no comprehension binds the same name (that one is another variable); the new
    name appears nowhere in the module and is no builtin (so it can capture nothing and shadow nothing); the
    function does not inspect its frame; every read of it happens where it is certainly bound, on every path
    (``bound_before_read``: else an input of another type than the seeds' may reach a read of it unbound, and the
    ``UnboundLocalError`` message names the variable). A local is local throughout its function, so every reading
    of it reads the renamed variable. Independent of the inputs' types."""

    name = "rename_local"

    def sites(self, ctx: Context) -> list[Site]:
        out: list[Site] = []
        for function in ctx.functions():
            names = sorted({n.id for n in scope_nodes(function) if isinstance(n, ast.Name)
                            and isinstance(n.ctx, ast.Store)})
            out += [(function, name) for name in names]
        return out

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        function, old = site
        assert isinstance(old, str)
        new = ctx.fresh(rng, "local", like=old)
        reason = rename_refusal(function, old, new, ctx.used - {new})
        if reason:
            raise Refused(reason)
        for node in ast.walk(function):
            if isinstance(node, ast.Name) and node.id == old:
                node.id = new
        if old in ctx.made:
            ctx.made.add(new)


def rename_refusal(function: Function, old: str, new: str, taken: set[str]) -> str | None:
    """Why renaming ``old`` to ``new`` in ``function`` is not sound (None: it is). ``taken``: names in use."""
    if new in taken or new in BUILTINS or new in identifiers(function):
        return "new_name_in_scope"
    if not new.isidentifier():
        return "new_name_not_identifier"
    if old in params(function):
        return "parameter"
    if dynamic(function):
        return "frame_introspection"
    for node in ast.walk(function):
        if isinstance(node, (ast.Global, ast.Nonlocal)) and old in node.names:
            return "declared_global"
        if isinstance(node, ast.ExceptHandler) and node.name == old:
            return "other_binding"
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any((a.asname or a.name) == old for a in node.names):
            return "other_binding"
        if isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name == old:
            return "other_binding"
    for node in ast.walk(function):
        if node is not function and isinstance(node, SCOPES):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == old:
                return "other_binding"
            if old in identifiers(node):
                return "used_by_nested_scope"
        if isinstance(node, COMPREHENSIONS) and any(old in names_in(g.target) for g in node.generators):
            return "comprehension_binds_name"
    if not any(isinstance(n, ast.Name) and n.id == old and isinstance(n.ctx, ast.Store) for n in scope_nodes(function)):
        return "not_local"
    if not bound_before_read(function, old):
        return "may_be_read_unbound"
    return None


def _range_call(node: ast.expr, ctx: Context) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and not node.keywords and 1 <= len(node.args) <= 3
            and not any(isinstance(a, ast.Starred) for a in node.args) and not module_binds(ctx.tree, "range"))


def _int_constant(node: ast.expr) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
            and type(node.operand.value) is int:
        return -node.operand.value
    return None


class ForToWhile(Transformation):
    """``for i in range(a[, b[, s]]): B [else: E]`` → ``r = range(a[, b[, s]]); k = r.start;
    while k < r.stop (> for a negative s): i = k; k += r.step; B [else: E]``.

    Sound when: ``range`` is the builtin (the module never binds the name); the step is absent or a nonzero int
    literal (its sign picks the comparison); the target is a plain name; the function does not inspect its frame
    (two fresh locals appear). The same ``range(...)`` call runs at the same point (same arguments evaluated once,
    same TypeError/ValueError for bad ones), the target takes the same values in the same order, and the counter
    advances before the body, so ``continue`` and ``break`` behave as in the ``for``; ``while ... else`` runs its
    ``else`` exactly when the loop ends without ``break``, like ``for ... else``."""

    name = "for_to_while"

    def sites(self, ctx: Context) -> list[Site]:
        return [(f, (block, i)) for f in ctx.functions() for block in blocks(f) for i, s in enumerate(block)
                if isinstance(s, ast.For) and _range_call(s.iter, ctx)]

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        function, (block, index) = site  # type: ignore[misc]
        loop = block[index]
        if not isinstance(loop.target, ast.Name):
            raise Refused("target_not_a_name")
        step = _int_constant(loop.iter.args[2]) if len(loop.iter.args) == 3 else 1
        if step is None or step == 0:
            raise Refused("step_not_int_literal")
        if dynamic(function):
            raise Refused("frame_introspection")
        r, k = ctx.fresh(rng, "range"), ctx.fresh(rng, "index")
        test = ast.Compare(left=_name(k), ops=[ast.Lt() if step > 0 else ast.Gt()],
                           comparators=[ast.Attribute(value=_name(r), attr="stop", ctx=ast.Load())])
        body = [ast.Assign(targets=[loop.target], value=_name(k)),
                ast.AugAssign(target=_name(k, True), op=ast.Add(),
                              value=ast.Attribute(value=_name(r), attr="step", ctx=ast.Load())),
                *loop.body]
        block[index:index + 1] = [
            ast.Assign(targets=[_name(r, True)], value=loop.iter),
            ast.Assign(targets=[_name(k, True)], value=ast.Attribute(value=_name(r), attr="start", ctx=ast.Load())),
            ast.While(test=test, body=body, orelse=loop.orelse)]


class ComprehensionToLoop(Transformation):
    """``x = [e for t in it if c ...]`` (or ``return [...]``) → ``acc = []; for t' in it: if c': acc.append(e')``
    then ``x = acc`` (``return acc``), the comprehension's targets renamed to fresh names.

    Sound when: it is a list comprehension (set/dict/generator ones differ in laziness or order of effects) with
    no ``async``, and its element and conditions hold no lambda, nested comprehension, ``yield``, ``await`` or
    walrus (their scoping differs between a comprehension and a loop); the function does not inspect its frame.
    The first iterable is evaluated first in both (in the enclosing scope: it is not renamed); renaming the
    targets to fresh names keeps the comprehension's own scope from leaking onto the function's variables; the
    element is evaluated, and appended, in the same order; ``list.append`` on a fresh list has no other effect."""

    name = "comprehension_to_loop"

    def sites(self, ctx: Context) -> list[Site]:
        out: list[Site] = []
        for f in ctx.functions():
            for block in blocks(f):
                for i, s in enumerate(block):
                    value = s.value if isinstance(s, (ast.Return, ast.Assign)) else None
                    if isinstance(value, ast.ListComp) and (isinstance(s, ast.Return) or (
                            len(s.targets) == 1 and isinstance(s.targets[0], ast.Name))):
                        out.append((f, (block, i)))
        return out

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        function, (block, index) = site  # type: ignore[misc]
        statement = block[index]
        comp: ast.ListComp = statement.value
        if any(g.is_async for g in comp.generators):
            raise Refused("async")
        if any(not isinstance(n, (ast.Name, ast.Tuple, ast.List, ast.Store)) for g in comp.generators
               for n in ast.walk(g.target)):
            raise Refused("target_not_names")
        parts = [comp.elt] + [c for g in comp.generators for c in g.ifs] + [g.iter for g in comp.generators[1:]]
        if any(has(p, ast.Lambda, *COMPREHENSIONS, ast.Yield, ast.YieldFrom, ast.Await, ast.NamedExpr)
               for p in parts):
            raise Refused("nested_scope_in_comprehension")
        if dynamic(function):
            raise Refused("frame_introspection")
        targets = set().union(*(names_in(g.target) for g in comp.generators))
        rename = {t: ctx.fresh(rng, "element", like=t) for t in sorted(targets)}

        def renamed(node: ast.AST) -> ast.AST:
            node = copy.deepcopy(node)
            for n in ast.walk(node):
                if isinstance(n, ast.Name) and n.id in rename:
                    n.id = rename[n.id]
            return node

        acc = ctx.fresh(rng, "accumulator")
        inner: list[ast.stmt] = [ast.Expr(value=ast.Call(
            func=ast.Attribute(value=_name(acc), attr="append", ctx=ast.Load()), args=[renamed(comp.elt)],
            keywords=[]))]
        for position in range(len(comp.generators) - 1, -1, -1):
            g = comp.generators[position]
            for condition in reversed(g.ifs):
                inner = [ast.If(test=renamed(condition), body=inner, orelse=[])]
            iterable = g.iter if position == 0 else renamed(g.iter)
            inner = [ast.For(target=renamed(g.target), iter=iterable, body=inner, orelse=[])]
        end: ast.stmt = (ast.Return(value=_name(acc)) if isinstance(statement, ast.Return)
                         else ast.Assign(targets=statement.targets, value=_name(acc)))
        block[index:index + 1] = [ast.Assign(targets=[_name(acc, True)], value=ast.List(elts=[], ctx=ast.Load())),
                                  *inner, end]


def _append_loop(loop: ast.stmt, acc: str) -> tuple[list[ast.comprehension], ast.expr] | None:
    """The generators and element of ``for t in it: [if c: ...] acc.append(e)`` (nested ``for``/``if`` with one
    statement each), or None when the loop is not of that shape."""
    generators: list[ast.comprehension] = []
    node: ast.stmt = loop
    while True:
        if isinstance(node, ast.For) and not node.orelse and len(node.body) == 1:
            generators.append(ast.comprehension(target=node.target, iter=node.iter, ifs=[], is_async=0))
            node = node.body[0]
        elif isinstance(node, ast.If) and generators and not node.orelse and len(node.body) == 1:
            generators[-1].ifs.append(node.test)
            node = node.body[0]
        else:
            break
    call = node.value if isinstance(node, ast.Expr) else None
    if not generators or not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                              and call.func.attr == "append" and isinstance(call.func.value, ast.Name)
                              and call.func.value.id == acc and len(call.args) == 1 and not call.keywords
                              and not isinstance(call.args[0], ast.Starred)):
        return None
    return generators, call.args[0]


class LoopToComprehension(Transformation):
    """``acc = []; for t in it: [if c:] acc.append(e)`` → ``acc = [e for t in it if c]`` (the inverse of
    ``comprehension_to_loop``; nested ``for``/``if`` with one statement each become several clauses).

    Sound when: ``acc`` is bound to an empty list literal right before the loop and the loop neither reads nor
    rebinds it but for the ``append`` (so the list is the one built, and nothing sees it half built); the loop has
    no ``else``; the targets are plain names the function mentions nowhere outside the loop (in the loop they leak
    into the function; in a comprehension they do not: nobody may read them afterwards) and the first iterable
    does not read them; the element, conditions and iterables hold no lambda, comprehension, ``yield``,
    ``await`` or walrus; the function has no ``try``/``with`` (an exception in the middle of the loop leaves
    ``acc`` half filled, which a handler could see) and does not inspect its frame. ``list.append`` of a fresh
    list has no other effect; evaluation order is the same."""

    name = "loop_to_comprehension"

    def sites(self, ctx: Context) -> list[Site]:
        out: list[Site] = []
        for f in ctx.functions():
            for block in blocks(f):
                for i in range(len(block) - 1):
                    s = block[i]
                    if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name) \
                            and isinstance(s.value, ast.List) and not s.value.elts \
                            and isinstance(block[i + 1], ast.For):
                        out.append((f, (block, i)))
        return out

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        function, (block, index) = site  # type: ignore[misc]
        acc = block[index].targets[0].id
        loop = block[index + 1]
        shape = _append_loop(loop, acc)
        if shape is None:
            raise Refused("not_an_append_loop")
        generators, element = shape
        parts = [element] + [c for g in generators for c in g.ifs] + [g.iter for g in generators]
        if any(has(p, ast.Lambda, *COMPREHENSIONS, ast.Yield, ast.YieldFrom, ast.Await, ast.NamedExpr)
               for p in parts):
            raise Refused("nested_scope_in_loop")
        if sum(1 for n in ast.walk(loop) if isinstance(n, ast.Name) and n.id == acc) != 1:
            raise Refused("accumulator_read_in_loop")
        if any(not isinstance(n, (ast.Name, ast.Tuple, ast.List, ast.Store)) for g in generators
               for n in ast.walk(g.target)):
            raise Refused("target_not_names")
        targets = set().union(*(names_in(g.target) for g in generators))
        inside = Counter(n.id for n in ast.walk(loop) if isinstance(n, ast.Name))
        everywhere = Counter(n.id for n in ast.walk(function) if isinstance(n, ast.Name))
        if any(everywhere[t] != inside[t] for t in targets) or targets & params(function):
            raise Refused("loop_variable_used_after")
        if names_in(generators[0].iter) & targets:
            raise Refused("loop_variable_used_after")
        if has(function, ast.Try, ast.With, ast.AsyncWith, *((ast.TryStar,) if hasattr(ast, "TryStar") else ())):
            raise Refused("exception_handler_in_function")
        if dynamic(function):
            raise Refused("frame_introspection")
        block[index:index + 2] = [ast.Assign(targets=[_name(acc, True)],
                                             value=ast.ListComp(elt=element, generators=generators))]


class IfSwap(Transformation):
    """``if t: A else: B`` → ``if not t: B else: A`` (and ``a if t else b`` → ``b if not t else a``).

    Sound always when there is an ``else``: ``t`` is evaluated once either way and ``not`` asks its truth value
    exactly once, as ``if`` does; the branch taken is the same."""

    name = "if_swap"

    def sites(self, ctx: Context) -> list[Site]:
        return [(f, n) for f in ctx.functions() for n in scope_nodes(f) if isinstance(n, (ast.If, ast.IfExp))]

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        _, node = site
        if isinstance(node, ast.If):
            if not node.orelse:
                raise Refused("no_else")
            node.body, node.orelse = node.orelse, node.body
        else:
            assert isinstance(node, ast.IfExp)
            node.body, node.orelse = node.orelse, node.body
        node.test = _not(node.test)


class DeMorgan(Transformation):
    """``not (a and b)`` ↔ ``not a or not b``; ``not (a or b)`` ↔ ``not a and not b``.

    Sound for every value: both sides are bools, evaluate the operands left to right and stop at the same
    operand (``b`` is evaluated exactly when ``a`` is truthy, resp. falsy). The only difference is how many times
    an operand's ``__bool__`` is asked (the original asks a stopping operand twice): observable only through a
    user-defined ``__bool__``/``__len__`` with effects, which no literal input brings; the rule refuses in a module
    that defines either."""

    name = "de_morgan"

    def sites(self, ctx: Context) -> list[Site]:
        out: list[Site] = []
        for f in ctx.functions():
            for n in scope_nodes(f):
                negated = isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not) and isinstance(n.operand,
                                                                                                  ast.BoolOp)
                of_negations = isinstance(n, ast.BoolOp) and all(
                    isinstance(v, ast.UnaryOp) and isinstance(v.op, ast.Not) for v in n.values)
                if negated or of_negations:
                    out.append((f, n))
        return out

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        _, node = site
        if any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name in ("__bool__", "__len__")
               for n in ast.walk(ctx.tree)):
            raise Refused("user_defined_truth")
        if isinstance(node, ast.UnaryOp):
            inner: ast.BoolOp = node.operand  # type: ignore[assignment]
            flipped = ast.Or() if isinstance(inner.op, ast.And) else ast.And()
            replacement: ast.expr = ast.BoolOp(op=flipped, values=[_not(v) for v in inner.values])
        else:
            assert isinstance(node, ast.BoolOp)
            flipped = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            replacement = _not(ast.BoolOp(op=flipped, values=[v.operand for v in node.values]))  # type: ignore[attr-defined]
        _replace(site[0], node, replacement)


def _replace(root: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(root):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return
            if isinstance(value, list):
                for i, child in enumerate(value):
                    if child is old:
                        value[i] = new
                        return
    raise Refused("site_not_found")


class ExtractTemporary(Transformation):
    """``return E`` → ``t = E; return t``; ``if E:`` → ``t = E; if t:``; ``for x in E:`` → ``t = E; for x in t:``.

    Sound when: the whole expression is extracted (never a part of it: that would change the order in which its
    parts are evaluated, and which exception wins); ``t`` is fresh; it is no ``while`` test (evaluated again on
    each turn); the function does not inspect its frame (a new local appears) and ``E`` holds no ``yield``/
    ``await`` (kept in place anyway: fine, but out of caution). ``E`` is evaluated exactly where it was."""

    name = "extract_temporary"

    def sites(self, ctx: Context) -> list[Site]:
        out: list[Site] = []
        for f in ctx.functions():
            for block in blocks(f):
                for i, s in enumerate(block):
                    expr = (s.value if isinstance(s, ast.Return) else s.test if isinstance(s, ast.If)
                            else s.iter if isinstance(s, ast.For) else None)
                    if expr is not None and not isinstance(expr, (ast.Name, ast.Constant)):
                        out.append((f, (block, i)))
        return out

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        function, (block, index) = site  # type: ignore[misc]
        statement = block[index]
        attr = "value" if isinstance(statement, ast.Return) else "test" if isinstance(statement, ast.If) else "iter"
        expr = getattr(statement, attr)
        if dynamic(function):
            raise Refused("frame_introspection")
        if has(expr, ast.Yield, ast.YieldFrom, ast.Await):
            raise Refused("yield_or_await")
        t = ctx.fresh(rng, {"value": "result", "test": "condition", "iter": "sequence"}[attr])
        ctx.made.add(t)
        setattr(statement, attr, _name(t))
        block.insert(index, ast.Assign(targets=[_name(t, True)], value=expr))


class InlineTemporary(Transformation):
    """``t = E`` followed by ``return t`` / ``x = t`` / ``if t:`` → ``return E`` / ``x = E`` / ``if E:``.

    Sound when: ``t`` is a plain local (not a parameter, not declared global/nonlocal) that the function
    mentions exactly twice in all (this binding and that reading: no other reading, no nested scope sees it, no
    loop brings the reading back without the binding); the reading is the whole of the next statement's value/test
    (so ``E`` is evaluated at the same point, before anything else of that statement); the function does not
    inspect its frame (a local disappears)."""

    name = "inline_temporary"

    def sites(self, ctx: Context) -> list[Site]:
        out: list[Site] = []
        for f in ctx.functions():
            for block in blocks(f):
                for i in range(len(block) - 1):
                    s, nxt = block[i], block[i + 1]
                    if not (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)):
                        continue
                    use = (nxt.value if isinstance(nxt, (ast.Return, ast.Assign)) else nxt.test
                           if isinstance(nxt, ast.If) else None)
                    if isinstance(use, ast.Name) and use.id == s.targets[0].id:
                        out.append((f, (block, i)))
        return out

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        function, (block, index) = site  # type: ignore[misc]
        s, nxt = block[index], block[index + 1]
        t = s.targets[0].id
        if t in ctx.made:
            raise Refused("undoes_extraction")
        if t in params(function):
            raise Refused("parameter")
        if dynamic(function):
            raise Refused("frame_introspection")
        mentions = sum(1 for n in ast.walk(function) if isinstance(n, ast.Name) and n.id == t)
        if mentions != 2 or t in (stored(function) - {t}) or any(
                isinstance(n, (ast.Global, ast.Nonlocal)) and t in n.names for n in ast.walk(function)):
            raise Refused("temporary_used_elsewhere")
        if any(isinstance(n, ast.ExceptHandler) and n.name == t for n in ast.walk(function)):
            raise Refused("temporary_used_elsewhere")
        if isinstance(nxt, ast.If):
            nxt.test = s.value
        else:
            nxt.value = s.value
        del block[index]


def _always_bound_params(function: Function) -> set[str]:
    return params(function) - stored(function)


def _safe(expr: ast.expr, bound: set[str]) -> bool:
    """An expression that cannot raise and has no effect: literals, always-bound parameters, lists/tuples of them."""
    if isinstance(expr, ast.Constant):
        return True
    if isinstance(expr, ast.Name):
        return expr.id in bound
    if isinstance(expr, (ast.List, ast.Tuple)):
        return all(not isinstance(e, ast.Starred) and _safe(e, bound) for e in expr.elts)
    return False


class ReorderStatements(Transformation):
    """Swap two adjacent assignments ``S1; S2`` → ``S2; S1``.

    Sound when: both are assignments (``=``, ``+=``, annotated) whose targets are plain names; the two share no
    name at all (neither reads or writes what the other reads or writes); neither holds a call, ``yield``,
    ``await``, walrus or lambda (calls may have effects whose order matters); at least one of them cannot raise
    (its value is a literal, an always-bound parameter or a list/tuple of those, its targets plain names), so
    if the other raises it raises in both orders; the function has no ``try``/``with`` (a handler could see the
    binding made or not made before the exception) and does not inspect its frame."""

    name = "reorder_statements"

    @staticmethod
    def _simple(s: ast.stmt) -> bool:
        if isinstance(s, ast.Assign):
            return all(isinstance(t, ast.Name) for t in s.targets)
        if isinstance(s, ast.AugAssign):
            return isinstance(s.target, ast.Name)
        if isinstance(s, ast.AnnAssign):
            return isinstance(s.target, ast.Name) and s.value is not None and bool(s.simple)
        return False

    def sites(self, ctx: Context) -> list[Site]:
        return [(f, (block, i)) for f in ctx.functions() for block in blocks(f) for i in range(len(block) - 1)
                if self._simple(block[i]) and self._simple(block[i + 1])]

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        function, (block, index) = site  # type: ignore[misc]
        first, second = block[index], block[index + 1]
        if names_in(first) & names_in(second):
            raise Refused("shared_name")
        if any(has(s, ast.Call, ast.Yield, ast.YieldFrom, ast.Await, ast.NamedExpr, ast.Lambda, *COMPREHENSIONS)
               for s in (first, second)):
            raise Refused("call_or_effect")
        bound = _always_bound_params(function)
        if not any(isinstance(s, ast.Assign) and _safe(s.value, bound) for s in (first, second)):
            raise Refused("both_may_raise")
        if has(function, ast.Try, ast.With, ast.AsyncWith, *((ast.TryStar,) if hasattr(ast, "TryStar") else ())):
            raise Refused("exception_handler_in_function")
        if dynamic(function):
            raise Refused("frame_introspection")
        block[index], block[index + 1] = second, first


SEQUENCES = frozenset({"list", "str", "tuple"})


class RangeLenToEnumerate(Transformation):
    """``for i in range(len(x)): B`` → ``for i, v in enumerate(x): B[x[i] := v]`` (each ``x[i]`` read becomes v).

    Sound when: ``range``, ``len`` and ``enumerate`` are the builtins; ``x`` is a local of the function every
    binding of which makes a fresh exact list, tuple, str or bytes whatever the inputs (``sequence_local``: a
    literal, a list comprehension, ``list``/``tuple``/``sorted`` of anything, ``'…'.join``), none of them inside
    the loop. Never a parameter: an accepted input may put any literal there, and on a dict ``x[i]`` is a lookup by
    key, not the i-th key (``{'lst': {0: 2, 1: 3}}``), on a set it raises, on None ``len`` and ``enumerate`` raise
    different messages. Besides its bindings the function mentions ``x`` only as ``len(x)`` and subscript reads
    ``x[...]`` (no alias, no method call, no passing it on, no store or delete into it), so ``x`` cannot change
    during the loop and ``enumerate`` sees the same items ``range(len(x))`` counted; an unbound ``x`` raises the
    same ``UnboundLocalError`` in ``len(x)`` and ``enumerate(x)``; the body never rebinds ``i`` (so ``x[i]`` is the
    current item wherever it is read) and holds no nested scope; the function does not inspect its frame (a new
    local appears)."""

    name = "range_len_to_enumerate"

    def sites(self, ctx: Context) -> list[Site]:
        out: list[Site] = []
        for f in ctx.functions():
            for n in scope_nodes(f):
                if isinstance(n, ast.For) and isinstance(n.target, ast.Name) and _range_call(n.iter, ctx) \
                        and len(n.iter.args) == 1:
                    arg = n.iter.args[0]
                    if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and arg.func.id == "len" \
                            and len(arg.args) == 1 and isinstance(arg.args[0], ast.Name) and not arg.keywords:
                        out.append((f, n))
        return out

    def proven(self, ctx: Context, function: Function, x: str, loop: ast.For) -> set[int]:
        """Raise ``Refused`` unless ``x`` is a sequence for every accepted input; return the ids of the Name nodes
        that bind it (the only mentions of ``x`` besides ``len(x)`` and ``x[...]`` reads)."""
        found = sequence_local(ctx, function, x)
        if found is None:
            raise Refused("sequence_type_not_provable")
        inside = {id(n) for n in ast.walk(loop)}
        if any(id(n) in inside for n in found):
            raise Refused("sequence_may_change")
        return {id(t) for n in found for t in (n.targets if isinstance(n, ast.Assign) else [n.target])  # type: ignore[attr-defined]
                if isinstance(t, ast.Name)}

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        function, loop = site
        assert isinstance(loop, ast.For) and isinstance(loop.target, ast.Name)
        x = loop.iter.args[0].args[0].id  # type: ignore[attr-defined]
        i = loop.target.id
        if module_binds(ctx.tree, "len") or module_binds(ctx.tree, "enumerate"):
            raise Refused("builtin_rebound")
        allowed = self.proven(ctx, function, x, loop)  # type: ignore[arg-type]
        for n in ast.walk(function):
            if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and n.value.id == x \
                    and isinstance(n.ctx, ast.Load):
                allowed.add(id(n.value))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "len" and len(n.args) == 1 \
                    and isinstance(n.args[0], ast.Name) and n.args[0].id == x:
                allowed.add(id(n.args[0]))
        if any(isinstance(n, ast.Name) and n.id == x and id(n) not in allowed for n in ast.walk(function)):
            raise Refused("sequence_may_change")
        body = ast.Module(body=loop.body, type_ignores=[])
        if i in stored(body) or any(isinstance(n, COMPREHENSIONS) and any(i in names_in(g.target)
                                                                          for g in n.generators)
                                    for n in ast.walk(body)):
            raise Refused("index_rebound")
        if has(body, *SCOPES):
            raise Refused("nested_scope")
        if dynamic(function):
            raise Refused("frame_introspection")
        v = ctx.fresh(rng, "element")
        for n in ast.walk(body):
            for name, value in ast.iter_fields(n):
                items = value if isinstance(value, list) else [value]
                for position, child in enumerate(items):
                    if isinstance(child, ast.Subscript) and isinstance(child.ctx, ast.Load) \
                            and isinstance(child.value, ast.Name) and child.value.id == x \
                            and isinstance(child.slice, ast.Name) and child.slice.id == i:
                        if isinstance(value, list):
                            value[position] = _name(v)
                        else:
                            setattr(n, name, _name(v))
        loop.target = ast.Tuple(elts=[_name(i, True), _name(v, True)], ctx=ast.Store())
        loop.iter = ast.Call(func=_name("enumerate"), args=[_name(x)], keywords=[])


class RangeLenToEnumerateSeedTyped(RangeLenToEnumerate):
    """TESTS AND MEASUREMENT ONLY, unsound (issue 26): the pre-issue-26 condition, ``x`` a parameter whose *seed*
    inputs are all lists, strings or tuples. Refuted by ``{'x': {0: 2, 1: 3}}``: the seeds' types are no contract,
    the verdict engine accepts any literal. Never in the default set."""

    name = "range_len_to_enumerate_seed_typed"
    unsound = True

    def proven(self, ctx: Context, function: Function, x: str, loop: ast.For) -> set[int]:
        types = ctx.types_of(function, x)
        if not types or not types <= SEQUENCES:
            raise Refused("type_not_known_sequence")
        return set()


def _returns(statements: list[ast.stmt], found: list[tuple[list[ast.stmt], int]]) -> None:
    """Collect the returns of a loop body reachable through ``if`` only; raise Refused when one hides deeper."""
    for index, s in enumerate(statements):
        if isinstance(s, ast.Return):
            found.append((statements, index))
        elif isinstance(s, ast.If):
            _returns(s.body, found)
            _returns(s.orelse, found)
        elif not isinstance(s, SCOPES) and any(isinstance(n, ast.Return) for n in ast.walk(s)):
            raise Refused("return_in_nested_block")


class EarlyReturnToFlag(Transformation):
    """A loop at the top of a function body that returns from inside →
    ``done = False; for ...: ... ret = E; done = True; break ...; if done: return ret`` right after the loop.

    Sound when: the loop (``for``/``while``, not async) is a statement of the function's own body (so the check
    right after it runs next) and has no ``else`` (``break`` would skip it, as ``return`` does, but keep it
    simple); every ``return`` in its body is reached through ``if`` statements only (not inside a nested loop,
    where ``break`` would leave the inner loop, nor in ``try``/``with``/``match``); the function does not inspect
    its frame (two fresh locals). ``E`` is evaluated where it was, nothing runs between it and the loop's end but
    the flag, and the function then returns the same object."""

    name = "early_return_to_flag"

    def sites(self, ctx: Context) -> list[Site]:
        return [(f, i) for f in ctx.functions() for i, s in enumerate(f.body)
                if isinstance(s, (ast.For, ast.While)) and any(isinstance(n, ast.Return) for n in ast.walk(s))]

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        function, index = site
        loop = function.body[index]  # type: ignore[index]
        if loop.orelse:
            raise Refused("loop_has_else")
        if dynamic(function):
            raise Refused("frame_introspection")
        found: list[tuple[list[ast.stmt], int]] = []
        _returns(loop.body, found)
        if not found:
            raise Refused("no_return")
        done, ret = ctx.fresh(rng, "flag"), ctx.fresh(rng, "result")
        for statements, position in reversed(found):
            value = statements[position].value or ast.Constant(value=None)  # type: ignore[attr-defined]
            statements[position:position + 1] = [ast.Assign(targets=[_name(ret, True)], value=value),
                                                 ast.Assign(targets=[_name(done, True)], value=ast.Constant(True)),
                                                 ast.Break()]
        function.body[index:index + 1] = [  # type: ignore[index]
            ast.Assign(targets=[_name(done, True)], value=ast.Constant(False)), loop,
            ast.If(test=_name(done), body=[ast.Return(value=_name(ret))], orelse=[])]


DOUBLING = frozenset({"int", "float", "bool", "str", "list", "tuple"})
"""Types on which ``x * 2 == x + x`` (what the seed-typed legacy rule trusted; a dict, set or None raises with two
different messages)."""


class AlgebraicDouble(Transformation):
    """``x * 2`` / ``2 * x`` ↔ ``x + x``.

    Sound when: ``x`` is a local of the function that holds an exact int, float or bool whenever it is bound,
    whatever the inputs (``numeric_locals``: proved from its bindings, e.g. a ``range`` loop target, ``len(...)``,
    arithmetic of such). For those ``x * 2 == x + x`` with the same type (bool doubles to int both ways; float
    doubling is exact, -0.0 stays -0.0, NaN stays NaN, overflow gives inf both ways); an unbound ``x`` raises the
    same ``UnboundLocalError`` both ways. Never a parameter: an accepted input may put any literal there, and on a
    dict, set or None the two forms raise ``TypeError`` with different messages (``*`` vs ``+``, ``'int'`` vs the
    operand's type); on a complex with a signed zero they differ too.

    Refused identities (not implemented on purpose): ``a - b`` ↔ ``-(b - a)`` (floats: ``0.0 - 0.0`` is 0.0,
    ``-(0.0 - 0.0)`` is -0.0, and the canonical encoding tells them apart); ``a + b`` ↔ ``b + a`` without both
    types known (strings and lists do not commute); ``a < b`` ↔ ``b > a`` across types (the TypeError message
    names the operator and the operand order)."""

    name = "algebraic_double"

    def sites(self, ctx: Context) -> list[Site]:
        out: list[Site] = []
        for f in ctx.functions():
            for n in scope_nodes(f):
                if not isinstance(n, ast.BinOp):
                    continue
                times = isinstance(n.op, ast.Mult) and any(isinstance(s, ast.Name) for s in (n.left, n.right)) \
                    and any(_int_constant(s) == 2 for s in (n.left, n.right))
                plus = isinstance(n.op, ast.Add) and isinstance(n.left, ast.Name) and isinstance(n.right, ast.Name) \
                    and n.left.id == n.right.id
                if times or plus:
                    out.append((f, n))
        return out

    def proven(self, ctx: Context, function: Function, name: str) -> bool:
        """Whether ``name`` holds an int, float or bool at the site for every accepted input."""
        return name in numeric_locals(ctx, function)

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        function, node = site
        assert isinstance(node, ast.BinOp)
        x = node.left if isinstance(node.left, ast.Name) else node.right
        assert isinstance(x, ast.Name)
        if not self.proven(ctx, function, x.id):  # type: ignore[arg-type]
            raise Refused("type_not_provable")
        if isinstance(node.op, ast.Mult):
            replacement: ast.expr = ast.BinOp(left=_name(x.id), op=ast.Add(), right=_name(x.id))
        else:
            replacement = ast.BinOp(left=_name(x.id), op=ast.Mult(), right=ast.Constant(2))
        _replace(function, node, replacement)


class AlgebraicDoubleSeedTyped(AlgebraicDouble):
    """TESTS AND MEASUREMENT ONLY, unsound (issue 26): the pre-issue-26 condition, ``x`` a parameter whose *seed*
    inputs are all int, float, bool, str, list or tuple. Refuted by ``{'x': None}``. Never in the default set."""

    name = "algebraic_double_seed_typed"
    unsound = True

    def proven(self, ctx: Context, function: Function, name: str) -> bool:
        types = ctx.types_of(function, name)
        return bool(types) and types <= DOUBLING


MIRRORED = {ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE, ast.GtE: ast.LtE, ast.Eq: ast.Eq, ast.NotEq: ast.NotEq}


def _number_literal(node: ast.expr) -> bool:
    """A number written in the code (``3``, ``-1``, ``0.5``): no effect, cannot raise."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


class CommuteNumeric(Transformation):
    """``e < 3`` → ``3 > e`` (``<=``/``>=`` likewise, ``==``/``!=`` kept), ``e + 3`` → ``3 + e``, ``e * 3`` → ``3 * e``
    (either way round).

    Sound when: one operand is a number literal (no effect, cannot raise: evaluating it first or last changes
    nothing) and the other is proved to give an int, float or bool or to raise whatever the inputs
    (``numeric_expr``: a numeric local, ``len(...)``, arithmetic of such); the comparison is a single one. For
    int/float/bool operands comparisons are exact and mirror (NaN compares false both ways), ``+`` and ``*`` are
    commutative in value and type (IEEE addition and multiplication commute, signed zeros included; an int too large
    for a float raises the same ``OverflowError`` in both orders). Never on an operand of unknown type: ``'a' < 3``
    and ``3 > 'a'`` raise ``TypeError`` with different messages, strings do not commute under ``+``."""

    name = "commute_numeric"

    def sites(self, ctx: Context) -> list[Site]:
        out: list[Site] = []
        for f in ctx.functions():
            for n in scope_nodes(f):
                if isinstance(n, ast.Compare) and len(n.ops) == 1 and type(n.ops[0]) in MIRRORED:
                    pair = (n.left, n.comparators[0])
                elif isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Mult)):
                    pair = (n.left, n.right)
                else:
                    continue
                if sum(_number_literal(side) for side in pair) == 1:
                    out.append((f, n))
        return out

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        function, node = site
        assert isinstance(node, (ast.Compare, ast.BinOp))
        left, right = (node.left, node.comparators[0]) if isinstance(node, ast.Compare) else (node.left, node.right)
        other = right if _number_literal(left) else left
        if not numeric_expr(ctx, function, other, numeric_locals(ctx, function)):  # type: ignore[arg-type]
            raise Refused("type_not_provable")
        if isinstance(node, ast.Compare):
            node.left, node.comparators[0] = right, left
            node.ops[0] = MIRRORED[type(node.ops[0])]()
        else:
            node.left, node.right = right, left


class CommuteEquality(Transformation):
    """``e == 3`` ↔ ``3 == e``, ``e != 0`` ↔ ``0 != e``: an (in)equality with a number literal, turned round.

    Sound for every ``e``, whatever its type: the literal has no effect and cannot raise, so ``e`` is evaluated
    once at the same point either way; and ``==``/``!=`` (unlike ``<``) never raise a ``TypeError`` of their own
    that would name the operand order, they fall back to identity. With ``c`` an exact int or float: ``e == c``
    asks ``type(e).__eq__(e, c)`` first, then ``c.__eq__(e)``, then ``e is c``; ``c == e`` asks
    ``int/float.__eq__(c, e)`` first, which answers only when ``e`` is an int, float or bool (the same exact
    comparison as the other order: ``float.__eq__`` handles an int, ``int.__eq__`` defers a float to it) and
    returns ``NotImplemented`` otherwise, without effect, so ``e.__eq__(e, c)`` decides, then identity: the same
    calls with the same result (a subclass of ``int``/``float`` is asked first in both orders, CPython's
    ``do_richcompare``). ``!=`` likewise. Not ``<``/``>``: ``'a' < 3`` and ``3 > 'a'`` raise different messages
    (``commute_numeric`` does those, on proved numbers)."""

    name = "commute_equality"

    def sites(self, ctx: Context) -> list[Site]:
        return [(f, n) for f, n in expression_scopes(ctx)
                if isinstance(n, ast.Compare) and len(n.ops) == 1 and isinstance(n.ops[0], (ast.Eq, ast.NotEq))
                and _number_literal(n.left) != _number_literal(n.comparators[0])]

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        _, node = site
        assert isinstance(node, ast.Compare)
        node.left, node.comparators[0] = node.comparators[0], node.left


class RangeStart(Transformation):
    """``range(n)`` ↔ ``range(0, n)``, ``range(a, b)`` ↔ ``range(a, b, 1)``.

    Sound when: ``range`` is the builtin (the module never binds the name). ``range(x)``, ``range(0, x)`` and
    ``range(0, x, 1)`` are the same object for every int-like argument (the same repr, start, stop and step) and
    raise the same ``TypeError`` (``'…' object cannot be interpreted as an integer``) for every other literal, in
    the same argument order; a literal ``0`` or ``1`` has no effect and cannot raise. One call rewritten in place,
    no name added or removed: it fires in nested helpers and lambdas too (``expression_scopes``)."""

    name = "range_explicit_start"

    def sites(self, ctx: Context) -> list[Site]:
        return [(f, n) for f, n in expression_scopes(ctx)
                if isinstance(n, ast.Call) and _range_call(n, ctx) and (len(n.args) < 3 or _is_int(n.args[2], 1))]

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        _, node = site
        assert isinstance(node, ast.Call)
        if len(node.args) == 1:
            node.args.insert(0, ast.Constant(value=0))
        elif len(node.args) == 3:
            del node.args[2]
        elif _is_int(node.args[0], 0) and rng.random() < 0.5:
            del node.args[0]
        else:
            node.args.append(ast.Constant(value=1))


def _is_int(node: ast.expr, value: int) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int and node.value == value


SHIFTED = {ast.Lt: (ast.LtE, -1), ast.LtE: (ast.Lt, 1), ast.Gt: (ast.GtE, 1), ast.GtE: (ast.Gt, -1)}
"""``L op R`` ↔ ``L op' R + d`` for ints: the other strictness and the offset ``d`` that keeps it
(``<`` ↔ ``<= R - 1``)."""


def _offset(e: ast.expr) -> tuple[ast.expr | None, int]:
    """``e`` as base + constant: an int literal is (None, c), ``x + k`` / ``x - k`` (``k`` an int literal) is
    (x, ±k), anything else (e, 0)."""
    constant = _int_constant(e)
    if constant is not None:
        return None, constant
    if isinstance(e, ast.BinOp) and isinstance(e.op, (ast.Add, ast.Sub)):
        k = _int_constant(e.right)
        if k is not None and _int_constant(e.left) is None:
            return e.left, k if isinstance(e.op, ast.Add) else -k
    return e, 0


def _int_literal(value: int) -> ast.expr:
    return ast.Constant(value) if value >= 0 else ast.UnaryOp(op=ast.USub(), operand=ast.Constant(-value))


def _plus(base: ast.expr | None, k: int) -> ast.expr:
    """``base + k`` written as a person would: the literal alone, ``base``, ``base + k`` or ``base - |k|``."""
    if base is None:
        return _int_literal(k)
    if k == 0:
        return base
    return ast.BinOp(left=base, op=ast.Add() if k > 0 else ast.Sub(), right=ast.Constant(abs(k)))


def _len_call(e: ast.expr, ctx: Context) -> bool:
    return _builtin_call(e, frozenset({"len"}), ctx.tree)


class ShiftIntBound(Transformation):
    """``i < n`` ↔ ``i <= n - 1``, ``x > 0`` ↔ ``x >= 1``, ``k >= n + 1`` ↔ ``k > n`` (``<``, ``<=``, ``>``, ``>=``:
    the other strictness, one side moved by one), and ``len(x) == 0`` → ``len(x) < 1``, ``len(x) != 0`` →
    ``len(x) >= 1``.

    Sound when: the comparison is a single one and both sides are proved to give an int or bool, never a float,
    or to raise, whatever the inputs (``int_expr``: an int literal, a local every binding of which is such
    (``int_locals``: a ``range`` target, ``enumerate``'s counter, ``len(...)``, a counter ``+= 1``...), ``len``,
    ``int``, ``ord``, int arithmetic of such). Between integers ``a < b`` is ``a <= b - 1`` and ``a <= b`` is
    ``a < b + 1`` exactly (Python ints do not overflow; a bool is 0 or 1); the result is a bool both ways. Only
    literals are added or removed: both sides are evaluated once, in the same order, so an exception (an unbound
    local, ``len`` of an int) is the same one at the same point, and ``n ± 1`` of an int cannot raise.
    ``len(...)`` is never negative, so ``== 0`` is ``< 1``. Never on a side of unknown type: for floats ``x > 0``
    and ``x >= 1`` differ (0.5), for a str the ``TypeError`` names another operator or operand."""

    name = "shift_int_bound"

    def sites(self, ctx: Context) -> list[Site]:
        return [(f, n) for f, n in expression_scopes(ctx)
                if isinstance(n, ast.Compare) and len(n.ops) == 1
                and isinstance(n.ops[0], (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq))]

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        function, node = site
        assert isinstance(node, ast.Compare)
        left, right, op = node.left, node.comparators[0], node.ops[0]
        if isinstance(op, (ast.Eq, ast.NotEq)):
            if _len_call(left, ctx) and _is_int(right, 0):
                node.ops[0], node.comparators[0] = (ast.Lt() if isinstance(op, ast.Eq) else ast.GtE()), ast.Constant(1)
            elif _len_call(right, ctx) and _is_int(left, 0):
                node.ops[0], node.left = (ast.Gt() if isinstance(op, ast.Eq) else ast.LtE()), ast.Constant(1)
            else:
                raise Refused("not_len_against_zero")
            return
        known = int_locals(ctx, function)  # type: ignore[arg-type]
        if not (int_expr(ctx, function, left, known) and int_expr(ctx, function, right, known)):  # type: ignore[arg-type]
            raise Refused("int_not_provable")
        new_op, delta = SHIFTED[type(op)]
        (lbase, lk), (rbase, rk) = _offset(left), _offset(right)
        if rbase is None or (lbase is not None and rk != 0) or (lbase is not None and lk == 0 and rng.random() < 0.5):
            node.comparators[0] = _plus(rbase, rk + delta)
        else:
            node.left = _plus(lbase, lk - delta)
        node.ops[0] = new_op()


class ParityCheck(Transformation):
    """``e % 2 == 0`` ↔ ``e % 2 != 1``, ``e % 2 == 1`` ↔ ``e % 2 != 0`` (either side of the comparison).

    Sound when: ``e`` is proved to give an int or bool, or to raise, whatever the inputs (``int_expr``): then
    ``e % 2`` is 0 or 1 (Python's ``%`` takes the divisor's sign, so negative ints too), and ``== c`` is
    ``!= 1 - c``; ``e`` is evaluated once either way, the same exception if it raises. Never on a value of unknown
    type: ``1.5 % 2 == 1`` and ``1.5 % 2 != 0`` differ, and a str formats (``'%d' % 2``)."""

    name = "parity_check"

    def sites(self, ctx: Context) -> list[Site]:
        out: list[Site] = []
        for f, n in expression_scopes(ctx):
            if isinstance(n, ast.Compare) and len(n.ops) == 1 and isinstance(n.ops[0], (ast.Eq, ast.NotEq)):
                for mod, other in ((n.left, n.comparators[0]), (n.comparators[0], n.left)):
                    if isinstance(mod, ast.BinOp) and isinstance(mod.op, ast.Mod) and _is_int(mod.right, 2) \
                            and (_is_int(other, 0) or _is_int(other, 1)):
                        out.append((f, n))
                        break
        return out

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        function, node = site
        assert isinstance(node, ast.Compare)
        mod_left = isinstance(node.left, ast.BinOp) and isinstance(node.left.op, ast.Mod) \
            and _is_int(node.left.right, 2) and (_is_int(node.comparators[0], 0) or _is_int(node.comparators[0], 1))
        mod, other = (node.left, node.comparators[0]) if mod_left else (node.comparators[0], node.left)
        assert isinstance(mod, ast.BinOp) and isinstance(other, ast.Constant)
        if not int_expr(ctx, function, mod.left, int_locals(ctx, function)):  # type: ignore[arg-type]
            raise Refused("int_not_provable")
        flipped = ast.Constant(1 - other.value)
        if mod_left:
            node.comparators[0] = flipped
        else:
            node.left = flipped
        node.ops[0] = ast.NotEq() if isinstance(node.ops[0], ast.Eq) else ast.Eq()


class ExplicitStart(Transformation):
    """``sum(x)`` ↔ ``sum(x, 0)``, ``enumerate(x)`` ↔ ``enumerate(x, 0)``: the default start written out, or
    dropped.

    Sound when: ``sum``/``enumerate`` is the builtin (the module never binds the name) and the call has one
    positional argument (resp. a second one that is the int literal 0) and no keywords or ``*``. The builtins'
    start *is* the int 0 when none is given (CPython ``builtin_sum_impl`` starts from ``PyLong_FromLong(0)``,
    ``enumerate`` counts from 0), so the two calls run the same code on the same values for every argument, with
    the same exception for a bad one (``sum`` rejects only a str/bytes start; a literal 0 cannot fail
    ``enumerate``'s index conversion); the literal has no effect."""

    name = "explicit_start"

    def sites(self, ctx: Context) -> list[Site]:
        return [(f, n) for f, n in expression_scopes(ctx)
                if _builtin_call(n, frozenset({"sum", "enumerate"}), ctx.tree) and not n.keywords  # type: ignore[attr-defined]
                and (len(n.args) == 1 or (len(n.args) == 2 and _is_int(n.args[1], 0)))]  # type: ignore[attr-defined]

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        _, node = site
        assert isinstance(node, ast.Call)
        if len(node.args) == 1:
            node.args.append(ast.Constant(0))
        else:
            del node.args[1]


class UnsoundLessThan(Transformation):
    """TESTS ONLY, deliberately unsound: the first ``<`` becomes ``<=`` (wrong whenever the sides can be equal).
    It exists so the fuzz filter can be shown to catch a broken rule; never in the default set."""

    name = "unsound_lt_to_le"
    unsound = True

    def sites(self, ctx: Context) -> list[Site]:
        return [(f, n) for f in ctx.functions() for n in scope_nodes(f)
                if isinstance(n, ast.Compare) and any(isinstance(o, ast.Lt) for o in n.ops)]

    def apply(self, ctx: Context, site: Site, rng: random.Random) -> None:
        _, node = site
        assert isinstance(node, ast.Compare)
        position = next(i for i, o in enumerate(node.ops) if isinstance(o, ast.Lt))
        node.ops[position] = ast.LtE()


REGISTRY: dict[str, Transformation] = {t.name: t for t in (
    RenameLocal(), ForToWhile(), ComprehensionToLoop(), LoopToComprehension(), IfSwap(), DeMorgan(), ExtractTemporary(),
    InlineTemporary(), ReorderStatements(), RangeLenToEnumerate(), EarlyReturnToFlag(), AlgebraicDouble(),
    CommuteNumeric(), CommuteEquality(), RangeStart(), ShiftIntBound(), ParityCheck(), ExplicitStart(),
    UnsoundLessThan(), RangeLenToEnumerateSeedTyped(), AlgebraicDoubleSeedTyped())}
SEED_TYPED = {"range_len_to_enumerate": "range_len_to_enumerate_seed_typed",
              "algebraic_double": "algebraic_double_seed_typed"}
"""The sound rules whose pre-issue-26 form trusted the seeds' types, and that form's (test-only) name."""
DEFAULT = tuple(name for name, t in REGISTRY.items() if not t.unsound)
CATEGORY: dict[str, str] = {
    "rename_local": "renaming", "if_swap": "local", "de_morgan": "local", "algebraic_double": "local",
    "commute_numeric": "local", "range_explicit_start": "local", "shift_int_bound": "local", "parity_check": "local",
    "explicit_start": "local", "commute_equality": "local",
    "for_to_while": "structural", "comprehension_to_loop": "structural", "loop_to_comprehension": "structural",
    "extract_temporary": "structural", "inline_temporary": "structural", "reorder_statements": "structural",
    "range_len_to_enumerate": "structural", "early_return_to_flag": "structural"}
"""What a rule changes: names only, one expression or branch, or the program's structure (issue 27, item 3)."""
WEIGHT = {"renaming": 0.25, "local": 0.75, "structural": 1.5}
"""How likely each kind of rule is tried first: renaming is the weakest signal of equivalence, so a variant is
mostly restructured (every rule still fires when it is the only one with a site)."""
RULE_WEIGHT = {"commute_numeric": 4.0, "range_explicit_start": 4.0, "shift_int_bound": 8.0, "parity_check": 8.0,
               "explicit_start": 4.0, "commute_equality": 4.0}
"""Rules weighted apart from their category: those that move, add, drop or change a number literal, as most
one-token mutants change one (``0`` → ``1``, ``range(n)`` → ``range(n + 1)``); without them a changed number told
the kinds apart (``tokens.number_added``/``number_removed`` in `sinq train bench-leakage`, issue 27). The two that
change a literal's value the way a mutant does (``x > 0`` → ``x >= 1``, ``== 0`` → ``!= 1``) weigh most; they fire
only where the code proves ints, so the others (any operand) cover the rest."""


def mix(applied: list[str]) -> dict[str, int]:
    """How many of the applied rules were renaming, local and structural (recorded per pair)."""
    counts = Counter(CATEGORY.get(name.removesuffix("_seed_typed"), "other") for name in applied)
    return {kind: counts.get(kind, 0) for kind in (*WEIGHT, "other") if kind in WEIGHT or counts.get(kind)}


def _weighted_order(names: list[str], rng: random.Random) -> list[str]:
    """``names`` in a random order where each rule's chance to come first goes with its category's weight
    (Efraimidis-Spirakis keys: u ** (1 / w), the largest first)."""
    keys = {name: rng.random() ** (1 / RULE_WEIGHT.get(name, WEIGHT.get(
        CATEGORY.get(name.removesuffix("_seed_typed"), ""), 1.0))) for name in names}
    return sorted(names, key=lambda name: -keys[name])


@dataclass
class Rewrite:
    """A rewritten program. ``applied``: the transformations that fired, in order (empty: nothing applied and
    ``code`` is the original); ``refused``: per transformation, the sites whose conditions failed, and
    ``reasons`` the same per ``name:reason``."""

    code: str
    applied: list[str]
    refused: dict[str, int]
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.applied)

    @property
    def mix(self) -> dict[str, int]:
        return mix(self.applied)


def _signature(tree: ast.Module, entry_point: str) -> str | None:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
            return ast.dump(node.args) + ast.dump(ast.Module(body=node.decorator_list, type_ignores=[])) + \
                (ast.dump(node.returns) if node.returns else "") + type(node).__name__
    return None


def recursive(tree: ast.Module) -> bool:
    """Whether some function of the module may call itself again (a cycle among the functions it defines, by name
    or attribute). Every rule then refuses: an input that recurses without end (``fib(-1)``) raises
    ``RecursionError``, whose message names the operation that hit the limit, and any rewrite may move it."""
    defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    names = {d.name for d in defs}
    calls: dict[str, set[str]] = {}
    for d in defs:
        mentioned = {n.id for n in ast.walk(d) if isinstance(n, ast.Name)} | \
            {n.attr for n in ast.walk(d) if isinstance(n, ast.Attribute)}
        calls.setdefault(d.name, set()).update(mentioned & names)
    for start in calls:
        seen, stack = set(), list(calls[start])
        while stack:
            name = stack.pop()
            if name == start:
                return True
            if name not in seen:
                seen.add(name)
                stack += calls.get(name, ())
    return False


def rewrite(code: str, entry_point: str, *, transformations: list[str] | tuple[str, ...] | None = None,
            steps: int = 3, seed: int = 0, arg_types: Mapping[str, frozenset[str] | set[str]] | None = None
            ) -> Rewrite:
    """Up to ``steps`` transformations composed on ``code`` (default: every sound one), chosen at random for
    ``seed`` among those with a site whose conditions hold; deterministic for a seed. The result parses, differs
    from the original's AST and keeps the entry point's name and signature (else nothing is applied)."""
    names = list(DEFAULT if transformations is None else transformations)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown transformations {unknown}; known: {sorted(REGISTRY)}")
    original = syntax.parse(code)
    tree = copy.deepcopy(original)
    if _signature(tree, entry_point) is None:
        return Rewrite(code, [], {}, {"no_entry_point": 1})
    if recursive(tree):
        return Rewrite(code, [], {}, {"recursive_module": 1})
    ctx = Context(tree, entry_point, {k: frozenset(v) for k, v in (arg_types or {}).items()})
    rng = random.Random(seed)
    applied: list[str] = []
    refused: Counter = Counter()
    reasons: Counter = Counter()
    for _ in range(steps):
        order = _weighted_order(names, rng)
        order.sort(key=applied.count)  # rules not used yet first: variants mix rules, not one rule three times
        for name in order:
            if _attempt(REGISTRY[name], ctx, rng, refused, reasons):
                applied.append(name)
                break
        else:
            break
    if not applied:
        return Rewrite(code, [], dict(refused), dict(reasons))
    ast.fix_missing_locations(tree)
    text = syntax.unparse(tree) + "\n"
    again = syntax.parse(text)
    if ast.dump(again) == ast.dump(original) or _signature(again, entry_point) != _signature(original, entry_point):
        reasons["rewrite:unchanged_or_signature"] += 1
        return Rewrite(code, [], dict(refused), dict(reasons))
    return Rewrite(text, applied, dict(refused), dict(reasons))


def _attempt(rule: Transformation, ctx: Context, rng: random.Random, refused: Counter, reasons: Counter) -> bool:
    """Fire ``rule`` at one of its sites (random order for the rng) whose conditions hold; on each refusal the
    tree is left as it was (conditions are checked before anything changes)."""
    sites = rule.sites(ctx)
    rng.shuffle(sites)
    for site in sites:
        snapshot = ast.dump(ctx.tree)
        try:
            rule.apply(ctx, site, rng)
        except Refused as exc:
            assert ast.dump(ctx.tree) == snapshot, f"{rule.name} changed the tree before refusing"
            refused[rule.name] += 1
            reasons[f"{rule.name}:{exc.args[0]}"] += 1
            continue
        return True
    return False


Rule = Callable[[Context, Site, random.Random], None]
