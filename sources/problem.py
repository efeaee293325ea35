"""A programming problem (called *problem*, so that *task* keeps meaning a Prefect task), normalised."""

from __future__ import annotations

import ast
import hashlib
import inspect
from dataclasses import dataclass, field

from sinq.game import syntax


@dataclass
class Problem:
    source: str
    source_id: str
    code: str
    tests: str
    entry_point: str | None
    text: str = ""
    setup_code: str = ""
    split: str = "train"
    licence: str | None = None
    signature: str | None = None
    seed_inputs: list[str] = field(default_factory=list)
    problem_id: str = ""
    reason: str | None = None
    """Why the problem cannot be used (set while loading or by validation); None = usable so far."""

    def __post_init__(self) -> None:
        self.code = normalize_newlines(self.code)
        self.tests = normalize_newlines(self.tests)
        self.setup_code = normalize_newlines(self.setup_code)
        if not self.problem_id:
            self.problem_id = hashlib.sha256(f"{self.source}\0{self.source_id}\0{code_key(self.code)}".encode()
                                             ).hexdigest()

    @property
    def program(self) -> str:
        """What runs: setup code, then the solution."""
        return f"{self.setup_code}\n{self.code}" if self.setup_code.strip() else self.code


def normalize_newlines(text: str | None) -> str:
    return (text or "").replace("\r\n", "\n").replace("\r", "\n")


def code_key(code: str) -> str:
    """Dedup key: the AST dump when the code parses (formatting and comments do not count), else stripped text."""
    try:
        return hashlib.sha256(ast.dump(syntax.parse(code)).encode()).hexdigest()
    except (SyntaxError, ValueError):
        lines = [line.rstrip() for line in normalize_newlines(code).split("\n")]
        return hashlib.sha256("\n".join(lines).strip().encode()).hexdigest()


def defined_functions(code: str) -> list[str]:
    try:
        tree = syntax.parse(code)
    except (SyntaxError, ValueError):
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def called_names(test_code: str) -> list[str]:
    """Names called anywhere in the tests, in order of appearance (``int(f(x))`` yields int, f)."""
    try:
        tree = syntax.parse(test_code)
    except (SyntaxError, ValueError):
        return []
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    calls.sort(key=lambda n: (n.lineno, n.col_offset))
    return [c.func.id for c in calls]  # type: ignore[attr-defined]


def find_entry_point(code: str, tests: str) -> str | None:
    """The function the tests exercise: defined by the solution AND called by the tests, most called first;
    wrappers (``int(...)``, ``set(...)``) and helpers the tests never call are skipped."""
    defined = defined_functions(code)
    calls = [name for name in called_names(tests) if name in defined]
    if not calls:
        return None
    counts = {name: calls.count(name) for name in calls}
    return max(counts, key=lambda name: (counts[name], -calls.index(name)))


def signature_text(code: str, entry_point: str) -> str | None:
    from sinq.game.parsing import signature_of

    signature = signature_of(code, entry_point)
    return str(signature) if signature is not None else None


def seed_inputs(code: str, tests: str, entry_point: str, callee_names: tuple[str, ...] = ()) -> list[str]:
    """Keyword dicts of the literal calls to the entry point in the tests, bound to its signature."""
    from sinq.game.parsing import signature_of

    signature = signature_of(code, entry_point)
    try:
        tree = syntax.parse(tests)
    except (SyntaxError, ValueError):
        return []
    if signature is None:
        return []
    names = {entry_point, *callee_names}
    seeds: list[str] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names):
            continue
        try:
            args = [syntax.literal_eval(a) for a in node.args]
            kwargs = {k.arg: syntax.literal_eval(k.value) for k in node.keywords if k.arg}
            bound = signature.bind(*args, **kwargs)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        if any(p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY)
               for p in signature.parameters.values()):
            continue
        literal = repr(dict(bound.arguments))
        if literal not in seeds:
            seeds.append(literal)
    return seeds
